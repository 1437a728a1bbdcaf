"""Batch throughput: one large batch through the whole stack, against provider calls of 1 s.

    .venv/bin/python -m bench.batch [--items 10000] [--workers 1,2,4] [--concurrency 64] [--latency 1.0]

Starts a sandbox that plays a bench-only model `bench-1s` (from a MODELS_FILE of its own:
time to first token --latency, a million tokens a second, so each call takes about
--latency seconds, jittered by ±10% as the sandbox does; SANDBOX_LATENCY_SCALE=1), a web
process, and then, for each worker count, that many `orchestrator worker --concurrency C`
processes, all under a Redis database and key prefix of their own (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/13; the keys are deleted at the end). Each run submits one batch of
--items requests pinned to bench-1s through the API (POST /batch/submit, timed), polls its
status until every item has ended, and reports: the submit time, the wall time from the
batch's creation to its last item, items per second, the bound the configuration sets
(workers × concurrency calls in flight / latency), the share of it reached, each worker's
peak RSS (VmHWM), the CPU seconds of the workers, the sandbox and the web process, and any
item that did not complete. Prints one JSON line per run, then a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench.sandbox import cpu_seconds, free_port, peak_rss_mb, stop_group
from orchestrator.store.users import Users

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
MODEL = "bench-1s"
START_TIMEOUT = 60.0


def models_file(directory: Path, latency: float) -> Path:
    path = directory / "models.yaml"
    path.write_text(f"""
models:
  {MODEL}:
    provider: openai
    context_window: 16000
    max_output_tokens: 1000
    capabilities: [streaming]
    latency: {{ttft: {latency}, tokens_per_second: 1000000}}
    prices: {{input: 0.1, output: 0.4}}
