"""Embeddings through the queue or straight from the API: what each path costs, measured.

    .venv/bin/python -m bench.embeddings_path [--rounds 6] [--requests 100] [--inputs 1]

Starts a sandbox (answering at once, so only the gateway's own time is measured), a web
process (one gunicorn process) and one worker under a key prefix of their own
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/13; the keys are deleted at the end).
Then, alternating the two in `--rounds` rounds of `--requests` sequential requests each:

- queued (what ships): POST /v1/embeddings over HTTP, through the chat queue to the worker,
  which calls the sandbox through the openai SDK and publishes the vectors, read back by
  the API from the request's event stream.
- direct (the alternative): the same work without the queue hop, timed as its two parts in
  this process: the API's HTTP round trip with authentication (GET /v1/models with the same
  key) plus `Services.embedder.run` (reservation, the SDK call to the sandbox, the ledger's
  settlement, usage), as an API process would run it if it called the provider itself.

Also measured: the resident memory of a process that has built the API app, before and after
importing the two SDKs a direct path would load into every API process (the API imports
no SDK today: orchestrator/providers/registry.py). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench.batch import START_TIMEOUT, Stack, wait_until
from bench.sandbox import free_port, percentile
from orchestrator.store.users import Users

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
MODEL = "text-embedding-3-small"
_RSS = """
import resource, sys
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
from api import create_app
create_app()
before = rss()
import openai, google.genai  # noqa: F401, E401
print(before, rss())
"""


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def queued_round(http: requests.Session, url: str, body: dict, count: int) -> list[float]:
    def one():
        reply = http.post(f"{url}/v1/embeddings", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
    return [timed(one) for _ in range(count)]


def direct_round(http: requests.Session, url: str, services, owner: str, body: dict, count: int) -> list[float]:
    from orchestrator.core.embedding import EMBEDDING_KIND, EmbeddingJob
    from orchestrator.core.job import new_request_id

    def one():
        http.get(f"{url}/v1/models", timeout=30).raise_for_status()
        request_id = new_request_id()
        services.requests.create(request_id, owner, EMBEDDING_KIND)
        services.embedder.run(request_id, EmbeddingJob(owner, MODEL, tuple(body["input"]), None, time.time() + 30))
        outcome = services.requests.wait_terminal(request_id, 5)
        assert outcome is not None and outcome[0] == "final", outcome
        services.requests.drop_events(request_id)
    return [timed(one) for _ in range(count)]


def memory(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _RSS], env=env, capture_output=True, text=True, check=True).stdout
    before, after = (float(v) for v in out.split())
    return {"api_rss_mb": round(before, 1), "with_sdks_rss_mb": round(after, 1), "sdks_add_mb": round(after - before, 1)}


def stats(values: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(values), 2), "p99_ms": round(percentile(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=1, help="texts in each request")
    args = parser.parse_args()

    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    prefix = f"orchbenchemb{os.getpid()}:"
    logs = Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    sandbox_port, web_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
           "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}", "SANDBOX_LATENCY_SCALE": "0", "MODELS_FILE": "",
           "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GOOGLE_API_KEY": "", "RATE_LIMIT_REQUESTS": "1000000",
           "LOG_LEVEL": "WARNING"}
    os.environ.update(env)  # this process's Services (the direct path) see the same stack
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = Stack(env, logs)
    url = f"http://127.0.0.1:{web_port}"
    body = {"model": MODEL, "input": [f"text {i} about the quarterly report of a branch" for i in range(args.inputs)],
            "encoding_format": "base64"}
    try:
        stack.start("sandbox", "sandbox", "--port", str(sandbox_port))
        stack.start("web", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "1")
        stack.start("worker", "worker", "--concurrency", "8")
        wait_until(lambda: requests.get(f"http://127.0.0.1:{sandbox_port}/health", timeout=2).ok, START_TIMEOUT,
                   "the sandbox")
        wait_until(lambda: requests.get(f"{url}/api/v1/orchestrator/health/live", timeout=2).ok, START_TIMEOUT, "the web")
        wait_until(lambda: client.zcard(f"{prefix}workers") >= 1, START_TIMEOUT, "the worker")
        from orchestrator.config import get_settings
        from orchestrator.runtime.services import Services

        services = Services.from_settings(get_settings())
        services.providers.warm()
        _, issued = Users(client, prefix, default_budget=1_000_000).create("bench")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {issued.key}"
        queued_round(http, url, body, 20)  # warm both paths
        direct_round(http, url, services, issued.info.user_id, body, 20)
        queued, direct = [], []
        for _ in range(args.rounds):
            queued += queued_round(http, url, body, args.requests)
            direct += direct_round(http, url, services, issued.info.user_id, body, args.requests)
    finally:
        stack.stop_all()
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            client.delete(key)
    result = {"bench": "embeddings_path", "date": datetime.date.today().isoformat(), "inputs": args.inputs,
              "requests_each": args.rounds * args.requests, "queued": stats(queued), "direct": stats(direct),
              "queue_adds_p50_ms": round(statistics.median(queued) - statistics.median(direct), 2),
              "ratio_p50": round(statistics.median(queued) / statistics.median(direct), 2),
              "memory": memory(env), "load_avg_1m": round(os.getloadavg()[0], 2),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
