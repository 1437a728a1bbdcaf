"""The routing data sets, read in place (ROUTING_EVAL_DIR, default /work/shared/eval/routing), and
the training files kept in this package (`datasets/`, see its README: open-ended chat prompts of
arena-bench-v1 with GPT-4's 1-10 grades, which the shared files lack).

Every prompt becomes a `Sample`: its text (user turns), the file it came from, a group for
cross-validation, the strong and weak reference models' quality on it, and, where the file
has them, every model's scores and costs. The strong/weak pair of each file: GPT-4-1106 and
Mixtral-8x7B where both were measured (RouterBench, MMLU, MT-Bench); on the seven-model
files, the best and worst model by mean score.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("ROUTING_EVAL_DIR", "/work/shared/eval/routing"))
MMLU_FILE = "mmlu_gpt4_vs_mixtral.jsonl.gz"
MT_BENCH_FILE = "mt_bench_gpt4_vs_mixtral.jsonl"
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"
MMLU = "mmlu"
POOLED = "pooled training files (mixed traffic)"
BUNDLED_DIR = Path(__file__).parent / "datasets"  # the package's own files; the shipped artifact trains on none
ARENA_FILE = "arena_bench_v1.jsonl.gz"
ARENA = ARENA_FILE.split(".")[0]


@dataclass(frozen=True)
class Sample:
    turns: tuple[str, ...]
    source: str  # the file's name without extensions
    strong: float
    weak: float
    group: str  # samples of one group are never split across folds
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


def _lines(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def question_key(text: str) -> str:
    """The question itself, normalised, whatever the file's template: the same question in two
    files (ARC-Challenge is in a RouterBench file and a mix7 file, MMLU's questions in mix7_mmlu)
    gets the same key, so that cross-validation never holds it out on one side while training
    on it on the other."""
    stem = text
    if "Question:" in stem and "\nAnswer:" in stem:  # mix7's ARC template
        stem = stem.rsplit("Question:", 1)[1].split("\nAnswer:")[0]
    elif "\nA)" in stem:  # RouterBench's few-shot template: the last question, before its choices
        stem = stem.rsplit("\nA)", 1)[0].rsplit("\n\n", 1)[-1]
    elif "\nA." in stem:  # MMLU's, with its choices: "Which of the following is true?" alone is no question
        stem = stem.split("\nAnswer:")[0]
    return re.sub(r"[^a-z0-9]+", " ", stem.lower()).strip()


def strong_and_weak(rows: list[dict]) -> tuple[str, str]:
    models = sorted({m for row in rows for m in row["scores"]})
    if STRONG in models and WEAK in models:
        return STRONG, WEAK
    means = {m: statistics.fmean(row["scores"][m] for row in rows if m in row["scores"]) for m in models}
    return max(models, key=lambda m: (means[m], m)), min(models, key=lambda m: (means[m], m))


def load_training_file(path: Path) -> list[Sample]:
    rows = _lines(path)
    strong, weak = strong_and_weak(rows)
    source = path.name.split(".")[0]
    return [  # a row's own `group` (arena's: its prompt id, near-duplicates joined) or its question
        Sample((row["prompt"],), source, float(row["scores"][strong]), float(row["scores"][weak]),
               row.get("group") or question_key(row["prompt"]), row["scores"], row.get("costs") or {})
        for row in rows
        if strong in row["scores"] and weak in row["scores"]
    ]


def load_mmlu(directory: Path = DEFAULT_DIR) -> list[Sample]:
    """MMLU, grouped by subject (the README's rule: report it held out by subject)."""
    return [
        Sample((row["prompt"],), MMLU, float(row["strong_correct"]), float(row["weak_correct"]), f"subject:{row['subject']}")
        for row in _lines(directory / MMLU_FILE)
    ]


def load_mt_bench(directory: Path = DEFAULT_DIR) -> list[Sample]:
    """MT-Bench: never trained or tuned on; quality is the judge's 1-10 score."""
    return [
        Sample(tuple(row["turns"]), "mt_bench", float(row["strong_score"]), float(row["weak_score"]), str(row["question_id"]))
        for row in _lines(directory / MT_BENCH_FILE)
    ]


def training_files(directory: Path = DEFAULT_DIR, bundled: tuple[str, ...] = ()) -> list[Path]:
    """The shared `train/*.jsonl.gz` of `directory`, then the package's own files `bundled`
    (an experiment's: bench/routing_nested.py)."""
    return sorted((directory / "train").glob("*.jsonl.gz")) + [BUNDLED_DIR / name for name in bundled]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """The text's word n-grams (lower case, letters and digits), or its few words as one."""
    w = words(text)
    return frozenset(tuple(w[i:i + n]) for i in range(len(w) - n + 1)) if len(w) >= n else frozenset([tuple(w)])


NEAR_JACCARD = 0.5  # word 3-grams shared over those of either
NEAR_CONTAINMENT = 0.8  # or the shorter text's 3-grams found in the other, when it has this many
# (about 14 words: at 8, MBPP's "Write a python function to find the length of the longest sublists."
# matched MT-Bench's "Here is a Python function to find the length of the longest common
# subsequence ...", another question with the same opening words)
NEAR_CONTAINED_MIN = 12


def near_duplicate(a: frozenset, b: frozenset) -> bool:
    """Whether two texts' `shingles` say they are the same text, or one holds the other, give
    or take a few words (a question pasted with a preamble, a passage cut short)."""
    if not a or not b:
        return False
    common = len(a & b)
    smaller = min(len(a), len(b))
    return (common / len(a | b) >= NEAR_JACCARD
            or (smaller >= NEAR_CONTAINED_MIN and common / smaller >= NEAR_CONTAINMENT))


def near_duplicates_of(texts: list[str], references: list[str]) -> list[list[int]]:
    """For each text, the references it near-duplicates (`near_duplicate`), or that are word for
    word the same once lower-cased and stripped of punctuation."""
    ref_shingles = [shingles(r) for r in references]
    ref_words = {" ".join(words(r)): i for i, r in enumerate(references)}
    index: dict[tuple[str, ...], list[int]] = {}
    for i, grams in enumerate(ref_shingles):
        for gram in grams:
            index.setdefault(gram, []).append(i)
    found = []
    for text in texts:
        grams = shingles(text)
        candidates = {i for gram in grams for i in index.get(gram, ())}
        same = ref_words.get(" ".join(words(text)))
        hits = {i for i in candidates if near_duplicate(grams, ref_shingles[i])} | ({same} if same is not None else set())
        found.append(sorted(hits))
    return found


def load_training_set(directory: Path = DEFAULT_DIR, files: list[Path] | None = None, with_mmlu: bool = True) -> list[Sample]:
    """Every training file, and MMLU, grouped for cross-validation so that nothing held out was
    trained on: MMLU by subject, the other files by question, and groups that share a question
    (a question in two files, or in two MMLU subjects) joined into one."""
    samples = [s for path in (files if files is not None else training_files(directory)) for s in load_training_file(path)]
    if with_mmlu:
        samples += load_mmlu(directory)
    return _joined(samples)


def _joined(samples: list[Sample]) -> list[Sample]:
    """The samples with every two groups that hold the same question made one (union-find)."""
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.setdefault(group, group) != group:
            parent[group] = parent[parent[group]]
            group = parent[group]
        return group

    first_group: dict[str, str] = {}
    for s in samples:
        seen = first_group.setdefault(question_key(s.turns[0]), s.group)
        parent[root(s.group)] = root(seen)
    return [dataclasses.replace(s, group=root(s.group)) for s in samples]
