"""The model catalog: what each model can do, what it costs and how fast it is.

Prices come from genai-prices (maintained, offline data) unless models.yaml overrides
them; everything else comes from models.yaml, merged with the operator's MODELS_FILE.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price
from genai_prices.types import TieredPrices

from orchestrator.core.types import Usage

# A worst case is a float sum of per-token rates; genai-prices totals in Decimal. This much
# on top keeps float rounding from ever putting the worst case a hair under a settled cost.
ROUNDING_HEADROOM = 1e-9
_PROBE_OUTPUT_TOKENS = 1_000_000


class ModelProvider(str, enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    CUSTOM = "custom"


PROVIDER_KINDS = ("openai", "anthropic", "google")
STANDARD, BATCH = "standard", "batch"  # how a call is processed, and priced: at once, or in a provider batch
_BATCH_CONTEXT = {"processing": BATCH}  # genai-prices' batch variants


class CatalogError(Exception):
    """models.yaml (or MODELS_FILE) is malformed; the message says where."""


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str  # one of PROVIDER_KINDS: the wire format and SDK used
    api_key_env: str | None = None
    base_url: str | None = None  # a custom OpenAI-compatible server
    batch_api: bool | None = None  # whether it has its kind's batch API; None: the built-in providers have

    @property
    def has_batch_api(self) -> bool:
        return self.batch_api if self.batch_api is not None else self.base_url is None


@dataclass(frozen=True)
class ModelLimits:
    """A provider's rate limits for one model: requests and tokens per minute (None: no limit).
    Every worker shares them through Redis (orchestrator/store/provider_limits.py)."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class PriceTier:
    """What a call pays once its input passes `above` tokens (genai-prices' tiers: the rate of
    the highest tier reached applies to every token of the call), in USD a token."""

    above: int
    up_to: float  # the most input tokens it applies to: the next tier's `above`, or infinity
    input: float  # the dearer of an uncached and a cached input token
    output: float  # reasoning tokens are output tokens
    fixed: float = 0.0  # a price per call, if any

    def most(self, input_tokens: int, output_tokens: int) -> float:
        """The most a call of at most these sizes pays in this tier."""
        return self.fixed + self.input * min(input_tokens, self.up_to) + self.output * output_tokens


