"""The routing-quality report: APGR and CPT(50%) of the learned router beside random, prompt
length and the old heuristic (complexity_score), on every set the issue names.

- MT-Bench: the shipped model, which never saw it; an item's score is the mean over its
  turns, each read with the turns before it.
- MMLU held out, each training file and the files pooled as mixed traffic: out-of-fold
  predictions of 5-fold cross-validation (fixed seed) over the whole training set, grouped
  by question, MMLU and the MMLU questions of other files by subject.
- RouterBench: the cost, as a share of always-GPT-4's, at which the router (GPT-4 for the
  prompts it scores highest, Mixtral for the rest) is as accurate as always-GPT-4.
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
    DEFAULT_DIR,
    MMLU,
    STRONG,
    WEAK,
    Sample,
    load_mt_bench,
    load_training_set,
    training_files,
)
from orchestrator.router_training.evaluation import apgr, cost_to_match_strong
from orchestrator.router_training.training import features, out_of_fold, reading_of, word_vectors

RANDOM_SEEDS = 10
POOLED = "pooled training files (mixed traffic)"


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


def cross_validated(samples: list[Sample], penalty: float) -> np.ndarray:
    readings = [reading_of(s.turns) for s in samples]
    return out_of_fold(features(word_vectors(readings), readings), samples, penalty)[:, 0]


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
    samples = load_training_set(directory, training_files(directory))
    penalty = float(model.metadata["penalty"])
    gap = cross_validated(samples, penalty)
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
        f"Penalty {penalty:g} (chosen by the same cross-validation when the artifact was trained); "
        f"trained on {model.metadata['trained_on']}.",
    ]
    return rows, notes


def markdown(rows: Sequence[Row]) -> str:
    lines = ["| set | prompts | router | APGR | CPT(50%) |", "|---|---:|---|---:|---:|"]
    lines += [f"| {r.set_name} | {r.prompts:,} | {r.router} | {r.apgr:.3f} | {r.cpt50:.1f}% |" for r in rows]
    return "\n".join(lines)
