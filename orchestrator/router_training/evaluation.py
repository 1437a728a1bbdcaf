"""APGR and CPT(50%) (the README of the routing data defines them), and the cost at which a
router matches the strong model's accuracy.

Prompts with equal scores count at their expected value under a random order, so ties
neither help nor hurt (as bench/routing_quality.py has always counted them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Scored(Protocol):
    strong: float
    weak: float


def _recovered(scores: Sequence[float] | np.ndarray, samples: Sequence[Scored]) -> np.ndarray:
    """Quality gained over always-weak when the n highest-scored prompts go strong, n = 0..N."""
    scores = np.asarray(scores, dtype=float)
    gains = np.array([s.strong - s.weak for s in samples])
    order = np.argsort(-scores, kind="stable")
    ordered, gains = scores[order], gains[order]
    _, starts, counts = np.unique(-ordered, return_index=True, return_counts=True)
    tied_means = np.add.reduceat(gains, starts) / counts
    return np.concatenate([[0.0], np.cumsum(np.repeat(tied_means, counts))])


def apgr(scores: Sequence[float] | np.ndarray, samples: Sequence[Scored]) -> tuple[float, float]:
    """(APGR, CPT(50%) in percent of prompts sent to the strong model)."""
    gained = _recovered(scores, samples)
    total, count = gained[-1], len(samples)
    if total <= 0:
        return float("nan"), float("nan")
    curve = gained[np.round(np.arange(101) * count / 100).astype(int)]
    area = (curve.sum() - (curve[0] + curve[-1]) / 2) / 100
    return float(area / total), float(100 * np.argmax(gained >= total / 2) / count)


def cost_to_match_strong(scores: Sequence[float] | np.ndarray, strong: np.ndarray, weak: np.ndarray,
                         strong_cost: np.ndarray, weak_cost: np.ndarray) -> float:
    """The least cost, as a share of always-strong's, at which sending the top-scored prompts
    to the strong model (the rest to the weak one) is at least as accurate as always-strong."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    s, w, cs, cw = strong[order], weak[order], strong_cost[order], weak_cost[order]
    accuracy = np.concatenate([[0.0], np.cumsum(s - w)]) + w.sum()
    cost = np.concatenate([[0.0], np.cumsum(cs - cw)]) + cw.sum()
    matching = accuracy >= s.sum() - 1e-9
    return float(cost[matching].min() / cs.sum())


def cheapest_within(predicted: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                    thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold t, send each prompt to the cheapest model predicted within t of its best
    predicted model: (total accuracy, total cost) per t. Arrays are (prompts, models)."""
    rows = np.arange(len(predicted))
    accuracy, cost = [], []
    for t in thresholds:
        eligible = predicted >= predicted.max(axis=1, keepdims=True) - t
        pick = np.where(eligible, costs, np.inf).argmin(axis=1)
        accuracy.append(scores[rows, pick].sum())
        cost.append(costs[rows, pick].sum())
    return np.array(accuracy), np.array(cost)
