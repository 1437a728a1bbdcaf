"""Nested cross-validation of the learned router's training method: how much of a cross-validated
choice of settings survives on folds that took no part in the choice.

    python -m bench.routing_nested run NAME      # one variant's out-of-fold scores, to OUT/NAME.json
    python -m bench.routing_nested table A B ... # APGR per set, and B - A per fold, from those files

Variants (all the shipped score: the ridge's gap + length weight x the prompt's log length within
its cluster; MT-Bench is never read here):
- `shipped`: the shipped artifact's settings (penalty and length weight from its metadata) on the
  report's 5 folds, not nested: the figures `orchestrator router eval` prints.
- `nested-today`: the shipped method, nested: inside each outer training part, the penalty (today's
  grid, `training.PENALTIES`) by mean APGR over the files, then the length weight by the worst
  margin over prompt length, on that part's own 5 folds (`training.nested_out_of_fold`).
- `nested-wide`: the same with the penalty grid widened to no penalty and very small ones (`WIDE`).
- `nested-zero`: the same with the penalty fixed at 0 (only the length weight chosen inside).
- `zero`: penalty 0 and the shipped length weight, not nested (the lead as first seen).
- any of them with `+arena` (`nested-today+arena`): the same with the prompts of
  `datasets/arena_bench_v1.jsonl.gz` trained and chosen on too. Every variant loads them, so the
  folds (dealt over all groups) are the same for all and the comparison is paired; without
  `+arena` they are only predicted, held out like the rest, never fitted or chosen on. (Since
  2026-12-07 evening the folds are dealt with those prompts present, so they differ from the
  figures recorded before for the same variant names.)

Noise per set: the standard error, over the 5 outer folds, of the per-fold APGR difference between
two variants (the folds are the same, so the difference is paired).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

from orchestrator.core.routing_model.model import load_shipped
from orchestrator.router_training.data import (
    ARENA,
    ARENA_FILE,
    DEFAULT_DIR,
    MMLU,
    POOLED,
    load_training_set,
    training_files,
)
from orchestrator.router_training.evaluation import apgr
from orchestrator.router_training.training import (
    FOLDS,
    PENALTIES,
    SEED,
    evaluation_sets,
    features,
    fit_ridge,
    folds,
    neighbourhoods,
    nested_out_of_fold,
    reading_of,
    source_weights,
    targets,
    word_vectors,
)

WIDE = (0.0, 0.01, 0.1, 0.3, 1.0, 3.0, *PENALTIES)
OUT = Path(os.environ.get("ROUTING_NESTED_OUT", "/tmp/routing_nested"))
SHARED_POOLED = "pooled, the eight shared files only"


def _samples() -> list:
    return load_training_set(DEFAULT_DIR, training_files(DEFAULT_DIR, (ARENA_FILE,)))


def _samples_and_features():
    samples = _samples()
    readings = [reading_of(s.turns) for s in samples]
    return samples, features(word_vectors(readings), readings)


def run(name: str) -> None:
    samples, f = _samples_and_features()
    base, arena = name.removesuffix("+arena"), name.endswith("+arena")
    trainable = np.array([arena or s.source != ARENA for s in samples])
    choices: list[dict] = []
    if base in ("shipped", "zero"):
        meta = load_shipped().metadata
        penalty = float(meta["penalty"]) if base == "shipped" else 0.0
        length_weight = float(meta["length_weight"])
        fold, y, w = folds(samples, SEED), targets(samples), source_weights(samples)
        scores = np.zeros(len(samples))
        for k in range(FOLDS):
            held, kept = np.flatnonzero(fold == k), np.flatnonzero((fold != k) & trainable)
            scores[held] = (fit_ridge(f, y, w, kept, penalty).predict(f, held)[:, 0]
                            + length_weight * neighbourhoods(f, SEED, kept).relative_length(f, held))
        choices = [{"penalty": penalty, "length_weight": length_weight}] * FOLDS
    else:
        grid = {"nested-today": PENALTIES, "nested-wide": WIDE, "nested-zero": (0.0,)}[base]
        scores, chosen = nested_out_of_fold(f, samples, penalties=grid, trainable=trainable)
        choices = [{"penalty": c.penalty, "length_weight": c.length_weight, "penalty_scores": c.penalty_scores,
                    "length_margins": c.length_margins} for c in chosen]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"scores": scores.tolist(), "choices": choices}))


def sets_of(samples) -> dict[str, np.ndarray]:
    """`evaluation_sets` (each file; pooled = every file but MMLU, arena's included) and the pool
    of the eight shared files alone (the pooled set of the figures before arena's file)."""
    sets = evaluation_sets(samples)
    sets[SHARED_POOLED] = np.array([i for i in sets[POOLED] if samples[i].source != ARENA])
    return sets


def per_set(samples, scores: np.ndarray, fold: np.ndarray) -> dict[str, tuple[float, list[float]]]:
    """Per set: the APGR of all out-of-fold scores, and the APGR within each outer fold."""
    figures = {}
    for name, rows in sets_of(samples).items():
        whole = apgr(scores[rows], [samples[i] for i in rows])[0]
        by_fold = []
        for k in range(FOLDS):
            index = rows[fold[rows] == k]
            by_fold.append(apgr(scores[index], [samples[i] for i in index])[0])
        figures[name] = (whole, by_fold)
    return figures


def table(names: list[str]) -> str:
    samples = _samples()
    fold = folds(samples, SEED)
    loaded = {n: json.loads((OUT / f"{n}.json").read_text()) for n in names}
    figures = {n: per_set(samples, np.array(v["scores"]), fold) for n, v in loaded.items()}
    length = np.log1p([sum(map(len, s.turns)) for s in samples])
    base = names[0]
    lines = ["| set | prompt length | " + " | ".join(names) + " | "
             + " | ".join(f"{n} - {base} (noise)" for n in names[1:]) + " |",
             "|---|" + "---:|" * (1 + len(names) + len(names) - 1)]
    sets = sets_of(samples)
    order = [MMLU, *sorted(k for k in sets if k not in (MMLU, POOLED, SHARED_POOLED)), SHARED_POOLED, POOLED]
    for name in order:
        rows = sets[name]
        cells = [f"{apgr(length[rows], [samples[i] for i in rows])[0]:.3f}"]
        cells += [f"{figures[n][name][0]:.3f}" for n in names]
        for n in names[1:]:
            diffs = [a - b for a, b in zip(figures[n][name][1], figures[base][name][1], strict=True)
                     if np.isfinite(a) and np.isfinite(b)]
            noise = statistics.stdev(diffs) / len(diffs) ** 0.5
            cells.append(f"{figures[n][name][0] - figures[base][name][0]:+.3f} ({noise:.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for n, v in loaded.items():
        lines.append(f"\n{n}: penalty/length weight per outer fold: "
                     + ", ".join(f"{c['penalty']:g}/{c['length_weight']:g}" for c in v["choices"]))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        print(table(sys.argv[2:]))
