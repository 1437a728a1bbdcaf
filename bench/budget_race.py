"""Budget race: many concurrent requests from one user whose budget covers only a few.

    .venv/bin/python -m bench.budget_race [--requests 500] [--fits 50] [--workers 2]
        [--concurrency 32] [--max-tokens 1000,60] [--latency 0.2]

Starts its own sandbox, worker processes (--concurrency threads each) and web process
(`orchestrator web`, 2 gunicorn processes of 32 threads) under a Redis database and key
prefix of their own (BENCH_REDIS_URL, default redis://127.0.0.1:6379/14; the prefix is new
for each run and its keys are deleted at the end). The requests are sent at once over
HTTP (aiohttp, one connection each). For each max_tokens it first measures one request's real cost on a
calibration user, then gives a new user a monthly budget of --fits times that cost and
fires --requests requests at once, every one pinned to the same model and message.

Reports: how many were answered (200) and refused (402); the month's spend against the
budget, the overspend (target 0); the budget left unused, and how many refused requests
would have fitted in it at the real cost of one; and whether the sandbox saw exactly one
call per answered request (no call without a reservation). Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench.sandbox import free_port, stop_group

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o"
MESSAGE = "Explain the advantages of renewable energy"


def configure(latency: float, concurrency: int) -> dict:
    """The environment of this process and its children, before any setting is read."""
    env = {
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "REDIS_PREFIX": f"budgetrace{secrets.token_hex(4)}:",
        "SANDBOX_URL": f"http://127.0.0.1:{free_port()}",
        "SANDBOX_LATENCY_SCALE": str(latency),
        "ADMIN_API_KEY": secrets.token_urlsafe(30),
        "RATE_LIMIT_REQUESTS": "1000000",
        "REQUEST_TIMEOUT": "120",
        "WORKER_CONCURRENCY": str(concurrency),
        "ALERT_WEBHOOK_URL": "",
        "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GOOGLE_API_KEY": "", "MODELS_FILE": "",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.runtime.cli", *args], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)



def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


async def _fire(url: str, key: str, body: dict, count: int) -> list[int]:
    import aiohttp

    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        async def one() -> int:
            async with session.post(f"{url}/api/v1/orchestrator/chat/execute", json=body, headers=headers) as reply:
                await reply.read()
                return reply.status

        return list(await asyncio.gather(*(one() for _ in range(count))))


def race(services, api_url: str, sandbox_url: str, requests_count: int, fits: int, max_tokens: int) -> dict:
    import requests

    body = {"message": MESSAGE, "model": MODEL, "max_tokens": max_tokens}
    _, calibration = services.users.create("calibration", monthly_budget=1000.0)
    reply = requests.post(f"{api_url}/api/v1/orchestrator/chat/execute", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {calibration.key}"})
    assert reply.status_code == 200, reply.text
    one = reply.json()["response"]["cost"]
    worst = services.catalog.get(MODEL).worst_case_cost(reply.json()["routing_decision"]["analysis"]["input_tokens"],
                                                        max_tokens)
    budget = round(fits * one, 6)
    user, issued = services.users.create("racer", monthly_budget=budget)
    requests.post(f"{sandbox_url}/_sandbox/reset", timeout=5).raise_for_status()

    started = time.monotonic()
    statuses = asyncio.run(_fire(api_url, issued.key, body, requests_count))
    wall = time.monotonic() - started
    spent, held = services.budgets.usage(user.id)
    answered, refused = statuses.count(200), statuses.count(402)
    calls = len(requests.get(f"{sandbox_url}/_sandbox/attempts", params={"model": MODEL}, timeout=5)
                .json()["attempts"])
    left = budget - spent
    would_fit = min(refused, int(left // one)) if one > 0 else 0
    return {
        "requests": requests_count, "max_tokens": max_tokens, "cost_of_one": round(one, 6),
        "worst_case_of_one": round(worst, 6), "budget": budget, "answered": answered, "refused": refused,
        "other": {str(s): statuses.count(s) for s in sorted(set(statuses) - {200, 402})},
        "spent": round(spent, 6), "held_after": round(held, 6),
        "overspend": round(max(0.0, spent - budget), 6), "unused": round(left, 6),
        "refused_that_would_have_fitted": would_fit, "sandbox_calls": calls, "wall_seconds": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--fits", type=int, default=50, help="the budget is this many times one request's cost")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", default="1000,60", help="comma-separated; one run each")
    parser.add_argument("--latency", type=float, default=0.2, help="SANDBOX_LATENCY_SCALE")
    args = parser.parse_args()
    env = configure(args.latency, args.concurrency)

    import redis
    import requests

    from orchestrator.config import get_settings
    from orchestrator.runtime.services import Services
    from orchestrator.store.fleet import Fleet
    from sandbox.server import raise_open_files_limit

    raise_open_files_limit()
    services = Services.from_settings(get_settings())
    api_url = f"http://127.0.0.1:{free_port()}"
    processes = [start("sandbox"), start("web", "--bind", api_url.removeprefix("http://"))]
    try:
        wait_for(lambda: requests.get(f"{env['SANDBOX_URL']}/health", timeout=1).ok, 30, "the sandbox")
        processes += [start("worker", "--concurrency", str(args.concurrency)) for _ in range(args.workers)]
        fleet = Fleet(services.redis, env["REDIS_PREFIX"])
        wait_for(lambda: len(fleet.alive()) >= args.workers, 60, f"{args.workers} workers")
        wait_for(lambda: requests.get(f"{api_url}/api/v1/orchestrator/health", timeout=2).ok, 60, "the API")
        for max_tokens in (int(x) for x in args.max_tokens.split(",")):
            result = race(services, api_url, env["SANDBOX_URL"], args.requests, args.fits, max_tokens)
            result.update({
                "date": datetime.date.today().isoformat(), "workers": args.workers, "concurrency": args.concurrency,
                "latency_scale": args.latency, "model": MODEL,
                "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            })
            print(json.dumps(result), flush=True)
    finally:
        for process in processes:
            stop_group(process)
        client = redis.Redis.from_url(env["REDIS_URL"])
        for key in client.scan_iter(match=f"{env['REDIS_PREFIX']}*", count=1000):
            client.delete(key)


if __name__ == "__main__":
    main()
