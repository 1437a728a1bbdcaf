"""Economy batches: what they cost against standard ones, and what they cost the orchestrator.

    .venv/bin/python -m bench.economy_batch [--items 1000] [--large 10000] [--delay 20]

Starts a sandbox (SANDBOX_LATENCY_SCALE=0: standard calls answer at once), a web process and one
worker (concurrency 32) under a Redis key prefix of their own (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/13; the keys are deleted at the end), with the bundled catalog, then:

1. the same --items requests (routed by the default strategy) as a standard batch and as an
   economy batch (the sandbox's provider batches end at once): each batch's billed cost, and
   their ratio;
2. one economy batch of --large requests pinned to gpt-4o-mini, whose provider batches take
   --delay seconds: Redis's used_memory before it, while every item waits on a provider batch,
   and after it ended (per item); the worker's CPU seconds from submission to the end (per
   item); and the time from the last provider batch ending (the sandbox polled every 0.1 s) to
   every result being visible in the batch's status.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench.batch import START_TIMEOUT, Stack, wait_until
from bench.sandbox import cpu_seconds, free_port
from orchestrator.store.users import Users

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
PINNED = "gpt-4o-mini"


def items(count: int, **extra) -> list[dict]:
    return [{"task": f"Item {i}: summarise the quarterly report of branch {i} in one line.", "max_tokens": 64,
             **extra} for i in range(count)]


def finished(http: requests.Session, base: str, batch_id: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"{base}/batch/{batch_id}/status", params={"limit": 0}, timeout=30).json()
        if status["counts"]["queued"] == 0 and status["counts"]["running"] == 0:
            return status
        time.sleep(0.1)
    raise RuntimeError(f"batch {batch_id} did not end")


def cost_ratio(http: requests.Session, base: str, sandbox: str, count: int) -> dict:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": "*", "fault": "batch_delay", "seconds": 0},
                  timeout=5).raise_for_status()
    costs, models = {}, {}
    for mode in ("standard", "economy"):
        reply = http.post(f"{base}/batch/submit", json={"requests": items(count), "mode": mode}, timeout=300)
        reply.raise_for_status()
        status = finished(http, base, reply.json()["batch_id"])
        costs[mode] = status["cost"]
        results = http.get(f"{base}/batch/{reply.json()['batch_id']}/results.jsonl", timeout=60).text.splitlines()
        models[mode] = sorted({json.loads(line)["model"] for line in results})
        assert status["counts"]["completed"] == count, status["counts"]
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=5).raise_for_status()
    return {"items": count, "standard_usd": costs["standard"], "economy_usd": costs["economy"],
            "ratio": round(costs["economy"] / costs["standard"], 4), "models": models}


def last_upstream_end(sandbox: str, seen: int) -> float:
    """When the last of the sandbox's `seen` provider batches ended, as observed (polled every 0.1 s)."""
    while True:
        batches = requests.get(f"{sandbox}/v1/batches", timeout=10).json()["data"]
        if len(batches) >= seen and all(b["status"] == "completed" for b in batches):
            return time.time()
        time.sleep(0.1)


def overhead(http: requests.Session, base: str, sandbox: str, client: redis.Redis, worker_pid: int, count: int,
             delay: float) -> dict:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": "*", "fault": "batch_delay", "seconds": delay},
                  timeout=5).raise_for_status()
    memory_before, cpu_before = client.info("memory")["used_memory"], cpu_seconds(worker_pid)
    reply = http.post(f"{base}/batch/submit", json={"requests": items(count, model=PINNED), "mode": "economy"},
                      timeout=600)
    reply.raise_for_status()
    batch_id = reply.json()["batch_id"]

    def all_submitted() -> dict | None:
        status = http.get(f"{base}/batch/{batch_id}/status", params={"limit": 0}, timeout=30).json()
        return status if sum(u["total"] for u in status["provider_batches"]) == count else None

    wait_until(all_submitted, 1800, "every item in a provider batch")
    waiting = all_submitted()
    memory_waiting = client.info("memory")["used_memory"]
    upstreams = len(waiting["provider_batches"])
    ended_upstream = last_upstream_end(sandbox, upstreams)
    status = finished(http, base, batch_id)
    visible = time.time()
    cpu = cpu_seconds(worker_pid) - cpu_before
    memory_after = client.info("memory")["used_memory"]
    return {"items": count, "provider_batches": upstreams, "completed": status["counts"]["completed"],
            "redis_bytes_per_item_waiting": round((memory_waiting - memory_before) / count),
            "redis_bytes_per_item_after": round((memory_after - memory_before) / count),
            "worker_cpu_s": round(cpu, 1), "worker_cpu_ms_per_item": round(cpu / count * 1000, 2),
            "upstream_end_to_visible_s": round(visible - ended_upstream, 2),
            "wall_s": round(status["timing"]["finished_at"] - status["timing"]["created_at"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=20.0, help="seconds each provider batch takes")
    args = parser.parse_args()
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    prefix = f"orchbencheco{os.getpid()}:"
    logs = Path(tempfile.mkdtemp(prefix="bench-economy-"))
    sandbox_port, web_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
           "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}", "SANDBOX_LATENCY_SCALE": "0",
           "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GOOGLE_API_KEY": "", "RATE_LIMIT_REQUESTS": "1000000",
           "LOG_LEVEL": "WARNING", "WORKER_CONCURRENCY": "32"}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = Stack(env, logs)
    base, sandbox = f"http://127.0.0.1:{web_port}/api/v1/orchestrator", f"http://127.0.0.1:{sandbox_port}"
    try:
        stack.start("sandbox", "sandbox", "--port", str(sandbox_port))
        stack.start("web", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "2")
        worker = stack.start("worker", "worker", "--concurrency", "32")
        wait_until(lambda: requests.get(f"{sandbox}/health", timeout=2).ok, START_TIMEOUT, "the sandbox")
        wait_until(lambda: requests.get(f"{base}/health", timeout=2).status_code == 200, START_TIMEOUT, "the stack")
        _, issued = Users(client, prefix, default_budget=1_000_000).create("bench")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {issued.key}"
        result = {"bench": "economy_batch", "date": datetime.date.today().isoformat(),
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                  "cost": cost_ratio(http, base, sandbox, args.items),
                  "overhead": overhead(http, base, sandbox, client, worker.pid, args.large, args.delay)}
        print(json.dumps(result), flush=True)
    finally:
        stack.stop_all()
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            client.delete(key)


if __name__ == "__main__":
    main()