@dataclass(frozen=True)
class ModelCapabilities:
    """One model. The first fields are the brief's; prices are USD per 1K tokens."""

    provider: str
    model_name: str
    max_tokens: int
    cost_per_1k_input: float
    cost_per_1k_output: float
    supports_code: bool = False
    supports_reasoning: bool = False
    supports_streaming: bool = True
    supports_vision: bool = False
    supports_assistant_prefill: bool = False
    supports_tools: bool = False  # function definitions, tool calls and tool results
    supports_structured_output: bool = False  # an answer held to a JSON Schema (response_format)
    supports_logprobs: bool = False
    reasoning_model: bool = False  # takes max_completion_tokens and no temperature
    context_window: int = 8192
    cost_per_1k_cached_input: float | None = None
    ttft: float = 1.0
    tokens_per_second: float = 50.0
    first_token_timeout: float | None = None  # overrides FIRST_TOKEN_TIMEOUT for this model
    quality: dict[str, float] = field(default_factory=dict)
    price_source: str = "genai-prices"
    price_ref: str | None = None
    limits: ModelLimits | None = None  # the provider's rpm/tpm for this model, from `limits` in models.yaml
    # What the learned router compares it to: a reference model of its training data, "weak",
    # "strong" or a tier number (orchestrator/core/routing_model/tiers.py); None: placed by its quality prior.
    comparable_to: str | float | None = None
    # The share of the price a provider batch takes off, where genai-prices has no batch variant of the model.
    batch_discount: float = 0.0
    processing: str = STANDARD  # BATCH: `cost` and the worst case at the provider's batch prices
    # Whether genai-prices prices this model's batch processing itself (its batch variant).
    genai_batch_variant: bool = field(init=False, repr=False, compare=False)
    # Read from `cost` itself when the model is made; empty when part of a call has no price,
    # so that nothing bounds what a call costs.
    price_tiers: tuple[PriceTier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "genai_batch_variant", self._read_batch_variant())
        object.__setattr__(self, "price_tiers", self._read_price_tiers())

    def batch_priced(self) -> ModelCapabilities:
        """This model called through its provider's batch API: priced (and bounded) at batch prices."""
        return dataclasses.replace(self, processing=BATCH)

    def cost(self, usage: Usage) -> float:
        """What `usage` costs on this model, in USD; at batch prices for a batch-priced model:
        genai-prices' batch variant where it has one, else the standard price less `batch_discount`."""
        batch = self.processing == BATCH
        if self.price_source == "genai-prices":
            priced = calc_price(
                PriceUsage(
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cached_tokens or None,
                ),
                model_ref=self.price_ref or self.model_name,
                provider_id=self.provider,
                price_context=_BATCH_CONTEXT if batch and self.genai_batch_variant else None,
            )
            total = float(priced.total_price)
        else:
            cached_price = (self.cost_per_1k_cached_input if self.cost_per_1k_cached_input is not None
                            else self.cost_per_1k_input)
            uncached = usage.input_tokens - usage.cached_tokens
            total = (uncached * self.cost_per_1k_input + usage.cached_tokens * cached_price
                     + usage.output_tokens * self.cost_per_1k_output) / 1000
        return total * (1 - self.batch_discount) if batch and not self.genai_batch_variant else total

    def _read_batch_variant(self) -> bool:
        """Whether genai-prices has a batch price of this model in force now."""
        if self.price_source != "genai-prices":
            return False
        try:
            model = calc_price(PriceUsage(input_tokens=1), model_ref=self.price_ref or self.model_name,
                               provider_id=self.provider).model
        except LookupError:
            return False
        now = datetime.now(UTC)
        return any(variant.when.get("processing") == BATCH and (variant.constraint is None
                                                                or variant.constraint.active(now))
                   for variant in model.price_variants or ())

    @property
    def fully_priced(self) -> bool:
        """Every part of a call has a price, so its worst case is finite."""
        return bool(self.price_tiers)

    def worst_case_cost(self, max_input_tokens: int, max_tokens: int) -> float:
        """The most a call can be billed when the provider counts at most `max_input_tokens` of
        input (analysis.max_input_tokens) and writes at most `max_tokens`, reasoning included:
        every input token at the dearer of the cached and uncached rate, in the dearest tier
        the input can reach. Infinite when the model's prices leave part of a call unpriced.

        A provider refuses, unbilled, a prompt longer than its context window, so no more than
        that is counted; max_tokens is taken as asked, since a provider bills no more output
        than it was asked for, whatever the catalog says of the model's limit.
        """
        tiers = self.price_tiers
        if not tiers:
            return math.inf
        input_tokens = min(max_input_tokens, self.context_window)
        worst = tiers[0].most(input_tokens, max_tokens)
        for tier in tiers[1:]:  # a dearer tier usually, but nothing requires it to be
            if tier.above >= input_tokens:
                break
            worst = max(worst, tier.most(input_tokens, max_tokens))
        return worst * (1 + ROUNDING_HEADROOM)

    def _read_price_tiers(self) -> tuple[PriceTier, ...]:
        """The per-token rates of each input-size tier, read by pricing a call inside the tier
        through `cost`, the settlement's own pricing."""
        try:
            thresholds = self._tier_thresholds()
            return tuple(self._read_price_tier(above, up_to)
                         for above, up_to in zip(thresholds, [*thresholds[1:], math.inf], strict=True))
        except LookupError:  # genai-prices does not know the model, or lacks an input or output price
            return ()

    def _tier_thresholds(self) -> list[int]:
        """0, and the input sizes above which genai-prices changes this model's rates."""
        if self.price_source != "genai-prices":
            return [0]
        prices = calc_price(PriceUsage(input_tokens=1), model_ref=self.price_ref or self.model_name,
                            provider_id=self.provider).model_price
        if prices.input_mtok is None or prices.output_mtok is None:
            raise LookupError(f"no input or output price for {self.model_name}")
        tiered = [price for price in (prices.input_mtok, prices.cache_read_mtok, prices.output_mtok)
                  if isinstance(price, TieredPrices)]
        return sorted({0} | {tier.start for price in tiered for tier in price.tiers})

    def _read_price_tier(self, above: int, up_to: float) -> PriceTier:
        tokens = above + 1
        fixed = self.cost(Usage())
        plain = self.cost(Usage(input_tokens=tokens))
        cached = self.cost(Usage(input_tokens=tokens, cached_tokens=tokens))
        written = self.cost(Usage(input_tokens=tokens, output_tokens=_PROBE_OUTPUT_TOKENS))
        return PriceTier(
            above=above,
            up_to=up_to,
            input=(max(plain, cached) - fixed) / tokens,
            output=(written - plain) / _PROBE_OUTPUT_TOKENS,
            fixed=fixed,
        )

    def quality_for(self, task_type: str) -> float:
        return self.quality.get(task_type, self.quality.get("default", 0.5))


