"""The one place that decides what happens after a failed attempt.

A request's chain is the ordered list of models to try (the routing decision's choice and
fallbacks), where it stands, and every attempt so far. After an error the policy answers:
try the same model again after a delay, fall over to another model, or give up and tell
the caller. Per error class of the taxonomy (providers/errors.py):

- rate_limited: a Retry-After up to RETRY_AFTER_LIMIT is waited out once; a longer one
  falls over at once; without one, one more try after a jittered backoff, then fall over.
- overloaded, server_error, connection: one more try after a jittered backoff, then fall over.
- timeout: fall over at once; the silent model is not asked again.
- context_length_exceeded: fall over to a model with a larger context, never the same one.
- content_filtered, bad_request: give up; the provider's reason reaches the caller as a 4xx.
- auth, not_found: fall over (the executor also marks the model unavailable).

Once part of the answer has been streamed to the caller, the next attempt must continue
it: it goes to a model that takes the partial answer as an assistant prefill. A chain of
models the caller named (`models`) is closed: neither a larger context nor a continuation
brings in a model from outside it. Under a budget, a model from outside the chain joins it
only if its worst case fits what was reserved (`Chain.affordable`).

No model is tried more than MAX_TRIES_PER_MODEL times per request, and no wait runs past
the request's deadline. The chain holds the configured number of models
(MAX_MODELS_PER_REQUEST), plus one when a context overflow calls for a larger model.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, replace

from orchestrator.core.catalog import Catalog
from orchestrator.core.decision import Decision
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import Attempt

MAX_TRIES_PER_MODEL = 2
BACKOFF = {  # seconds, (low, high) of the jittered wait before trying the same model again
    ErrorKind.RATE_LIMITED: (0.5, 1.5),
    ErrorKind.OVERLOADED: (0.25, 0.75),
    ErrorKind.SERVER_ERROR: (0.25, 0.75),
    ErrorKind.CONNECTION: (0.25, 0.75),
}

_jitter = random.Random()


@dataclass
class Chain:
    """A request's fallback chain; it travels in the retry task's arguments as a dict."""

    models: list[str]
    deadline: float  # time.time() after which no attempt starts
    index: int = 0
    tries: dict[str, int] = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)
    decision: Decision | None = None  # None for an embedding request: nothing was routed
    partial: str = ""  # the answer's text already streamed to the caller
    closed: bool = False  # the caller named the models: no other may answer, nor continue an answer
    # Under a budget, the catalog's models whose worst case fits what was reserved: the only
    # ones that may join the chain later (None: no budget, any may).
    affordable: list[str] | None = None
    reserved: float = 0.0  # USD held for the request (its worst case so far)
    budget: float | None = None  # the month's limit in force when it was held (None: no budget)

    def may_join(self, model: str) -> bool:
        return self.affordable is None or model in self.affordable

    @property
    def current(self) -> str:
        return self.models[self.index]

    @property
    def is_last(self) -> bool:
        return self.index == len(self.models) - 1

    def record(self, model: str, provider: str, error: ProviderError | str | None, duration: float) -> None:
        self.tries[model] = self.tries.get(model, 0) + 1
        if isinstance(error, ProviderError):
            attempt = Attempt(model, provider, error.kind.value, error.message, round(duration, 4))
        else:
            attempt = Attempt(model, provider, error, None, round(duration, 4))
        self.attempts.append(attempt.to_json())

    def as_dict(self) -> dict:
        data = asdict(replace(self, decision=None))
        data["decision"] = self.decision.to_json() if self.decision is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Chain:
        decision = data["decision"]
        return cls(**{**data, "decision": Decision.from_json(decision) if decision else None})


@dataclass(frozen=True)
class Step:
    """What to do next: `delay` seconds, then the chain's current model (retry or fall over);
    or give up with the error when `give_up`."""

    delay: float = 0.0
    give_up: bool = False


GIVE_UP = Step(give_up=True)


def next_step(chain: Chain, error: ProviderError, catalog: Catalog, now: float, retry_after_limit: float) -> Step:
    """Advance `chain` after `error` on its current model and say when to go on."""
    step = _step(chain, error, catalog, now, retry_after_limit)
    if chain.partial and not step.give_up:
        step = _continuable(chain, catalog, step)
    return step


def _step(chain: Chain, error: ProviderError, catalog: Catalog, now: float, retry_after_limit: float) -> Step:
    kind = error.kind
    if not kind.policy.fallback:
        return GIVE_UP
    if kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED:
        return _larger_context(chain, catalog)
    if chain.tries.get(chain.current, 0) < MAX_TRIES_PER_MODEL and kind.policy.retry_same:
        delay = _retry_delay(error, retry_after_limit)
        if delay is not None and now + delay < chain.deadline:
            return Step(delay=delay)
    return fall_over(chain)


def fall_over(chain: Chain) -> Step:
    """Move to the next model of the chain; give up when there is none."""
    if chain.is_last:
        return GIVE_UP
    chain.index += 1
    return Step()


def _retry_delay(error: ProviderError, retry_after_limit: float) -> float | None:
    """How long to wait before asking the same model again; None: do not ask it again."""
    if error.kind is ErrorKind.RATE_LIMITED and error.retry_after is not None:
        return error.retry_after if error.retry_after <= retry_after_limit else None
    low, high = BACKOFF[error.kind]
    return _jitter.uniform(low, high)


def _larger_context(chain: Chain, catalog: Catalog) -> Step:
    """The next model whose context is larger than the one that overflowed: from the
    chain's remaining models first, otherwise the cheapest such model of the catalog."""
    needed = catalog.get(chain.current).context_window
    remaining = chain.models[chain.index + 1:]
    larger = [m for m in remaining if catalog.get(m).context_window > needed]
    if not larger and chain.closed:
        return GIVE_UP
    if not larger:
        tried = set(chain.models)
        spare = sorted(
            (m for m in catalog if m.context_window > needed and m.model_name not in tried
             and chain.may_join(m.model_name)),
            key=lambda m: (m.cost_per_1k_input, m.model_name),
        )
        if not spare:
            return GIVE_UP
        larger = [spare[0].model_name]
    chain.models = chain.models[: chain.index + 1] + larger + [m for m in remaining if m not in larger]
    chain.index += 1
    return Step()


def _continuable(chain: Chain, catalog: Catalog, step: Step) -> Step:
    """Part of the answer was streamed: the next attempt must continue it, so it goes to a
    model that takes an assistant prefill: the chain's next such model, or else the best
    one of the catalog not tried yet. Without one, give up (the answer stays incomplete)."""
    rest = chain.models[chain.index:]
    capable = [m for m in rest if catalog.get(m).supports_assistant_prefill]
    if not capable and chain.closed:
        return GIVE_UP
    if not capable:
        spare = sorted(
            (m for m in catalog if m.supports_assistant_prefill and m.model_name not in chain.models
             and chain.may_join(m.model_name)),
            key=lambda m: (-m.quality_for("default"), m.model_name),
        )
        if not spare:
            return GIVE_UP
        capable = [spare[0].model_name]
    chain.models = chain.models[: chain.index] + capable + [m for m in rest if m not in capable]
    return step
