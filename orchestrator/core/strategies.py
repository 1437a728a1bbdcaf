"""The routing strategies, as scoring functions over the candidate models.

A strategy receives the candidates that passed the router's hard filters (capability,
context, budget, availability) and returns them ranked, best first, each with its score.
Register a strategy of your own with `register_strategy`; the router looks strategies up
by name, so a registered one is used exactly like a built-in one.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

from orchestrator.core.catalog import ModelCapabilities


class RoutingStrategy(str, enum.Enum):
    COST_OPTIMAL = "cost_optimal"
    PERFORMANCE_OPTIMAL = "performance_optimal"
    QUALITY_OPTIMAL = "quality_optimal"
    BALANCED = "balanced"
    USER_PREFERENCE = "user_preference"


class Candidate(NamedTuple):
    """A model that can take the request, with what it would cost, take and deliver.
    (A NamedTuple: the router builds one per model per request, and this is on the hot path.)"""

    model: ModelCapabilities
    cost: float  # expected, USD
    worst_cost: float  # with the whole max_tokens spent, USD
    seconds: float  # expected time to the last token
    quality: float  # in [0, 1], for this task type


@dataclass(frozen=True)
class Preferences:
    """What a user weighs; each in [0, 1]. preferred_models lists model names per complexity level."""

    cost_sensitivity: float = 0.5
    speed_preference: float = 0.5
    quality_preference: float = 0.5
    preferred_models: dict[str, tuple[str, ...]] | None = None


class Context(NamedTuple):
    """What a strategy may look at besides the candidates."""

    required_quality: float  # the quality this task's complexity calls for
    complexity: str
    complexity_score: float
    preferences: Preferences


Ranked = list[tuple[float, Candidate]]
Strategy = Callable[[list[Candidate], Context], Ranked]

QUALITY_TOLERANCE = 0.02  # priors are coarse: a model this close to the requirement is suitable


def required_quality(complexity_score: float) -> float:
    """Harder tasks need better models: 0.5 for the easiest, 1.0 for the hardest."""
    return 0.5 + 0.5 * complexity_score


def _suitable(candidates: list[Candidate], context: Context) -> list[Candidate]:
    """The candidates good enough for the task; the best available ones when none is."""
    floor = context.required_quality - QUALITY_TOLERANCE
    good = [c for c in candidates if c.quality >= floor]
    if good:
        return good
    best = max(c.quality for c in candidates)
    return [c for c in candidates if c.quality >= best - QUALITY_TOLERANCE]


def _ranked(scored: Ranked) -> Ranked:
    # Ties break on the model name so that the same request always routes the same way.
    return sorted(scored, key=lambda pair: (-pair[0], pair[1].model.model_name))


def cost_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The cheapest suitable model; unsuitable ones rank after every suitable one."""
    suitable = set(map(id, _suitable(candidates, context)))
    return _ranked([(-c.cost - (0 if id(c) in suitable else 1e6), c) for c in candidates])


def performance_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The fastest suitable model."""
    suitable = set(map(id, _suitable(candidates, context)))
    return _ranked([(-c.seconds - (0 if id(c) in suitable else 1e6), c) for c in candidates])


def quality_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The best model, whatever it costs; the cheaper of two equals."""
    return _ranked([(c.quality - c.cost * 1e-6, c) for c in candidates])


SHORTFALL_PENALTY = 8.0
MIN_COST, MIN_SECONDS = 1e-12, 1e-6  # keep the logarithms finite


def _spread(values: list[float]) -> tuple[float, float]:
    """The lowest value and the span, for mapping values onto [0, 1]."""
    low = min(values)
    return low, (max(values) - low) or 1.0


def balanced(candidates: list[Candidate], context: Context) -> Ranked:
    """Quality, cheapness and speed weighed by the user's preferences.

    Quality weighs more as the task gets harder (times 1 + complexity score), and a model
    short of the quality the task needs loses eight times its shortfall whatever the
    weights: cheap, fast models win easy tasks and strong ones hard tasks. Cost and time
    compare on a log scale (prices span a hundredfold).
    """
    prefs = context.preferences
    weights = (prefs.quality_preference * (1 + context.complexity_score), prefs.cost_sensitivity, prefs.speed_preference)
    total = sum(weights) or 1.0
    w_quality, w_cost, w_speed = weights[0] / total, weights[1] / total, weights[2] / total
    qualities = [c.quality for c in candidates]
    # The floors as conditionals, not max(): the call would cost more than the logarithm.
    log_costs = [math.log(MIN_COST if c.cost < MIN_COST else c.cost) for c in candidates]
    log_seconds = [math.log(MIN_SECONDS if c.seconds < MIN_SECONDS else c.seconds) for c in candidates]
    q_low, q_span = _spread(qualities)
    c_low, c_span = _spread(log_costs)
    s_low, s_span = _spread(log_seconds)
    floor = context.required_quality - QUALITY_TOLERANCE
    scored = []
    for c, quality, log_cost, log_time in zip(candidates, qualities, log_costs, log_seconds):
        score = (
            w_quality * (quality - q_low) / q_span
            + w_cost * (1 - (log_cost - c_low) / c_span)
            + w_speed * (1 - (log_time - s_low) / s_span)
        )
        if quality < floor:
            score -= SHORTFALL_PENALTY * (floor - quality)
        scored.append((score, c))
    return _ranked(scored)


def user_preference(candidates: list[Candidate], context: Context) -> Ranked:
    """The user's models for this complexity first, in their order; the rest as balanced ranks them."""
    preferred = (context.preferences.preferred_models or {}).get(context.complexity, ())
    rest = balanced(candidates, context)
    bonus = {name: len(preferred) - i for i, name in enumerate(preferred)}
    return _ranked([(score + 10.0 * bonus.get(c.model.model_name, 0), c) for score, c in rest])


_STRATEGIES: dict[str, Strategy] = {
    RoutingStrategy.COST_OPTIMAL.value: cost_optimal,
    RoutingStrategy.PERFORMANCE_OPTIMAL.value: performance_optimal,
    RoutingStrategy.QUALITY_OPTIMAL.value: quality_optimal,
    RoutingStrategy.BALANCED.value: balanced,
    RoutingStrategy.USER_PREFERENCE.value: user_preference,
}


def register_strategy(name: str, strategy: Strategy) -> None:
    """Make `strategy` available to the router under `name` (a built-in name is replaced)."""
    _STRATEGIES[name] = strategy


def get_strategy(name: str) -> Strategy:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown routing strategy {name!r}; known: {sorted(_STRATEGIES)}") from None