EMBEDDING_KINDS = ("openai", "google")  # the wire formats with an embeddings API (Anthropic has none)


@dataclass(frozen=True)
class EmbeddingModel:
    """A model that turns texts into vectors (`embedding_models` in models.yaml): served at
    /v1/embeddings, never routed to for chat. Models of one `space` give the same vector for
    the same text (the same model at two providers), so a call may fall back from one to another."""

    provider: str
    model_name: str
    upstream: str  # the model's name at its provider
    space: str  # models that share it answer with interchangeable vectors
    dimensions: int  # the length of its vectors
    flexible_dimensions: bool = False  # takes `dimensions`, a shorter vector, from 1 up to `dimensions`
    max_input_tokens: int = 8191  # the most tokens one input may have
    price_per_token: float = 0.0  # USD an input token
    price_source: str = "genai-prices"
    limits: ModelLimits | None = None  # the provider's rpm/tpm for this model, shared by the workers

    def cost(self, input_tokens: int) -> float:
        return input_tokens * self.price_per_token

    def worst_case_cost(self, max_input_tokens: int) -> float:
        return self.cost(max_input_tokens) * (1 + ROUNDING_HEADROOM)


def _embedding_from_entry(name: str, entry: dict, providers: dict[str, ProviderConfig]) -> EmbeddingModel:
    provider = providers.get(str(entry.get("provider")))
    if provider is None or provider.kind not in EMBEDDING_KINDS:
        raise CatalogError(f"embedding model {name!r}: provider {entry.get('provider')!r} must be declared under "
                           f"'providers' with a kind that has an embeddings API ({', '.join(EMBEDDING_KINDS)})")
    dimensions = entry.get("dimensions")
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
        raise CatalogError(f"embedding model {name!r}: dimensions must be the length of its vectors, "
                           f"a whole number of at least 1, not {dimensions!r}")
    upstream = entry.get("upstream", name)
    prices = entry.get("prices")
    if prices:
        per_token, source = prices["input"] / 1_000_000, "models.yaml"
    else:
        try:
            per_token = float(calc_price(PriceUsage(input_tokens=1_000_000), model_ref=entry.get("price_ref", upstream),
                                         provider_id=provider.name).total_price) / 1_000_000
        except LookupError as exc:
            raise CatalogError(f"embedding model {name!r}: genai-prices has no price for it ({exc}); set "
                               "'prices: {input: N}' (USD a million tokens)") from None
        source = "genai-prices"
    return EmbeddingModel(
        provider=provider.name, model_name=name, upstream=upstream, space=entry.get("space", upstream),
        dimensions=dimensions, flexible_dimensions=bool(entry.get("flexible_dimensions", False)),
        max_input_tokens=int(entry.get("max_input_tokens", 8191)), price_per_token=per_token, price_source=source,
        limits=_limits_from_entry(name, entry),
    )


_CAPABILITY_FLAGS = {
    "code": "supports_code",
    "reasoning": "supports_reasoning",
    "streaming": "supports_streaming",
    "vision": "supports_vision",
    "assistant_prefill": "supports_assistant_prefill",
    "tools": "supports_tools",
    "structured_output": "supports_structured_output",
    "logprobs": "supports_logprobs",
    "reasoning_model": "reasoning_model",
}


