"""The routing-quality report: APGR and CPT(50%) of the learned router beside random, prompt
length and the old heuristic (complexity_score), on every set the issue names.

- MT-Bench: the shipped model, which never saw it; an item's score is the mean over its
  turns, each read with the turns before it.
- arena-bench-v1 (router_training/datasets), while it is not among the training files: the
  shipped model, which never saw it either (open-ended chat graded 1-10 by GPT-4, like MT-Bench).
- MMLU held out, each training file and the files pooled as mixed traffic: out-of-fold
  predictions of 5-fold cross-validation (fixed seed) over the whole training set, grouped
  by question whatever the file's template, MMLU by subject, and groups sharing a question
  joined; the length term's clusters are made without the held-out fold.
- RouterBench: the cost, as a share of always-GPT-4's, at which the router (GPT-4 for the
  prompts it scores highest, Mixtral for the rest) is as accurate as always-GPT-4; and the
  same with per-model predictions over all eleven models (the cheapest one predicted within
  a threshold of the best, the threshold swept).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.core.analysis import analyze
from orchestrator.core.routing_model.model import QualityModel, load_shipped
from orchestrator.core.types import Message
from orchestrator.router_training.data import (
    ARENA_FILE,
    BUNDLED_DIR,
    DEFAULT_DIR,
    MMLU,
    POOLED,
    STRONG,
    WEAK,
    Sample,
    load_mt_bench,
    load_training_file,
    load_training_set,
    training_files,
)
from orchestrator.router_training.evaluation import apgr, cheapest_within, cost_to_match_strong
from orchestrator.router_training.training import (
    Features,
    features,
    out_of_fold,
    out_of_fold_per_model,
    out_of_fold_relative_length,
    reading_of,
    word_vectors,
)

RANDOM_SEEDS = 10


@dataclass(frozen=True)
class Row:
    set_name: str
    prompts: int
    router: str
    apgr: float
    cpt50: float


def complexity_score(sample: Sample) -> float:
    turns = sample.turns
    return statistics.fmean(
        analyze(tuple(Message("user", t) for t in turns[: i + 1]), None, 1024).complexity_score for i in range(len(turns))
    )


def prompt_length(sample: Sample) -> float:
    return float(sum(map(len, sample.turns)))


def learned_gap(model: QualityModel) -> Callable[[Sample], float]:
    def gap(sample: Sample) -> float:
        return statistics.fmean(model.predict_reading(reading_of(sample.turns[: i + 1])).gap
                                for i in range(len(sample.turns)))
    return gap


def random_apgr(samples: Sequence[Sample]) -> tuple[float, float]:
    runs = [apgr(np.random.default_rng(seed).random(len(samples)), samples) for seed in range(RANDOM_SEEDS)]
    return statistics.fmean(a for a, _ in runs), statistics.fmean(c for _, c in runs)


def rows_for(set_name: str, samples: Sequence[Sample], learned: np.ndarray, learned_name: str) -> list[Row]:
    figures = [
        (learned_name, apgr(learned, samples)),
        (f"random (mean of {RANDOM_SEEDS} seeds)", random_apgr(samples)),
        ("prompt length", apgr([prompt_length(s) for s in samples], samples)),
        ("complexity_score (old heuristic)", apgr([complexity_score(s) for s in samples], samples)),
    ]
    return [Row(set_name, len(samples), name, a, c) for name, (a, c) in figures]


def cross_validated(samples: list[Sample], f: Features, penalty: float, length_weight: float) -> np.ndarray:
    """Out-of-fold routing scores: the gap of the ridge fitted on the other folds, plus the length term."""
    return out_of_fold(f, samples, penalty)[:, 0] + length_weight * out_of_fold_relative_length(f, samples)


def routerbench_per_model(samples: list[Sample], f: Features, penalty: float) -> list[str]:
    """Each RouterBench model's correctness predicted out of fold; each prompt goes to the cheapest
    model predicted within t of the best, t swept: the cost (share of always-GPT-4's) at which
    accuracy first reaches always-GPT-4's, and the accuracy reached at half its cost."""
    models = sorted(next(s.costs for s in samples if s.source.startswith("routerbench")))
    rows = np.array([i for i, s in enumerate(samples) if s.source.startswith("routerbench")
                     and set(models) <= set(s.scores) and set(models) <= set(s.costs)])
    scores = np.array([[samples[i].scores[m] for m in models] for i in rows])
    costs = np.array([[samples[i].costs[m] for m in models] for i in rows])
    predicted = out_of_fold_per_model(f, samples, rows, models, penalty)
    accuracy, cost = cheapest_within(predicted, scores, costs, np.linspace(0.0, 0.5, 201))
    strong = models.index(STRONG)
    target, full = scores[:, strong].sum(), costs[:, strong].sum()
    matching = accuracy >= target - 1e-9
    matched = (f"first reaches always-GPT-4's accuracy ({target / len(rows):.3f}) at {100 * cost[matching].min() / full:.1f}% "
               "of its cost" if matching.any() else
               f"never reaches always-GPT-4's accuracy ({target / len(rows):.3f}); at best {accuracy.max() / len(rows):.3f}")
    half = cost <= full / 2
    return [f"RouterBench, per-model predictions ({len(rows)} prompts with all {len(models)} models, 5-fold CV, the "
            f"cheapest model predicted within t of the best, t swept): {matched}; at 50% of GPT-4's cost it reaches "
            f"{accuracy[half].max() / len(rows):.3f} ({100 * accuracy[half].max() / target:.1f}% of GPT-4's accuracy)."]


def routerbench_cost_share(samples: Sequence[Sample], gap: np.ndarray) -> tuple[float, int]:
    rows = [i for i, s in enumerate(samples) if s.source.startswith("routerbench") and s.costs]
    picked = [samples[i] for i in rows]
    share = cost_to_match_strong(
        gap[rows], np.array([s.strong for s in picked]), np.array([s.weak for s in picked]),
        np.array([s.costs[STRONG] for s in picked]), np.array([s.costs[WEAK] for s in picked]),
    )
    return share, len(rows)


def report(directory: Path = DEFAULT_DIR, model: QualityModel | None = None) -> tuple[list[Row], list[str]]:
    model = model or load_shipped()
    rows: list[Row] = []
    mt_bench = load_mt_bench(directory)
    rows += rows_for("MT-Bench (never trained on)", mt_bench, np.array([learned_gap(model)(s) for s in mt_bench]),
                     "learned router (shipped artifact)")
    arena = load_training_file(BUNDLED_DIR / ARENA_FILE)
    rows += rows_for("arena-bench-v1 (not trained on)", arena, np.array([learned_gap(model)(s) for s in arena]),
                     "learned router (shipped artifact)")
    samples = load_training_set(directory, training_files(directory))
    penalty, length_weight = float(model.metadata["penalty"]), float(model.metadata["length_weight"])
    readings = [reading_of(s.turns) for s in samples]
    f = features(word_vectors(readings), readings)
    gap = cross_validated(samples, f, penalty, length_weight)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_source.setdefault(s.source, []).append(i)
    learned_name = "learned router (5-fold CV)"
    for source in [MMLU, *sorted(k for k in by_source if k != MMLU)]:
        index = by_source[source]
        name = "MMLU held out by subject" if source == MMLU else source
        rows += rows_for(name, [samples[i] for i in index], gap[index], learned_name)
    pooled = [i for i, s in enumerate(samples) if s.source != MMLU]
    rows += rows_for(POOLED, [samples[i] for i in pooled], gap[pooled], learned_name)
    share, count = routerbench_cost_share(samples, gap)
    notes = [
        f"RouterBench ({count} prompts, 5-fold CV): the router matches always-GPT-4's accuracy at "
        f"{100 * share:.1f}% of its cost (GPT-4 for the highest-scored prompts, Mixtral-8x7B for the rest).",
        *routerbench_per_model(samples, f, penalty),
        f"Penalty {penalty:g} and length weight {length_weight:g} (chosen by the same cross-validation when the "
        f"artifact was trained); "
        f"trained on {model.metadata['trained_on']}.",
    ]
    return rows, notes


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| set | prompts | router | APGR | CPT(50%) |", "|---|---:|---|---:|---:|"]
    lines += [f"| {r.set_name} | {r.prompts:,} | {r.router} | {r.apgr:.3f} | {r.cpt50:.1f}% |" for r in rows]
    return "\n".join(lines)
