"""Whether the routing figures' held-out parts are held out: on the real training data, the
cross-validation folds of `orchestrator router eval` and of the nested run, and MT-Bench.

    .venv/bin/python -m bench.routing_leakage

Prints, and exits 1 unless each is 0: the questions (one key a question, whatever its file's
template: router_training/data.py's question_key) found in more than one outer fold; the
prompts whose last turn is word for word in two folds; the same two inside each outer
fold's training part, dealt into the nested run's inner folds; and MT-Bench's turns found
among the training prompts, by key or word for word, or nearly (`data.near_duplicates_of`:
half the word 3-grams shared, or 80% of the shorter text's in the other). Each check is run on
the training set the report uses (`training_files()`) and, where that differs, on the one with
every file kept in the package (arena_bench_v1, as bench/routing_nested.py loads it).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Sequence

from orchestrator.router_training.data import (
    ARENA_FILE,
    DEFAULT_DIR,
    Sample,
    load_mt_bench,
    load_training_set,
    near_duplicates_of,
    question_key,
    training_files,
)
from orchestrator.router_training.training import FOLDS, SEED, folds


def _normal(text: str) -> str:
    return " ".join(text.split())


def crossing(samples: Sequence[Sample], fold: Sequence[int]) -> tuple[int, int]:
    """(question keys, identical last turns) that stand in more than one fold."""
    by_key, by_text = defaultdict(set), defaultdict(set)
    for sample, k in zip(samples, fold, strict=True):
        for turn in sample.turns:
            by_key[question_key(turn)].add(int(k))
        by_text[_normal(sample.turns[-1])].add(int(k))
    return (sum(len(f) > 1 for f in by_key.values()), sum(len(f) > 1 for f in by_text.values()))


def check(samples: Sequence[Sample], name: str) -> int:
    """Prints the counts for one training set; returns how many leaks it found."""
    fold = folds(samples)
    counts = {"outer folds": crossing(samples, fold)}
    for k in range(FOLDS):  # as training.nested_out_of_fold deals them
        kept = [s for s, f in zip(samples, fold, strict=True) if f != k]
        counts[f"inner folds of outer {k}"] = crossing(kept, folds(kept, SEED + 1 + k))
    keys = {question_key(t) for s in samples for t in s.turns}
    texts = {_normal(t) for s in samples for t in s.turns}
    turns = [t for s in load_mt_bench() for t in s.turns]
    in_training = sum(question_key(t) in keys or _normal(t) in texts for t in turns)
    near = near_duplicates_of([t for s in samples for t in s.turns], turns)
    near_turns = {i for hits in near for i in hits}
    near_by_source = Counter(s.source for s, hits in zip((s for s in samples for _ in s.turns), near, strict=True) if hits)
    print(f"== {name}: {len(samples)} training prompts, {len(keys)} questions; {len(turns)} MT-Bench turns")
    for where, (questions, identical) in counts.items():
        print(f"{where}: {questions} questions and {identical} identical prompts in more than one fold")
    print(f"MT-Bench turns found in the training prompts: {in_training}")
    print(f"MT-Bench turns nearly duplicated by a training prompt: {len(near_turns)} "
          f"(training prompts: {dict(near_by_source)})")
    return in_training + len(near_turns) + sum(q + i for q, i in counts.values())


def main() -> int:
    leaks = check(load_training_set(), "the report's training set (the shared files)")
    leaks += check(load_training_set(DEFAULT_DIR, training_files(DEFAULT_DIR, (ARENA_FILE,))),
                   f"with {ARENA_FILE} (bench/routing_nested.py)")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
