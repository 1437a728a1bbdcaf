"""Per-neighbourhood corrections learned from traffic, as the router reads them (pure).

For each prompt cluster and model the store (orchestrator/store/neighbourhood_quality.py) keeps a
decayed weight and a decayed sum of residuals: the quality observed (a rating, or 0 for a
failed attempt) minus the quality predicted when the request was routed. The correction is
the mean residual shrunk toward zero, as if PRIOR_WEIGHT outcomes of residual zero had
been seen too, and bounded: a few outcomes move a model a little, many move it as far as
they say, and none ever moves it more than MAX_CORRECTION.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRIOR_WEIGHT = 5.0
MAX_CORRECTION = 0.5


def correction(residual_sum: float, weight: float) -> float:
    value = residual_sum / (weight + PRIOR_WEIGHT)
    return min(MAX_CORRECTION, max(-MAX_CORRECTION, value))


@dataclass(frozen=True)
class Neighbourhoods:
    """{cluster: {model: correction}}; an unknown cluster or model has none."""

    corrections: dict[int, dict[str, float]] = field(default_factory=dict)

    def correction(self, cluster: int, model: str) -> float:
        return self.corrections.get(cluster, {}).get(model, 0.0)


NONE = Neighbourhoods()
