"""Routing speed: task analysis plus routing decision for a 500-token prompt, in-process.

Times 10,000 decisions of our Router (the learned quality model included: its prediction
is part of every decision) after a warm-up, and as many task analyses alone (the part that
reads the prompt), and measures what a process grows by when it loads the router and its
shipped artifact (numpy included), in a fresh interpreter; in the same run, LiteLLM's Router choosing among the same
models: its cost-based routing's choice alone
(`async_get_available_deployment`, its only form), and `completion(..., mock_response=...)`
with its default strategy (the choice plus LiteLLM's request path, no network).
LiteLLM runs in its own virtualenv (never a project dependency), pinned to an exact
release; 1.82.7, 1.82.8 and 1.107.0 were compromised and are refused.

    python -m bench.routing_speed [--decisions 10000] [--litellm-venv /tmp/gwbench/venv-litellm]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from orchestrator.core.analysis import analyze
from orchestrator.core.catalog import Catalog
from orchestrator.core.router import Router
from orchestrator.core.types import ChatRequest, Message

LITELLM_VERSION = "1.108.0"
COMPROMISED = {"1.82.7", "1.82.8", "1.107.0"}

# About 2,000 characters (500 tokens) of an ordinary engineering request.
PROMPT = (
    "Please review the following Python service and suggest improvements to its error handling, "
    "logging and performance. The service reads orders from a queue, validates them, computes totals "
    "with discounts and taxes, and writes the result to a database. "
) * 8

LITELLM_SCRIPT = r"""
import asyncio, json, os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from litellm import Router
litellm.suppress_debug_info = True
models, prompt, n = json.loads(sys.stdin.read())
deployments = [{"model_name": "auto", "litellm_params": {"model": m, "api_key": "sk-bench", "mock_response": "ok"}}
               for m in models]
by_cost = Router(model_list=deployments, routing_strategy="cost-based-routing")  # its choice is async only
shuffle = Router(model_list=deployments)
messages = [{"role": "user", "content": prompt}]

def summary(samples):
    samples.sort()
    return {"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000,
            "n": len(samples)}

async def choose(count):
    for _ in range(min(count, 500)):
        await by_cost.async_get_available_deployment(model="auto", messages=messages, request_kwargs={})
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        await by_cost.async_get_available_deployment(model="auto", messages=messages, request_kwargs={})
        samples.append(time.perf_counter_ns() - started)
    return summary(samples)

def complete(count):
    for _ in range(min(count, 200)):
        shuffle.completion(model="auto", messages=messages, mock_response="ok")
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        shuffle.completion(model="auto", messages=messages, mock_response="ok")
        samples.append(time.perf_counter_ns() - started)
    return summary(samples)

print(json.dumps({"choice": asyncio.run(choose(n)), "mock_completion": complete(max(n // 10, 1))}))
"""


def percentiles(samples_ns: list[int]) -> dict:
    samples = sorted(samples_ns)
    return {"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[int(len(samples) * 0.99)] / 1000,
            "n": len(samples)}


def timed(call: Callable[[], object], count: int) -> dict:
    for _ in range(1000):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


def time_ours(decisions: int) -> tuple[dict, dict]:
    """The whole decision, and the task analysis alone (the part that reads the prompt)."""
    router = Router(Catalog.load(), default_model="gpt-4")
    request = ChatRequest(model="", messages=(Message("user", PROMPT),), max_tokens=1000)
    decision = timed(lambda: router.route(request), decisions)
    analysis = timed(lambda: analyze(request.messages, request.system_prompt, request.max_tokens), decisions)
    return decision, analysis


MEMORY_SCRIPT = r"""
import json

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

bare = rss()
from orchestrator.core.catalog import Catalog
catalog = Catalog.load()
before = rss()
from orchestrator.core.router import Router
Router(catalog)
print(json.dumps({"router_and_artifact_mb": round(rss() - before, 1), "bare_interpreter_mb": round(bare, 1)}))
"""


def memory_growth() -> dict:
    """MB a process grows by when it imports the router and loads the shipped artifact."""
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def litellm_python(venv: Path) -> Path:
    """The venv's python with the pinned LiteLLM, installed there when missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != LITELLM_VERSION:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"litellm=={LITELLM_VERSION}"], check=True)
    return python


def time_litellm(venv: Path, catalog: Catalog, decisions: int) -> dict:
    assert LITELLM_VERSION not in COMPROMISED
    # LiteLLM names models provider/model; our catalog's provider names are LiteLLM's too.
    provider_prefix = {"openai": "openai", "anthropic": "anthropic", "google": "gemini"}
    models = [f"{provider_prefix[m.provider]}/{m.model_name}" for m in catalog]
    result = subprocess.run(
        [str(litellm_python(venv)), "-c", LITELLM_SCRIPT],
        input=json.dumps([models, PROMPT, decisions]), capture_output=True, text=True, check=True,
        env={**os.environ, "LITELLM_LOG": "ERROR"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--litellm-venv", type=Path, default=Path("/tmp/gwbench/venv-litellm"))
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()

    ours, analysis = time_ours(args.decisions)
    report = {"date": date.today().isoformat(), "machine": f"{platform.node()}, {os.cpu_count()} CPUs",
              "python": platform.python_version(), "prompt_chars": len(PROMPT), "ours": ours,
              "ours_analysis": analysis, "memory": memory_growth()}
    if not args.skip_litellm:
        theirs = time_litellm(args.litellm_venv, Catalog.load(), args.decisions)
        report["litellm"] = theirs
        report["ratio_choice_p50"] = round(theirs["choice"]["p50_us"] / ours["p50_us"], 1)
        report["ratio_mock_completion_p50"] = round(theirs["mock_completion"]["p50_us"] / ours["p50_us"], 1)
    print(json.dumps(report))
    print(f"ours (analysis + decision): p50 {ours['p50_us']:.1f} µs, p99 {ours['p99_us']:.1f} µs "
          f"over {ours['n']} decisions (goal: p50 ≤ 150, p99 ≤ 500); "
          f"of which task analysis: p50 {analysis['p50_us']:.1f} µs, p99 {analysis['p99_us']:.1f} µs")
    print(f"a process grows by {report['memory']['router_and_artifact_mb']} MB loading the router and its artifact "
          f"(goal ≤ 60)")
    if "litellm" in report:
        for name in ("choice", "mock_completion"):
            figures = report["litellm"][name]
            print(f"LiteLLM {LITELLM_VERSION} {name}: p50 {figures['p50_us']:.1f} µs, p99 {figures['p99_us']:.1f} µs "
                  f"over {figures['n']}; ratio to ours at p50: {report['ratio_' + name + '_p50']}x")


if __name__ == "__main__":
    main()