def _genai_prices_per_1k(model_name: str, provider: str) -> tuple[float, float, float]:
    """Base-tier prices per 1K tokens, read by pricing exactly 1K tokens of each kind."""
    plain = calc_price(PriceUsage(input_tokens=1000, output_tokens=1000), model_ref=model_name, provider_id=provider)
    cached = calc_price(
        PriceUsage(input_tokens=1000, cache_read_tokens=1000), model_ref=model_name, provider_id=provider
    )
    return float(plain.input_price), float(plain.output_price), float(cached.input_price)


def _limits_from_entry(name: str, entry: dict) -> ModelLimits | None:
    """`limits: {rpm: N, tpm: N}`, either or both; None when the model has none."""
    limits = entry.get("limits")
    if limits is None:
        return None
    if not isinstance(limits, dict) or set(limits) - {"rpm", "tpm"}:
        raise CatalogError(f"model {name!r}: limits must be a mapping with rpm and/or tpm, not {limits!r}")
    for key, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CatalogError(f"model {name!r}: limits.{key} must be a whole number of at least 1, not {value!r}")
    return ModelLimits(rpm=limits.get("rpm"), tpm=limits.get("tpm")) if limits else None


def _model_from_entry(name: str, entry: dict, providers: dict[str, ProviderConfig]) -> ModelCapabilities:
    provider = entry.get("provider")
    if provider not in providers:
        raise CatalogError(f"model {name!r}: provider {provider!r} is not declared under 'providers'")
    unknown = set(entry.get("capabilities", [])) - set(_CAPABILITY_FLAGS)
    if unknown:
        raise CatalogError(f"model {name!r}: unknown capabilities {sorted(unknown)}; known: {sorted(_CAPABILITY_FLAGS)}")
    flags: dict[str, Any] = {_CAPABILITY_FLAGS[c]: True for c in entry.get("capabilities", [])}
    latency = entry.get("latency", {})
    prices = entry.get("prices")
    if prices:
        per_1k = (prices["input"] / 1000, prices["output"] / 1000, prices.get("cached_input", prices["input"]) / 1000)
        source = "models.yaml"
    else:
        try:
            per_1k = _genai_prices_per_1k(entry.get("price_ref", name), provider)
        except LookupError as exc:
            raise CatalogError(f"model {name!r}: genai-prices has no price for it ({exc}); set 'prices' "
                               "({input, output} in USD a million tokens) in the file that declares it "
                               "(MODELS_FILE for your own models)") from None
        source = "genai-prices"
    context_window = int(entry.get("context_window", 8192))
    batch_discount = entry.get("batch_discount", 0.0)
    if isinstance(batch_discount, bool) or not isinstance(batch_discount, (int, float)) or not 0 <= batch_discount < 1:
        raise CatalogError(f"model {name!r}: batch_discount must be a share of the price from 0 to under 1, "
                           f"not {batch_discount!r}")
    comparable_to = entry.get("comparable_to")
    if comparable_to is not None and (isinstance(comparable_to, bool) or not isinstance(comparable_to, (str, int, float))):
        raise CatalogError(f"model {name!r}: comparable_to must be a reference model's name or a tier number, not {comparable_to!r}")
    return ModelCapabilities(
        provider=provider,
        model_name=name,
        max_tokens=int(entry.get("max_output_tokens", min(4096, context_window))),
        cost_per_1k_input=per_1k[0],
        cost_per_1k_output=per_1k[1],
        cost_per_1k_cached_input=per_1k[2],
        context_window=context_window,
        ttft=float(latency.get("ttft", 1.0)),
        tokens_per_second=float(latency.get("tokens_per_second", 50.0)),
        first_token_timeout=entry.get("timeouts", {}).get("first_token"),
        quality=dict(entry.get("quality", {})),
        price_source=source,
        price_ref=entry.get("price_ref"),
        limits=_limits_from_entry(name, entry),
        comparable_to=comparable_to,
        batch_discount=float(batch_discount),
        **flags,
    )


