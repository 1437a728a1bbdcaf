"""What the router learns from beside the catalog: the outcomes observed of every model and
the ratings users gave, each trusted in proportion to its evidence."""

from __future__ import annotations

from dataclasses import dataclass

TRUSTED_SAMPLES = 20  # observed attempts from which the observations fully replace the priors
OBSERVATION_HALF_LIFE = 600.0  # seconds without a sample after which observations count half
TRUSTED_RATINGS = 20  # ratings from which they move a model's quality prior by the most (half)


@dataclass(frozen=True)
class Observation:
    samples: int
    success_rate: float
    ttft: float
    latency: float
    updated_at: float

    def trust(self, now: float) -> float:
        """How much the router should believe this over the catalog's priors, in [0, 1]."""
        age = max(0.0, now - self.updated_at)
        return min(1.0, self.samples / TRUSTED_SAMPLES) * 0.5 ** (age / OBSERVATION_HALF_LIFE)


@dataclass(frozen=True)
class RatedQuality:
    mean: float  # in [0, 1]
    count: int

    @property
    def trust(self) -> float:
        return 0.5 * min(1.0, self.count / TRUSTED_RATINGS)
