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
from orchestrator.router_training.data import DEFAULT_DIR, MMLU, POOLED, load_training_set, training_files
from orchestrator.router_training.evaluation import apgr
from orchestrator.router_training.training import (
    FOLDS,
    PENALTIES,
    SEED,
    evaluation_sets,
    features,
    folds,
    nested_out_of_fold,
    out_of_fold,
    out_of_fold_relative_length,
    reading_of,
    word_vectors,
)

WIDE = (0.0, 0.01, 0.1, 0.3, 1.0, 3.0, *PENALTIES)
OUT = Path(os.environ.get("ROUTING_NESTED_OUT", "/tmp/routing_nested"))


def _samples_and_features():
    samples = load_training_set(DEFAULT_DIR, training_files(DEFAULT_DIR))
    readings = [reading_of(s.turns) for s in samples]
    return samples, features(word_vectors(readings), readings)


def run(name: str) -> None:
    samples, f = _samples_and_features()
    choices: list[dict] = []
    if name in ("shipped", "zero"):
        meta = load_shipped().metadata
        penalty = float(meta["penalty"]) if name == "shipped" else 0.0
        length_weight = float(meta["length_weight"])
        scores = out_of_fold(f, samples, penalty)[:, 0] + length_weight * out_of_fold_relative_length(f, samples)
        choices = [{"penalty": penalty, "length_weight": length_weight}] * FOLDS
    else:
        grid = {"nested-today": PENALTIES, "nested-wide": WIDE, "nested-zero": (0.0,)}[name]
        scores, chosen = nested_out_of_fold(f, samples, penalties=grid)
        choices = [{"penalty": c.penalty, "length_weight": c.length_weight, "penalty_scores": c.penalty_scores,
                    "length_margins": c.length_margins} for c in chosen]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"scores": scores.tolist(), "choices": choices}))


def per_set(samples, scores: np.ndarray, fold: np.ndarray) -> dict[str, tuple[float, list[float]]]:
    """Per set: the APGR of all out-of-fold scores, and the APGR within each outer fold."""
    figures = {}
    for name, rows in evaluation_sets(samples).items():
        whole = apgr(scores[rows], [samples[i] for i in rows])[0]
        by_fold = []
        for k in range(FOLDS):
            index = rows[fold[rows] == k]
            by_fold.append(apgr(scores[index], [samples[i] for i in index])[0])
        figures[name] = (whole, by_fold)
    return figures


def table(names: list[str]) -> str:
    samples = load_training_set(DEFAULT_DIR, training_files(DEFAULT_DIR))
    fold = folds(samples, SEED)
    loaded = {n: json.loads((OUT / f"{n}.json").read_text()) for n in names}
    figures = {n: per_set(samples, np.array(v["scores"]), fold) for n, v in loaded.items()}
    length = np.log1p([sum(map(len, s.turns)) for s in samples])
    base = names[0]
    lines = ["| set | prompt length | " + " | ".join(names) + " | "
             + " | ".join(f"{n} - {base} (noise)" for n in names[1:]) + " |",
             "|---|" + "---:|" * (1 + len(names) + len(names) - 1)]
    sets = evaluation_sets(samples)
    order = [MMLU, *sorted(k for k in sets if k not in (MMLU, POOLED)), POOLED]
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
