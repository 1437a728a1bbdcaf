"""The routing strategies, as scoring functions over the candidate models.

A strategy receives the candidates that passed the router's hard filters (capability,
context, budget, availability) and returns them ranked, best first, each with its score.
Each candidate's quality is the learned router's prediction for this prompt
(orchestrator/core/routing_model), so the bars below move with the prompt: when the cheap
models are predicted to answer about as well as the strong ones, they clear every bar;
when a strong model is predicted to add much, only the strong ones do.
Register a strategy of your own with `register_strategy`; the router looks strategies up
by name, so a registered one is used exactly like a built-in one.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

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
    quality: float  # in [0, 1]: predicted for this prompt, moved by what was observed


@dataclass(frozen=True)
class Preferences:
    """What a user weighs; each in [0, 1]. preferred_models lists model names per complexity level."""

    cost_sensitivity: float = 0.5
    speed_preference: float = 0.5
    quality_preference: float = 0.5
    preferred_models: dict[str, tuple[str, ...]] | None = None


class Context(NamedTuple):
    """What a strategy may look at besides the candidates."""

    required_quality: float  # the low bar: the best candidate's predicted quality less LOW_BAR_LOSS
    complexity: str
    complexity_score: float
    preferences: Preferences
    best_quality: float = 1.0  # the best candidate's predicted quality for this prompt


Ranked = list[tuple[float, Candidate]]
Strategy = Callable[[list[Candidate], Context], Ranked]

QUALITY_TOLERANCE = 0.02  # kept for the analytics' level requirements (orchestrator/runtime/analytics.py)

# The bars, as the expected quality (share of answers judged right) a strategy gives up
# against the best candidate for this prompt: cost_optimal and performance_optimal accept
# losing up to 17.5 points (quality_optimal takes the best, whatever it costs). Derived from
# the training data alone by `orchestrator router bars` (orchestrator/router_training/bars.py
# states the rule): the largest bar at which cost_optimal, between a weak and a strong
# reference, keeps half of the strong model's gain on the training files' held-out prompts.
LOW_BAR_LOSS = 0.175


def required_quality(complexity_score: float) -> float:
    """The old heuristic's requirement by complexity (0.5 to 1.0), for the analytics' advice."""
    return 0.5 + 0.5 * complexity_score


def _clearing(candidates: list[Candidate], bar: float) -> set[int]:
    """The ids of the candidates whose quality clears `bar` (the best one always does)."""
    best = max(c.quality for c in candidates)
    return {id(c) for c in candidates if c.quality >= min(bar, best)}


def _ranked(scored: Ranked) -> Ranked:
    # Ties break on the model name so that the same request always routes the same way.
    return sorted(scored, key=lambda pair: (-pair[0], pair[1].model.model_name))


def _cheapest_clearing(candidates: list[Candidate], bar: float) -> Ranked:
    """The cheapest model that clears the bar; the others after every one that does, best first."""
    clear = _clearing(candidates, bar)
    return _ranked([(-c.cost if id(c) in clear else c.quality - 1e6, c) for c in candidates])


def cost_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The cheapest model predicted within LOW_BAR_LOSS of the best for this prompt."""
    return _cheapest_clearing(candidates, context.best_quality - LOW_BAR_LOSS)


def performance_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The fastest model predicted within LOW_BAR_LOSS of the best for this prompt."""
    clear = _clearing(candidates, context.best_quality - LOW_BAR_LOSS)
    return _ranked([(-c.seconds if id(c) in clear else c.quality - 1e6, c) for c in candidates])


def quality_optimal(candidates: list[Candidate], context: Context) -> Ranked:
    """The model predicted best for this prompt, whatever it costs (the brief's contract); the
    cheaper of two predicted equal."""
    return sorted(((c.quality, c) for c in candidates), key=lambda pair: (-pair[0], pair[1].cost,
                                                                          pair[1].model.model_name))


# Under balanced, with equal weights, giving up this much predicted quality weighs as much
# as going from the dearest candidate to the cheapest (or the slowest to the fastest).
# Derived by `orchestrator router bars` too: with the default preferences balanced takes a
# dearer and slower strong model when it is predicted to add more than twice this, and the
# rule asks that of it to keep three quarters of the strong model's gain on held-out prompts.
QUALITY_SCALE = 0.055
MIN_COST, MIN_SECONDS = 1e-12, 1e-6  # keep the logarithms finite


def _spread(values: list[float]) -> tuple[float, float]:
    """The lowest value and the span, for mapping values onto [0, 1]."""
    low = min(values)
    return low, (max(values) - low) or 1.0


def balanced(candidates: list[Candidate], context: Context) -> Ranked:
    """Predicted quality, cheapness and speed weighed by the user's preferences.

    Quality counts in absolute terms (what is given up against the best candidate, in units
    of QUALITY_SCALE), cheapness and speed relative to the candidates on a log scale (prices
    span a hundredfold): where a strong model is predicted to add little, the cheap one wins;
    where it is predicted to add much, the strong one does.
    """
    prefs = context.preferences
    weights = (prefs.quality_preference, prefs.cost_sensitivity, prefs.speed_preference)
    total = sum(weights) or 1.0
    w_quality, w_cost, w_speed = weights[0] / total, weights[1] / total, weights[2] / total
    # The floors as conditionals, not max(): the call would cost more than the logarithm.
    log_costs = [math.log(MIN_COST if c.cost < MIN_COST else c.cost) for c in candidates]
    log_seconds = [math.log(MIN_SECONDS if c.seconds < MIN_SECONDS else c.seconds) for c in candidates]
    best = max(c.quality for c in candidates)
    c_low, c_span = _spread(log_costs)
    s_low, s_span = _spread(log_seconds)
    scored = []
    for c, log_cost, log_time in zip(candidates, log_costs, log_seconds, strict=True):
        score = (
            w_quality * (c.quality - best) / QUALITY_SCALE
            + w_cost * (1 - (log_cost - c_low) / c_span)
            + w_speed * (1 - (log_time - s_low) / s_span)
        )
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
