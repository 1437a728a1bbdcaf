"""Where a catalog model sits between the weak reference (tier 0: Mixtral-8x7B class) and
the strong one (tier 1: GPT-4-1106 class), so that every candidate gets a predicted quality.

A model's `comparable_to` in models.yaml (or MODELS_FILE) is one of:
- a reference model of the training data (`gpt-3.5-turbo-1106`, `claude-v1`, ...): its
  tier as measured there (the artifact's `reference_tiers`);
- `weak` or `strong`;
- a number: the tier itself (above 1 for models better than the strong reference).
A model that says nothing is placed by its general quality prior (`quality.default`) on the
catalog's own scale, where gpt-3.5-turbo (0.62) matches the weak reference and gpt-4 (0.82)
the strong one; a model with neither counts as weak.
"""

from __future__ import annotations

from orchestrator.core.catalog import ModelCapabilities

WEAK_PRIOR, STRONG_PRIOR = 0.62, 0.82
MIN_TIER, MAX_TIER = -1.0, 2.0
NAMED_TIERS = {"weak": 0.0, "strong": 1.0}


class UnknownReference(ValueError):
    """`comparable_to` names no reference model the artifact knows."""


def _clamped(tier: float) -> float:
    return min(MAX_TIER, max(MIN_TIER, tier))


def resolve_tier(model: ModelCapabilities, reference_tiers: dict[str, float]) -> float:
    said = model.comparable_to
    if isinstance(said, (int, float)) and not isinstance(said, bool):
        return _clamped(float(said))
    if isinstance(said, str):
        if said in NAMED_TIERS:
            return NAMED_TIERS[said]
        if said in reference_tiers:
            return reference_tiers[said]
        known = ", ".join(sorted([*NAMED_TIERS, *reference_tiers]))
        raise UnknownReference(f"model {model.model_name!r}: comparable_to {said!r} is not one of {known}, nor a number")
    prior = model.quality.get("default")
    if prior is None:
        return 0.0
    return _clamped((prior - WEAK_PRIOR) / (STRONG_PRIOR - WEAK_PRIOR))
