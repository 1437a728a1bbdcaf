"""Router.route(request) -> RoutingDecision: which model answers, why, and what comes next.

1. Analyse the conversation (orchestrator/core/analysis.py).
2. Keep the models that can take it: the capabilities it needs, a context that holds it,
   a worst-case cost within the request's budget_limit and the user's remaining budget,
   and not marked unavailable.
3. Predict each one's quality on this prompt (orchestrator/core/routing_model: the weak and
   strong references' predicted quality, placed by the model's tier), moved by what was
   observed of it, and rank them with the strategy (orchestrator/core/strategies.py).
4. Choose the best (or the pinned model), and up to three fallbacks, other providers first.
   The operator's default model (DEFAULT_MODEL_NAME), when it fits, is always among the
   fallbacks: the model the operator trusts is the last resort.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from orchestrator.core.analysis import (
    NEED_CODE,
    NEED_LOGPROBS,
    NEED_STRUCTURED_OUTPUT,
    NEED_TOOLS,
    NEED_VISION,
    TaskAnalysis,
    analyze_request,
    message_text,
)
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.decision import Decision, ListedCandidate, PredictedQuality
from orchestrator.core.evidence import Observation, RatedQuality
from orchestrator.core.routing_model import Prediction, QualityModel, load_shipped, resolve_tier
from orchestrator.core.routing_model.neighbourhood import NONE, Neighbourhoods
from orchestrator.core.strategies import (
    LOW_BAR_LOSS,
    Candidate,
    Context,
    Preferences,
    Ranked,
    RoutingStrategy,
    get_strategy,
)
from orchestrator.core.types import ChatRequest

MAX_FALLBACKS = 3
UNPRICED = "it lacks an input or output price (in genai-prices, or `prices` in models.yaml), so nothing bounds its cost"
INFINITY = float("inf")
DEFAULT_PREFERENCES = Preferences()


class NoSuitableModel(Exception):
    """No model in the catalog can take this request; the message says why and what would fit.

    `reason` is "budget" (every fitting model could cost more than the budget left),
    "context" (no context window holds the conversation), "capability" (no model, or not the
    pinned one, has every capability in `missing`: tools, vision, ...) or "unknown_model"
    (a pinned model the catalog lacks).
    """

    _HTTP_STATUS = {"budget": 402, "context": 413, "capability": 400, "unknown_model": 404}

    def __init__(self, message: str, reason: str, missing: tuple[str, ...] = ()):
        super().__init__(message)
        self.reason = reason
        self.missing = missing

    @property
    def http_status(self) -> int:
        return self._HTTP_STATUS[self.reason]


# The needs a model must have the capability for (the others weigh in its predicted quality).
_NEED_FLAGS = {need: f"supports_{need}" for need in (NEED_CODE, NEED_VISION, NEED_TOOLS, NEED_STRUCTURED_OUTPUT,
                                                      NEED_LOGPROBS)}


def capable(model: ModelCapabilities, needs: frozenset[str]) -> bool:
    """Whether the model has the capability of every need that requires one."""
    return all(getattr(model, _NEED_FLAGS[need]) for need in needs if need in _NEED_FLAGS)


@dataclass(slots=True)
class RoutingDecision:
    """`prediction` and `candidates` are built when read (`written` reads them): most decisions
    are only executed, and listing every candidate costs about a tenth of the decision."""

    chosen_provider: str
    chosen_model: str
    reasoning: str
    estimated_cost: float
    estimated_time: float
    fallback_models: list[tuple[str, str]] = field(default_factory=list)
    confidence: float = 0.5
    strategy: str = RoutingStrategy.BALANCED.value
    analysis: TaskAnalysis | None = None
    why: str = ""  # why the chosen model won
    predicted: Prediction | None = field(default=None, repr=False)  # the learned router's reading of the prompt
    ranked: Ranked = field(default_factory=list, repr=False)  # the candidates, best first
    tiers: dict[str, float] = field(default_factory=dict, repr=False)  # each model's tier (routing_model)

    @property
    def prediction(self) -> dict | None:
        return self.predicted.as_dict() if self.predicted is not None else None

    @property
    def candidates(self) -> list[dict]:
        """Each candidate as ranked, with its predicted quality, tier, cost, time and score."""
        return [candidate.to_json() for candidate in _listed(self.ranked, self.tiers)]

    def written(self, every_candidate: bool = True) -> Decision:
        """The decision as it is written down. The prediction carries the tiers of the chain's
        models (what an outcome of one of them is measured against); `every_candidate` adds the
        ranked list of all (POST /chat/route), which an executed request does not carry."""
        prediction = self.prediction
        return Decision(
            self.chosen_provider, self.chosen_model, self.reasoning, self.estimated_cost, self.estimated_time,
            tuple(self.fallback_models), self.confidence, self.strategy,
            self.analysis.summary() if self.analysis is not None else None, self.why,
            None if prediction is None else PredictedQuality(**prediction, tiers={
                m: self.tiers[m] for m in self.models if self.tiers.get(m) is not None}),
            tuple(_listed(self.ranked, self.tiers)) if every_candidate else (),
        )

    def as_dict(self, every_candidate: bool = True) -> dict:
        return self.written(every_candidate).to_json()

    @property
    def models(self) -> list[str]:
        """The chosen model, then the fallbacks, in the order to try them."""
        return [self.chosen_model, *(name for _, name in self.fallback_models)]


def _blend(ttft: float, quality: float, observed: Observation, now: float) -> tuple[float, float]:
    """Priors moved toward what was observed: the observed time to first token, and the
    quality discounted by the observed failure rate."""
    trust = observed.trust(now)
    if observed.ttft == observed.ttft:  # not NaN: a first token was seen
        ttft = (1 - trust) * ttft + trust * observed.ttft
    return ttft, quality * (1 - trust * (1 - observed.success_rate))


_BARS = {RoutingStrategy.COST_OPTIMAL.value: LOW_BAR_LOSS, RoutingStrategy.PERFORMANCE_OPTIMAL.value: LOW_BAR_LOSS}
_RULES = {RoutingStrategy.COST_OPTIMAL.value: "the cheapest", RoutingStrategy.PERFORMANCE_OPTIMAL.value: "the fastest"}


def _why(strategy: str, chosen: Candidate, ranked: Ranked, prediction: Prediction) -> str:
    best = max((c for _, c in ranked), key=lambda c: (c.quality, c.model.model_name))
    said = (f"predicted quality {chosen.quality:.2f} against {best.quality:.2f} for the best ({best.model.model_name}); "
            f"a strong model is predicted to add {prediction.gap:.2f} over a weak one on this prompt")
    bar = _BARS.get(strategy)
    if bar is None:
        return f"{said}; best score under {strategy}"
    clearing = sum(1 for _, c in ranked if c.quality >= best.quality - bar)
    return f"{said}; {_RULES[strategy]} of the {clearing} models within {bar:.2f} of the best"


def _listed(ranked: Ranked, tiers: dict[str, float]) -> list[ListedCandidate]:
    return [ListedCandidate(c.model.model_name, c.model.provider, round(c.quality, 4), tiers.get(c.model.model_name),
                            round(c.cost, 6), round(c.seconds, 3), round(score, 4)) for score, c in ranked]


class Router:
    def __init__(self, catalog: Catalog, default_model: str | None = None, quality_model: QualityModel | None = None,
                 unserved: dict[str, str] | None = None):
        self.catalog = catalog
        self.default_model = default_model
        self.unserved = unserved or {}  # models left out of `catalog` because nobody serves them, and why
        self.quality_model = quality_model or load_shipped()
        references = self.quality_model.reference_tiers
        self.tiers = {model.model_name: resolve_tier(model, references) for model in catalog}

    def route(
        self,
        request: ChatRequest,
        strategy: str = RoutingStrategy.BALANCED.value,
        *,
        pinned: str | None = None,
        budget_limit: float | None = None,
        budget_remaining: float | None = None,
        preferences: Preferences | None = None,
        observations: dict[str, Observation] | None = None,
        unavailable: frozenset[str] | set[str] = frozenset(),
        feedback_quality: dict[str, dict[str, RatedQuality]] | None = None,
        neighbourhoods: Neighbourhoods = NONE,
    ) -> RoutingDecision:
        """`observations` (orchestrator/store/stats.py) blend into the predicted qualities, and so do
        users' ratings per model and task type (`feedback_quality`, orchestrator/store/learning.py)
        and the corrections learned in the prompt's neighbourhood (`neighbourhoods`,
        orchestrator/store/neighbourhood_quality.py); models in `unavailable` (open circuits) are
        routed around unless nothing else fits."""
        strategy = strategy.value if isinstance(strategy, RoutingStrategy) else strategy
        rank = get_strategy(strategy)
        analysis = analyze_request(request)
        prediction = self.predict(request, analysis)
        candidates = self._candidates(
            analysis, prediction, request.max_tokens, observations or {}, feedback_quality, neighbourhoods
        )
        allowance = min(budget_limit or INFINITY, INFINITY if budget_remaining is None else budget_remaining)
        # A model without a full price has an infinite worst case: it fits only where no budget applies.
        if not candidates:
            self._refuse_capabilities(analysis.needs, self.catalog)
        fitting = [c for c in candidates if c.worst_cost <= allowance]
        if not fitting:
            raise NoSuitableModel(self._why_none(analysis, candidates, allowance), "budget" if candidates else "context")
        available = [c for c in fitting if c.model.model_name not in unavailable] or fitting
        best = max(c.quality for c in available)
        context = Context(
            best - LOW_BAR_LOSS, analysis.complexity, analysis.complexity_score, preferences or DEFAULT_PREFERENCES, best,
        )
        ranked = rank(available, context)
        chosen = ranked[0][1]
        why = _why(strategy, chosen, ranked, prediction)
        if pinned:
            chosen = self._pinned(pinned, candidates, fitting, analysis, allowance)
            why = f"pinned by the request; {why}"
        return RoutingDecision(
            chosen_provider=chosen.model.provider,
            chosen_model=chosen.model.model_name,
            reasoning=f"{strategy} strategy: cost: ${chosen.cost:.4f}, speed: {chosen.seconds:.1f}s, "
                      f"quality: {chosen.quality:.2f}; {why}",
            estimated_cost=round(chosen.cost, 6),
            estimated_time=round(chosen.seconds, 3),
            fallback_models=self._fallbacks(chosen, ranked),
            confidence=self._confidence(ranked),
            strategy=strategy,
            analysis=analysis,
            why=why,
            predicted=prediction,
            ranked=ranked,
            tiers=self.tiers,
        )

    def predict(self, request: ChatRequest, analysis: TaskAnalysis) -> Prediction:
        """The learned router's reading of the conversation: the user turns, the last one first."""
        texts = [message_text(m) for m in request.messages if m.role == "user"]
        return self.quality_model.predict(texts[-1] if texts else "", texts[:-1], analysis)

    def _candidates(
        self, analysis: TaskAnalysis, prediction: Prediction, max_tokens: int, observations: dict[str, Observation],
        feedback_quality: dict[str, dict[str, RatedQuality]] | None, neighbourhoods: Neighbourhoods,
    ) -> list[Candidate]:
        """The models with the capabilities the request needs and a context that holds it."""
        input_tokens, expected = analysis.input_tokens, analysis.expected_output_tokens
        max_input_tokens = analysis.max_input_tokens
        task_type = str(analysis.task_type)  # an enum member as a dict key is looked up three times slower
        ratings = feedback_quality or {}
        now = time.time()
        candidates = []
        for model in self.catalog:
            output = min(expected, model.max_tokens)
            if not capable(model, analysis.needs) or model.context_window < input_tokens + output:
                continue
            name, ttft = model.model_name, model.ttft
            quality = prediction.quality(self.tiers[name]) + neighbourhoods.correction(prediction.cluster, name)
            observed = observations.get(name)
            if observed is not None:
                ttft, quality = _blend(ttft, quality, observed, now)
            rated = ratings.get(name)
            if rated and task_type in rated:
                trust = rated[task_type].trust
                quality = (1 - trust) * quality + trust * rated[task_type].mean
            candidates.append(
                Candidate(
                    model,
                    (input_tokens * model.cost_per_1k_input + output * model.cost_per_1k_output) / 1000,
                    model.worst_case_cost(max_input_tokens, max_tokens),
                    ttft + output / model.tokens_per_second,
                    quality,
                )
            )
        return candidates

    def _pinned(
        self, name: str, candidates: list[Candidate], fitting: list[Candidate], analysis: TaskAnalysis,
        allowance: float,
    ) -> Candidate:
        for candidate in fitting:
            if candidate.model.model_name == name:
                return candidate
        if name in self.unserved:
            raise NoSuitableModel(f"model {name!r} is unavailable: {self.unserved[name]}", "unknown_model")
        if name not in self.catalog:
            raise NoSuitableModel(f"model {name!r} is not in the catalog", "unknown_model")
        model = self.catalog.get(name)
        self._refuse_capabilities(analysis.needs, [model])
        if all(candidate.model is not model for candidate in candidates):
            raise NoSuitableModel(
                f"model {name!r} cannot take this request: it needs {analysis.input_tokens} input tokens"
                f"{' and ' + ', '.join(sorted(analysis.needs)) if analysis.needs else ''}; "
                f"{name} has a {model.context_window}-token context",
                "context",
            )
        if not model.fully_priced:
            raise NoSuitableModel(f"model {name!r} cannot be used under a budget: {UNPRICED}", "budget")
        raise NoSuitableModel(f"model {name!r} could cost more than the budget left (${allowance:.6f})", "budget")

    def _fallbacks(self, chosen: Candidate, ranked: Ranked) -> list[tuple[str, str]]:
        """The next best models, those of another provider first: an outage is usually a provider's."""
        provider = chosen.model.provider
        rest = [c for _, c in ranked if c is not chosen]
        ordered = [c for c in rest if c.model.provider != provider] + [c for c in rest if c.model.provider == provider]
        fallbacks = ordered[:MAX_FALLBACKS]
        default = next((c for c in rest if c.model.model_name == self.default_model), None)
        if default is not None and all(c is not default for c in fallbacks):
            fallbacks = fallbacks[: MAX_FALLBACKS - 1] + [default]
        return [(c.model.provider, c.model.model_name) for c in fallbacks]

    @staticmethod
    def _confidence(ranked: Ranked) -> float:
        """High when the winner stands clear of the runner-up, 0.5 when they tie."""
        if len(ranked) < 2:
            return 0.95
        gap = ranked[0][0] - ranked[1][0]
        return round(0.5 + min(0.45, max(0.0, gap) * 2), 2)

    @staticmethod
    def _refuse_capabilities(needs: frozenset[str], models) -> None:
        """Refuse the request when none of `models` has every capability it needs."""
        if any(capable(model, needs) for model in models):
            return
        flags = {need: _NEED_FLAGS[need] for need in sorted(needs) if need in _NEED_FLAGS}
        missing = tuple(need for need, flag in flags.items() if not any(getattr(m, flag) for m in models)) or tuple(flags)
        if len(models) == 1:
            message = f"model {models[0].model_name!r} cannot take this request: it lacks {' and '.join(missing)}"
        else:
            message = f"No model in the catalog can take this request: none has {' and '.join(flags)} together"
        raise NoSuitableModel(message, "capability", missing)

    def _why_none(self, analysis: TaskAnalysis, candidates: list[Candidate], allowance: float) -> str:
        if not candidates:
            largest = max(self.catalog, key=lambda m: m.context_window)
            needs = f" and needs {', '.join(sorted(analysis.needs))}" if analysis.needs else ""
            return (
                f"No suitable models available for this request: it takes about {analysis.input_tokens} tokens{needs}; "
                f"the largest context is {largest.context_window} tokens ({largest.model_name}). Shorten the conversation."
            )
        cheapest = min(candidates, key=lambda c: c.worst_cost)
        if not cheapest.model.fully_priced:
            return (f"No suitable models available for this request under a budget: the models that fit, "
                    f"{cheapest.model.model_name} among them, cannot be used under one: {UNPRICED}.")
        return (
            f"No suitable models available for this request: the budget left is ${allowance:.6f} and the cheapest "
            f"model that fits, {cheapest.model.model_name}, could cost ${cheapest.worst_cost:.6f} "
            f"(with max_tokens spent). Raise budget_limit or lower max_tokens."
        )