class Catalog:
    """The models the router may choose from and the providers that serve them."""

    def __init__(self, models: dict[str, ModelCapabilities], providers: dict[str, ProviderConfig],
                 embeddings: dict[str, EmbeddingModel] | None = None):
        self.models = models
        self.providers = providers
        self.embeddings = embeddings or {}

    def embedding_chain(self, model_name: str) -> list[EmbeddingModel]:
        """The embedding model asked for, then the others of its space in catalog order: what a
        call may fall back to without changing the vectors' meaning."""
        asked = self.embeddings[model_name]
        return [asked, *(m for m in self.embeddings.values() if m.space == asked.space and m is not asked)]

    def get(self, model_name: str) -> ModelCapabilities:
        return self.models[model_name]

    def __contains__(self, model_name: str) -> bool:
        return model_name in self.models

    def __iter__(self):
        return iter(self.models.values())

    def provider_of(self, model: ModelCapabilities) -> ProviderConfig:
        return self.providers[model.provider]

    def has_batch_api(self, model: ModelCapabilities) -> bool:
        return self.providers[model.provider].has_batch_api

    def at_batch_prices(self) -> Catalog:
        """This catalog as economy batches see it: each model whose provider has a batch API at
        its batch prices, the others as they are (they run at once, at the standard price)."""
        return Catalog({name: m.batch_priced() if self.has_batch_api(m) else m for name, m in self.models.items()},
                       self.providers, self.embeddings)

    def without(self, names) -> Catalog:
        """This catalog less the models (chat or embedding) named."""
        return Catalog({name: m for name, m in self.models.items() if name not in names}, self.providers,
                       {name: m for name, m in self.embeddings.items() if name not in names})

    @classmethod
    def load(cls, extra_file: str | None = None) -> Catalog:
        """The bundled models.yaml, with `extra_file` (MODELS_FILE) merged over it."""
        data = yaml.safe_load(resources.files("orchestrator.core").joinpath("models.yaml").read_text())
        if extra_file:
            try:
                extra = yaml.safe_load(Path(extra_file).read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise CatalogError(f"MODELS_FILE {extra_file}: {exc}") from None
            data["providers"].update(extra.get("providers", {}))
            data["models"].update(extra.get("models", {}))
            data["embedding_models"].update(extra.get("embedding_models", {}))
            # `limits: {model: {rpm, tpm}}` sets your account's rate limits on any model, bundled ones included.
            for name, limits in (extra.get("limits") or {}).items():
                section = next((section for section in ("models", "embedding_models") if name in data[section]), None)
                if section is None:
                    raise CatalogError(f"MODELS_FILE {extra_file}: limits for unknown model {name!r}")
                data[section][name] = {**data[section][name], "limits": limits}
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Catalog:
        """A catalog from the models.yaml structure: {"providers": {...}, "models": {...},
        "embedding_models": {...}}."""
        try:
            providers = {name: ProviderConfig(name=name, **spec) for name, spec in data["providers"].items()}
        except TypeError as exc:
            raise CatalogError(f"providers: {exc}; allowed keys: kind, api_key_env, base_url, batch_api") from None
        for provider in providers.values():
            if provider.kind not in PROVIDER_KINDS:
                raise CatalogError(f"provider {provider.name!r}: kind {provider.kind!r} is not one of {PROVIDER_KINDS}")
        models = {name: _model_from_entry(name, entry, providers) for name, entry in data["models"].items()}
        embeddings = {name: _embedding_from_entry(name, entry, providers)
                      for name, entry in (data.get("embedding_models") or {}).items()}
        both = sorted(set(models) & set(embeddings))
        if both:
            raise CatalogError(f"{', '.join(both)}: a name is either a chat model or an embedding model, not both")
        return cls(models, providers, embeddings)


def check_default_model(settings, catalog: Catalog) -> None:
    """DEFAULT_MODEL_NAME must name a catalog model of DEFAULT_MODEL_PROVIDER."""
    name, provider = settings.default_model_name, settings.default_model_provider
    if name not in catalog:
        raise CatalogError(f"DEFAULT_MODEL_NAME={name!r} is not in the catalog; known: {', '.join(sorted(catalog.models))}")
    if catalog.get(name).provider != provider:
        raise CatalogError(
            f"DEFAULT_MODEL_PROVIDER={provider!r} does not serve {name!r} (its provider is {catalog.get(name).provider!r})"
        )
