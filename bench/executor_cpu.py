"""The worker's own CPU for one request: Executor.run in-process, on the real Redis, with a
provider that answers at once, so that what is measured is the pipeline (reads, routing,
reservation, observation, settlement, accounting) and nothing else.

    .venv/bin/python -m bench.executor_cpu [--requests 500] [--rounds 5]

Two routers in the same run: the learned router as shipped, and the same router with a fixed
prediction (what the rest of the pipeline costs without the quality model). Keys go under a
prefix of their own in BENCH_REDIS_URL (default redis://127.0.0.1:6379/11), deleted at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import secrets
import statistics
import time

import redis

from orchestrator.config import load_settings
from orchestrator.core.catalog import Catalog
from orchestrator.core.job import ChatJob
from orchestrator.core.routing_model import Prediction
from orchestrator.core.types import StreamDelta, StreamEnd, Usage
from orchestrator.runtime.services import Services

MODEL = "gpt-4o-mini"


class InstantProvider:
    sandbox = True

    def stream(self, request, timeout):
        yield StreamDelta("Hello!")
        yield StreamEnd("stop", Usage(10, 3), "bench")


class InstantRegistry:
    def for_model(self, model):
        return InstantProvider()


class FixedPrediction:
    """The shipped model's tiers and clusters, one prediction for every prompt."""

    def __init__(self, model):
        self.reference_tiers, self.clusters = model.reference_tiers, model.clusters

    def predict(self, last, earlier, analysis):
        return Prediction(weak=0.5, gap=0.3, percentile=0.5, strong_gain=0.2, cluster=0)


def services(url: str, prefix: str) -> Services:
    settings = dataclasses.replace(load_settings(), redis_prefix=prefix)
    built = Services(settings=settings, redis=redis.Redis.from_url(url, decode_responses=True),
                     catalog=Catalog.load(settings.models_file))
    built.__dict__["providers"] = InstantRegistry()
    return built


def cpu_per_request(svc: Services, owner: str, requests: int, rounds: int) -> list[float]:
    def one(n: int) -> None:
        request_id = f"req_bench{secrets.token_hex(6)}{n}"
        svc.requests.create(request_id, owner, "chat")
        job = ChatJob.from_json({"messages": [{"role": "user", "content": "Say hello."}], "model": MODEL,
                                 "max_tokens": 16, "owner": owner, "deadline": time.time() + 60})
        svc.executor.run(request_id, job)

    for n in range(requests // 2):  # warm: clients, scripts, caches
        one(n)
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for n in range(requests):
            one(n)
        figures.append((time.process_time() - started) / requests * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    args = parser.parse_args()
    prefix = f"bench:cpu:{secrets.token_hex(4)}:"
    svc = services(args.redis_url, prefix)
    owner = svc.users.create("bench")[0].id
    print(f"executor CPU per request, {datetime.date.today()}, {platform.node()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    try:
        learned = cpu_per_request(svc, owner, args.requests, args.rounds)
        svc.router.quality_model = FixedPrediction(svc.router.quality_model)
        fixed = cpu_per_request(svc, owner, args.requests, args.rounds)
    finally:
        keys = list(svc.redis.scan_iter(f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            svc.redis.delete(*keys[start:start + 1000])
    for name, figures in (("learned router", learned), ("fixed prediction", fixed)):
        print(f"  {name:17s} median {statistics.median(figures):7.1f} us  rounds {[round(f) for f in figures]}")
    print(f"  the quality model's share: {statistics.median(learned) - statistics.median(fixed):.1f} us a request")


if __name__ == "__main__":
    main()
