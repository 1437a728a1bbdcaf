"""Build `datasets/arena_bench_v1.jsonl.gz` from lmarena/arena-hard-auto (Apache-2.0), read from a
local clone's git directory (the data sit in its history, not at its head):

    python -m orchestrator.router_training.arena GIT_DIR [--mt-bench FILE]

The source, at commit `COMMIT` ("reproduce", 2023-12-14): data/arena-bench-v1/question.jsonl (300
single-turn prompts taken from Chatbot Arena) and data/arena-bench-v1/model_judgment/*.jsonl, GPT-4's
single-answer grades (1-10, against a GPT-4 reference answer; MT-Bench's own way of judging) of 15
models' answers, one file a model. A row of the output: `id` (the question id), `prompt`, `group`
(cross-validation: the id, near-duplicate prompts joined), `scores` (model -> the grade / 10; a
model whose grade is missing, the judge's reply held no `[[n]]`, is left out). The pair the router
learns from: gpt-4-1106-preview (the source's "gpt-4-turbo" file) strong and Mixtral-8x7B-Instruct,
named here as the other files name it (mistralai/mixtral-8x7b-chat), weak.

A prompt that is, or nearly is, one of MT-Bench's turns (data.near_duplicates_of) is dropped:
MT-Bench is never trained on.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
from pathlib import Path

from orchestrator.router_training.data import (
    ARENA_FILE,
    BUNDLED_DIR,
    DEFAULT_DIR,
    MT_BENCH_FILE,
    STRONG,
    WEAK,
    near_duplicates_of,
)

COMMIT = "4a705dd6963f777aba2ae79259e3013934e6e012"
ROOT = "data/arena-bench-v1"
RENAMED = {"mistralai/Mixtral-8x7B-Instruct-v0.1": WEAK}


def _show(git_dir: Path, path: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{COMMIT}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def build(git_dir: Path, mt_bench: Path) -> tuple[list[dict], dict]:
    questions = _jsonl(_show(git_dir, f"{ROOT}/question.jsonl"))
    listing = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "--name-only", COMMIT, f"{ROOT}/model_judgment/"],
                             check=True, capture_output=True, text=True).stdout.split()
    scores: dict[str, dict[str, float]] = {q["question_id"]: {} for q in questions}
    for path in sorted(listing):
        for row in _jsonl(_show(git_dir, path)):
            grade = row.get("score")
            if grade in (None, "", "None"):
                continue
            model = RENAMED.get(row["model"], row["model"])
            scores[row["question_id"]][model] = round(float(grade) / 10, 4)
    prompts = [q["turns"][0] for q in questions]
    turns = [t for line in mt_bench.read_text().splitlines() if line.strip() for t in json.loads(line)["turns"]]
    leaked = near_duplicates_of(prompts, turns)
    # groups: near-duplicate prompts of the file share one (union-find over their ids)
    parent = {q["question_id"]: q["question_id"] for q in questions}

    def root(i: str) -> str:
        while parent[i] != i:
            i = parent[i]
        return i

    for q, same in zip(questions, near_duplicates_of(prompts, prompts), strict=True):
        for j in same:
            a, b = sorted((root(q["question_id"]), root(questions[j]["question_id"])))
            parent[b] = a
    rows = [{"id": q["question_id"], "group": f"arena:{root(q['question_id'])}", "prompt": q["turns"][0],
             "scores": dict(sorted(scores[q["question_id"]].items()))}
            for q, hit in zip(questions, leaked, strict=True) if not hit]
    report = {
        "questions": len(questions),
        "dropped_as_mt_bench": [(q["question_id"], [turns[i][:80] for i in hit]) for q, hit in zip(questions, leaked, strict=True) if hit],
        "kept": len(rows),
        "with_strong_and_weak": sum(STRONG in r["scores"] and WEAK in r["scores"] for r in rows),
        "groups": len({r["group"] for r in rows}),
        "models": sorted({m for r in rows for m in r["scores"]}),
    }
    return rows, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir", type=Path)
    parser.add_argument("--mt-bench", type=Path, default=DEFAULT_DIR / MT_BENCH_FILE)
    parser.add_argument("--out", type=Path, default=BUNDLED_DIR / ARENA_FILE)
    args = parser.parse_args()
    rows, report = build(args.git_dir, args.mt_bench)
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
