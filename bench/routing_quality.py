"""Routing quality of the task analysis: does its complexity score send the prompts that
need a strong model to the strong model, and leave the rest to a cheap one?

Reads the RouteLLM evaluation sets (GPT-4-1106-preview vs Mixtral-8x7B, per-prompt quality)
from /work/shared/eval/routing, or from ROUTING_EVAL_DIR, and prints APGR and CPT(50%) of
`complexity_score` on MT-Bench and MMLU beside two baselines computed in the same run: a
random score (mean over several seeds) and the prompt's length.

    .venv/bin/python -m bench.routing_quality

APGR: sort the prompts by score, send the top k% to the strong model for k = 0..100, and
take the area under the mean quality, scaled so always-weak is 0 and always-strong is 1.
Prompts with equal scores are counted at their expected value under a random order, so
ties neither help nor hurt. CPT(50%): the smallest share of strong calls that recovers
half the quality gap.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.analysis import Complexity, analyze
from orchestrator.core.types import Message

DATA_DIR = Path(os.environ.get("ROUTING_EVAL_DIR", "/work/shared/eval/routing"))
RANDOM_SEEDS = 10


@dataclass(frozen=True)
class Prompt:
    turns: tuple[str, ...]
    strong: float  # measured quality of the strong model on this prompt
    weak: float


def load_mt_bench(directory: Path) -> list[Prompt]:
    """MT-Bench: quality is the GPT-4 judge's score, the mean over both turns."""
    with open(directory / "mt_bench_gpt4_vs_mixtral.jsonl", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Prompt(tuple(row["turns"]), float(row["strong_score"]), float(row["weak_score"])) for row in rows]


def load_mmlu(directory: Path) -> list[Prompt]:
    """MMLU: quality is whether the answer was correct."""
    with gzip.open(directory / "mmlu_gpt4_vs_mixtral.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Prompt((row["prompt"],), float(row["strong_correct"]), float(row["weak_correct"])) for row in rows]


def complexity_score(prompt: Prompt) -> float:
    """The mean score over the conversation's turns, each analysed with the turns before it.

    The data hold no assistant answers, so earlier turns appear as user messages only.
    """
    scores = []
    for turn in range(1, len(prompt.turns) + 1):
        messages = tuple(Message("user", text) for text in prompt.turns[:turn])
        scores.append(analyze(messages, None, 1024).complexity_score)
    return statistics.fmean(scores)


def prompt_length(prompt: Prompt) -> float:
    return float(sum(len(text) for text in prompt.turns))


def recovered_gap(scores: Sequence[float], prompts: Sequence[Prompt]) -> list[float]:
    """Quality gained over always-weak when the n highest-scored prompts go strong, n = 0..N."""
    order = sorted(range(len(prompts)), key=lambda i: scores[i], reverse=True)
    gains: list[float] = []
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and scores[order[end]] == scores[order[start]]:
            end += 1
        tied = [prompts[i].strong - prompts[i].weak for i in order[start:end]]
        gains.extend([statistics.fmean(tied)] * len(tied))
        start = end
    cumulative = [0.0]
    for gain in gains:
        cumulative.append(cumulative[-1] + gain)
    return cumulative


def apgr_and_cpt50(scores: Sequence[float], prompts: Sequence[Prompt]) -> tuple[float, float]:
    gap = recovered_gap(scores, prompts)
    total, count = gap[-1], len(prompts)
    curve = [gap[round(k * count / 100)] for k in range(101)]
    area = (sum(curve) - (curve[0] + curve[-1]) / 2) / 100
    cpt = next(n for n, gained in enumerate(gap) if gained >= total / 2)
    return area / total, 100 * cpt / count


def random_baseline(prompts: Sequence[Prompt]) -> tuple[float, float]:
    runs = []
    for seed in range(RANDOM_SEEDS):
        draw = random.Random(seed)
        runs.append(apgr_and_cpt50([draw.random() for _ in prompts], prompts))
    return statistics.fmean(a for a, _ in runs), statistics.fmean(c for _, c in runs)


def scored(router: Callable[[Prompt], float], prompts: Sequence[Prompt]) -> tuple[float, float]:
    return apgr_and_cpt50([router(prompt) for prompt in prompts], prompts)


def level_shares(prompts: Sequence[Prompt]) -> str:
    levels = [analyze(tuple(Message("user", t) for t in p.turns), None, 1024).complexity for p in prompts]
    return ", ".join(f"{level.value} {100 * levels.count(level) / len(levels):.0f}%" for level in Complexity)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}, {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main() -> None:
    sets = {"MT-Bench": load_mt_bench(DATA_DIR), "MMLU": load_mmlu(DATA_DIR)}
    print(f"Routing quality, {datetime.date.today().isoformat()}, {machine()}")
    print(f"data: {DATA_DIR} (strong GPT-4-1106-preview, weak Mixtral-8x7B-Instruct)\n")
    print("| set | prompts | router | APGR | CPT(50%) |")
    print("|---|---:|---|---:|---:|")
    notes = []
    for name, prompts in sets.items():
        started = time.perf_counter()
        ours = scored(complexity_score, prompts)
        seconds = time.perf_counter() - started
        rows = (
            ("complexity_score", ours),
            (f"random (mean of {RANDOM_SEEDS} seeds)", random_baseline(prompts)),
            ("prompt length", scored(prompt_length, prompts)),
        )
        for router, (apgr, cpt) in rows:
            print(f"| {name} | {len(prompts)} | {router} | {apgr:.3f} | {cpt:.1f}% |")
        strong = statistics.fmean(p.strong for p in prompts)
        weak = statistics.fmean(p.weak for p in prompts)
        notes.append(
            f"{name}: mean quality strong {strong:.3f}, weak {weak:.3f}; levels {level_shares(prompts)}; "
            f"scored in {seconds:.2f} s"
        )
    print()
    print("\n".join(notes))
    learned_router()


def learned_router() -> None:
    """The learned router (orchestrator/core/routing_model) on every set, beside the baselines."""
    from orchestrator.router_training.report import markdown, report

    rows, notes = report(DATA_DIR)
    print("\nLearned router: MT-Bench with the shipped artifact (never trained on it); the other sets by 5-fold CV\n")
    print(markdown(rows))
    print("\n".join(["", *notes]))


if __name__ == "__main__":
    main()
