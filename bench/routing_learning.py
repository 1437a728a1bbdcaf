"""Online learning, simulated: the RouterBench files replayed as one stream of traffic where
each answer's feedback is the routed model's known score on that prompt.

The catalog is RouterBench's eleven models, each `comparable_to` itself (its tier in the
artifact) and priced at its mean cost per prompt in the data. Every prompt is routed by the
real Router (cost_optimal) reading corrections from the real NeighbourhoodQuality store
(fakeredis, its Lua script included); the routed model's score is recorded as a rating of
that answer. Beside it, in the same stream: the offline router alone (no corrections) and
always-GPT-4. Quality is the share of answers right, cost the data's cost of the routed
model's answer, as a share of always-GPT-4's.

Caveat: the shipped artifact was trained on these files (its predictions are in-sample);
what the figure shows is what the corrections add on top of it.

    .venv/bin/python -m bench.routing_learning [--out bench/routing_learning.png]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import fakeredis
import numpy as np

from orchestrator.core.catalog import Catalog
from orchestrator.core.router import Router
from orchestrator.core.routing_model import load_shipped
from orchestrator.core.routing_model.neighbourhood import NONE
from orchestrator.core.types import ChatRequest, Message
from orchestrator.router_training.data import DEFAULT_DIR, STRONG, Sample, load_training_file, training_files
from orchestrator.store.neighbourhood_quality import NeighbourhoodQuality

SEED = 20261207
STRATEGY = "cost_optimal"
WINDOW = 250  # prompts per point of the quality curve


@dataclass
class Run:
    scores: list[float]
    costs: list[float]


def stream(directory: Path) -> list[Sample]:
    files = [path for path in training_files(directory) if path.name.startswith("routerbench")]
    samples = [s for path in files for s in load_training_file(path)]
    models = set(samples[0].costs)
    samples = [s for s in samples if models <= set(s.scores) and models <= set(s.costs)]
    order = np.random.default_rng(SEED).permutation(len(samples))
    return [samples[i] for i in order]


def catalog_of(samples: list[Sample]) -> Catalog:
    """RouterBench's models, each placed at its own reference tier and priced by its mean cost."""
    models = {}
    for name in sorted(samples[0].costs):
        per_prompt = statistics.fmean(s.costs[name] for s in samples)
        models[name] = {"provider": "p", "context_window": 1_000_000, "max_output_tokens": 4096, "capabilities": ["code", "streaming"],
                        "prices": {"input": per_prompt * 1e3, "output": per_prompt * 1e3}, "comparable_to": name}
    return Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": models})


def replay(samples: list[Sample], router: Router, store: NeighbourhoodQuality | None) -> Run:
    run = Run([], [])
    for i, sample in enumerate(samples):
        request = ChatRequest(model="", messages=(Message("user", sample.turns[0]),), max_tokens=256)
        corrections = store.snapshot(now=float(i)) if store else NONE
        decision = router.route(request, STRATEGY, neighbourhoods=corrections)
        chosen = decision.chosen_model
        run.scores.append(sample.scores[chosen])
        run.costs.append(sample.costs[chosen])
        if store:
            store.record(decision.written(every_candidate=False).prediction, chosen, sample.scores[chosen], now=float(i))
    return run


def windows(values: list[float]) -> np.ndarray:
    return np.array([np.mean(values[i:i + WINDOW]) for i in range(0, len(values) - WINDOW + 1, WINDOW)])


def plot(path: Path, runs: dict[str, Run], strong_costs: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (quality, cost) = plt.subplots(1, 2, figsize=(11, 4.2))
    full = np.cumsum(strong_costs)
    for name, run in runs.items():
        x = np.arange(WINDOW, len(run.scores) + 1, WINDOW)
        quality.plot(x, windows(run.scores), marker="o", label=name)
        cost.plot(np.arange(1, len(run.costs) + 1), 100 * np.cumsum(run.costs) / full, label=name)
    quality.set(xlabel="feedback received (prompts)", ylabel=f"share right, last {WINDOW} prompts",
                title="Quality")
    cost.set(xlabel="feedback received (prompts)", ylabel="cumulative cost, % of always-GPT-4", title="Cost")
    quality.legend()
    cost.legend()
    figure.suptitle(f"Online learning on RouterBench (cost_optimal, {date.today().isoformat()})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("routing_learning.png"))
    args = parser.parse_args()

    samples = stream(args.data)
    model = load_shipped()
    router = Router(catalog_of(samples), quality_model=model)
    store = NeighbourhoodQuality(fakeredis.FakeRedis(), "bench:learning:", model.clusters)
    runs = {
        "offline router + online corrections": replay(samples, router, store),
        "offline router alone": replay(samples, router, None),
        "always GPT-4": Run([s.scores[STRONG] for s in samples], [s.costs[STRONG] for s in samples]),
    }
    strong_total = sum(s.costs[STRONG] for s in samples)
    half = len(samples) // 2
    print(f"Online learning, {date.today().isoformat()}: {len(samples)} RouterBench prompts in one seeded stream, "
          f"{STRATEGY}, {model.clusters} clusters")
    print("| router | quality, all | quality, first half | quality, second half | cost, % of always-GPT-4 |")
    print("|---|---:|---:|---:|---:|")
    for name, run in runs.items():
        print(f"| {name} | {np.mean(run.scores):.3f} | {np.mean(run.scores[:half]):.3f} | "
              f"{np.mean(run.scores[half:]):.3f} | {100 * sum(run.costs) / strong_total:.1f}% |")
    plot(args.out, runs, [s.costs[STRONG] for s in samples])
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
