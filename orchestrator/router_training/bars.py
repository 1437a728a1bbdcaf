"""The strategies' bars (orchestrator/core/strategies.py: LOW_BAR_LOSS, QUALITY_SCALE), derived
from the training data alone: `orchestrator router bars`.

The rule, written down before it was first run (MT-Bench is never read here):

- Traffic: the held-out prompts of the eight training files pooled (the report's "mixed traffic"
  set), each predicted as at run time by the model fitted on the other folds (the report's 5
  folds, the shipped penalty and length weight): the weak reference's quality, the routing
  score's percentile among that model's own training prompts, `strong_gain` = 2 x their mean
  gap x the percentile. Two candidates a prompt: its file's weak reference (tier 0) and strong
  reference (tier 1), the strong one dearer and slower (as every strong model of the bundled
  catalog is against the cheap ones). Quality is the references' known score on the prompt.
- What a bar buys: the share of the strong-minus-weak gap it recovers (PGR: 0 is always-weak,
  1 always-strong; the issue's normalisation, since the files' absolute levels differ), and
  what it costs: the share of prompts sent to the strong model.
- LOW_BAR_LOSS (cost_optimal, performance_optimal): the largest bar, on a 0.005 grid, at which
  cost_optimal recovers at least half the gap (the issue's CPT(50%) operating point): the least
  cost that keeps half of what the strong model adds.
- QUALITY_SCALE (balanced): with the default preferences (equal weights) and those two
  candidates, balanced takes the strong model when its predicted gain exceeds 2 x QUALITY_SCALE
  (giving up 2 scales of quality weighs as much as being the cheapest and the fastest).
  QUALITY_SCALE is half the largest such bar, on the same grid, at which balanced recovers at
  least three quarters of the gap: midway between cost_optimal (a half) and quality_optimal (all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from orchestrator.router_training.data import MMLU, POOLED, Sample
from orchestrator.router_training.training import (
    FOLDS,
    QUANTILES,
    SEED,
    Features,
    evaluation_sets,
    fit_ridge,
    folds,
    neighbourhoods,
    source_weights,
    targets,
)

GRID = np.round(np.arange(0.0, 0.6001, 0.005), 3)
COST_OPTIMAL_SHARE = 0.50  # of the strong-minus-weak gap kept by cost_optimal
BALANCED_SHARE = 0.75  # kept by balanced under the default preferences
BALANCED_BAR_IN_SCALES = 2.0  # balanced's bar, in QUALITY_SCALEs, between a dearer, slower strong and a weak


@dataclass(frozen=True)
class HeldOut:
    """Each sample as the runtime would predict it from a model fitted without its fold."""

    weak: np.ndarray  # predicted quality of the weak reference
    score: np.ndarray  # the routing score (gap + length term)
    strong_gain: np.ndarray  # the calibrated gain of a tier-1 model

    def added(self) -> np.ndarray:
        """What the strong reference is predicted to add over the weak one (both clamped to [0, 1],
        as Prediction.quality clamps them)."""
        return np.clip(self.weak + self.strong_gain, 0, 1) - np.clip(self.weak, 0, 1)


def held_out_predictions(f: Features, samples: Sequence[Sample], penalty: float, length_weight: float,
                         seed: int = SEED) -> HeldOut:
    """The report's folds; in each, the ridge, the clusters, the percentile's quantiles and the mean gap
    of the other folds, exactly as `training.train` makes them for the shipped artifact."""
    fold, y, w = folds(samples, seed), targets(samples), source_weights(samples)
    weak, score, gain = np.zeros(len(samples)), np.zeros(len(samples)), np.zeros(len(samples))
    for k in range(FOLDS):
        held, kept = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        ridge = fit_ridge(f, y, w, kept, penalty)
        places = neighbourhoods(f, seed, kept)
        kept_scores = ridge.predict(f, kept)[:, 0] + length_weight * places.relative_length(f, kept)
        quantiles = np.quantile(kept_scores, np.linspace(0.0, 1.0, QUANTILES))
        predicted = ridge.predict(f, held)
        score[held] = predicted[:, 0] + length_weight * places.relative_length(f, held)
        weak[held] = predicted[:, 1]
        percentile = np.interp(score[held], quantiles, np.linspace(0.0, 1.0, QUANTILES))
        gain[held] = 2 * float(y[kept, 0].mean()) * percentile
    return HeldOut(weak, score, gain)


def strong_chosen(added: np.ndarray, bar: float) -> np.ndarray:
    """Where a strategy whose weak candidate must come within `bar` of the strong one takes the
    strong one (cost_optimal with bar LOW_BAR_LOSS; balanced, default preferences, 2 x QUALITY_SCALE)."""
    return added > bar


def recovered(samples: Sequence[Sample], rows: np.ndarray, strong: np.ndarray) -> float:
    """The share of the strong-minus-weak gap recovered on `rows` by sending `strong` (a mask over rows)
    to the strong reference."""
    gains = np.array([samples[i].strong - samples[i].weak for i in rows])
    return float(gains[strong].sum() / gains.sum())


@dataclass(frozen=True)
class Sweep:
    bars: np.ndarray
    recovered: np.ndarray  # on the traffic, per bar
    strong_share: np.ndarray  # of the traffic's prompts sent to the strong model, per bar

    def largest_keeping(self, share: float) -> float:
        keeping = self.bars[self.recovered >= share - 1e-12]
        return float(keeping.max()) if len(keeping) else 0.0

    def at(self, bar: float) -> tuple[float, float]:
        i = int(np.argmin(np.abs(self.bars - bar)))
        return float(self.recovered[i]), float(self.strong_share[i])


def sweep(samples: Sequence[Sample], rows: np.ndarray, added: np.ndarray, bars: np.ndarray = GRID) -> Sweep:
    picks = [strong_chosen(added[rows], bar) for bar in bars]
    return Sweep(bars, np.array([recovered(samples, rows, p) for p in picks]), np.array([p.mean() for p in picks]))


@dataclass(frozen=True)
class Bars:
    low_bar_loss: float
    quality_scale: float
    traffic: Sweep  # the pooled training files
    by_set: dict[str, Sweep]  # each file (MMLU included) and the pooled set


def derive(samples: Sequence[Sample], held: HeldOut) -> Bars:
    sets = evaluation_sets(samples)
    added = held.added()
    by_set = {name: sweep(samples, rows, added) for name, rows in sets.items()}
    traffic = by_set[POOLED]
    low = traffic.largest_keeping(COST_OPTIMAL_SHARE)
    scale = traffic.largest_keeping(BALANCED_SHARE) / BALANCED_BAR_IN_SCALES
    return Bars(low, round(scale, 4), traffic, by_set)


def summary(bars: Bars, current: tuple[float, float]) -> list[str]:
    low, scale = current
    lines = [
        f"LOW_BAR_LOSS {bars.low_bar_loss:.3f} (the largest bar at which cost_optimal keeps "
        f"{COST_OPTIMAL_SHARE:.0%} of the gap on the pooled training files, held out); now {low:.3f}",
        f"QUALITY_SCALE {bars.quality_scale:.4f} (half the largest bar at which balanced, default preferences, "
        f"keeps {BALANCED_SHARE:.0%}); now {scale:.4f}",
        "",
        "| set | bar | gap recovered | prompts to the strong model |",
        "|---|---:|---:|---:|",
    ]
    for bar, what in ((bars.low_bar_loss, "LOW_BAR_LOSS (derived)"), (low, "LOW_BAR_LOSS (now)"),
                      (BALANCED_BAR_IN_SCALES * bars.quality_scale, "balanced (derived)"),
                      (BALANCED_BAR_IN_SCALES * scale, "balanced (now)")):
        for name, s in sorted(bars.by_set.items(), key=lambda item: (item[0] != MMLU, item[0])):
            kept, share = s.at(bar)
            lines.append(f"| {name} | {bar:.3f}: {what} | {kept:.3f} | {share:.1%} |")
    return lines