""")
    return path


class Stack:
    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        process = subprocess.Popen([sys.executable, "-m", "orchestrator.runtime.cli", *args], cwd=ROOT, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        stop_group(process)
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)


def children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            kids.extend(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    except OSError:
        pass
    return kids


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (gunicorn's workers)."""
    total = 0.0
    for one in (pid, *children(pid)):
        try:
            total += cpu_seconds(one)
        except OSError:
            pass
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, redis.RedisError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def run(stack: Stack, client: redis.Redis, prefix: str, base: str, key: str, workers: int, args) -> dict:
    started = [stack.start(f"worker-{workers}-{i}", "worker", "--concurrency", str(args.concurrency))
               for i in range(workers)]
    wait_until(lambda: len(client.zrange(f"{prefix}workers", 0, -1)) >= workers, START_TIMEOUT, "the workers")
    cpu_before = {p.pid: cpu_seconds(p.pid) for p in started}
    other_cpu = {name: tree_cpu(pid) for name, pid in args.others.items()}
    busy_before = machine_busy()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    items = [{"task": f"Item {i}: summarise the quarterly report in one line.", "model": MODEL, "max_tokens": 64}
             for i in range(args.items)]
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    reply = http.post(f"{base}/batch/submit", json={"requests": items, "priority": 5}, timeout=300)
    submit_s = time.monotonic() - t0
    reply.raise_for_status()
    batch_id = reply.json()["batch_id"]
    while True:
        status = http.get(f"{base}/batch/{batch_id}/status", params={"limit": 0}, timeout=30).json()
        if status["counts"]["queued"] == 0 and status["counts"]["running"] == 0:
            break
        time.sleep(0.5)
    busy = machine_busy() - busy_before
    timing, counts = status["timing"], status["counts"]
    wall = timing["finished_at"] - timing["created_at"]
    result = {
        "workers": workers,
        "concurrency": args.concurrency,
        "items": args.items,
        "latency_s": args.latency,
        "submit_s": round(submit_s, 2),
        "wall_s": round(wall, 2),
        "first_start_s": round(timing["started_at"] - timing["created_at"], 2),
        "items_per_s": round(args.items / wall, 1),
        "bound_items_per_s": workers * args.concurrency / args.latency,
        "completed": counts["completed"],
        "failed": counts["failed"],
        "worker_peak_rss_mb": [round(peak_rss_mb(p.pid), 1) for p in started],
        "worker_cpu_s": round(sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in started), 1),
        "other_cpu_s": {name: round(tree_cpu(pid) - other_cpu[name], 1) for name, pid in args.others.items()},
        "machine_busy_cpu_s": round(busy, 1),
        "load_avg_1m_at_start": round(load, 2),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    ours = result["worker_cpu_s"] + sum(result["other_cpu_s"].values())
    result["cpu_ms_per_item"] = {"workers": round(result["worker_cpu_s"] / args.items * 1000, 1),
                                 "sandbox": round(result["other_cpu_s"]["sandbox"] / args.items * 1000, 1)}
    result["others_cpu_s"] = round(max(0.0, busy - ours), 1)  # other processes (Redis included)
    result["share_of_bound"] = round(result["items_per_s"] / result["bound_items_per_s"], 3)
    if counts["failed"]:
        failed = [r for r in http.get(f"{base}/batch/{batch_id}/status", params={"limit": 1000}, timeout=30)
                  .json()["results"] if r["status"] == "failed"]
        result["failures"] = [r["error"] for r in failed[:3]]
    for process in started:
        stack.stop(process)
    client.delete(f"{prefix}workers")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, one run each")
    parser.add_argument("--concurrency", type=int, default=64, help="WORKER_CONCURRENCY of each worker")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds each provider call takes")
    args = parser.parse_args()

    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    prefix = f"orchbenchbatch{os.getpid()}:"
    logs = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    sandbox_port, web_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
           "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}", "SANDBOX_LATENCY_SCALE": "1",
           "MODELS_FILE": str(models_file(logs, args.latency)), "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "",
           "GOOGLE_API_KEY": "", "RATE_LIMIT_REQUESTS": "1000000", "LOG_LEVEL": "WARNING",
           "REQUEST_TIMEOUT": "120", "WORKER_CONCURRENCY": str(args.concurrency)}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = Stack(env, logs)
    base = f"http://127.0.0.1:{web_port}/api/v1/orchestrator"
    results = []
    try:
        sandbox = stack.start("sandbox", "sandbox", "--port", str(sandbox_port))
        web = stack.start("web", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "2")
        wait_until(lambda: requests.get(f"http://127.0.0.1:{sandbox_port}/health", timeout=2).ok, START_TIMEOUT,
                   "the sandbox")
        wait_until(lambda: requests.get(f"{base}/health", timeout=2).status_code in (200, 503), START_TIMEOUT,
                   "the web")
        _, issued = Users(client, prefix, default_budget=1_000_000).create("bench")
        args.others = {"sandbox": sandbox.pid, "web": web.pid}
        for workers in (int(w) for w in args.workers.split(",")):
            result = run(stack, client, prefix, base, issued.key, workers, args)
            result.update(bench="batch", date=datetime.date.today().isoformat(),
                          machine={"cpus": os.cpu_count(), "python": platform.python_version()})
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        stack.stop_all()
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            client.delete(key)
    print(f"\n{'workers':>7} {'bound/s':>8} {'items/s':>8} {'share':>6} {'wall s':>7} {'submit s':>8} "
          f"{'worker RSS MB':>14} {'worker ms/item':>14} {'sandbox ms/item':>15} {'others CPU s':>12} failed")
    for r in results:
        print(f"{r['workers']:>7} {r['bound_items_per_s']:>8.0f} {r['items_per_s']:>8.1f} {r['share_of_bound']:>6.0%} "
              f"{r['wall_s']:>7.1f} {r['submit_s']:>8.2f} {max(r['worker_peak_rss_mb']):>14.0f} "
              f"{r['cpu_ms_per_item']['workers']:>14.1f} {r['cpu_ms_per_item']['sandbox']:>15.1f} "
              f"{r['others_cpu_s']:>12.1f} {r['failed']}")


if __name__ == "__main__":
    main()
