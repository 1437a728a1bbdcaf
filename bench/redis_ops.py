"""Redis operations per request, by kind of request, through the whole stack.

    .venv/bin/python -m bench.redis_ops [--requests 200] [--batch 200]

Starts a private redis-server (nothing else talks to it, so its command statistics are
ours alone), and the sandbox, one worker and one web process on it (bench/gateway.py's
Stack, sandbox latency 0). For each kind of request it resets Redis's statistics, sends
the requests one after another, waits until the stack is idle, and reads INFO
commandstats; what an idle stack costs over the same time (heartbeats, the broker's
polling) is measured apart and taken off. Reports per request:
every command Redis ran (those inside scripts counted too), of them the script calls, the
Redis CPU time (INFO cpu) and so the requests one Redis core could serve, and the commands
that weigh most.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import tempfile
import time

import redis
import requests

from bench.gateway import Stack
from bench.sandbox import free_port

MODEL = "gpt-4o-mini"
QUESTION = "Explain how a B-tree keeps itself balanced"


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="orchbench-redis-")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        for _ in range(100):
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stats(self) -> dict[str, float]:
        """Calls per command, and the server's CPU seconds so far (under "cpu_seconds")."""
        calls = {name.removeprefix("cmdstat_"): float(fields["calls"])
                 for name, fields in self.client.info("commandstats").items()}
        cpu = self.client.info("cpu")
        return {**calls, CPU: float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


ROUND_TRIP_COMMANDS = frozenset({"evalsha", "eval", "fcall"})  # what a client sends; the rest may run inside
CPU = "cpu_seconds"


def measured(server: PrivateRedis, stack: Stack, send, count: int) -> tuple[dict[str, float], float]:
    """The commands `count` calls of `send` made, and Redis's CPU seconds meanwhile."""
    stack.wait_idle()
    server.client.config_resetstat()
    cpu = server.stats()[CPU]
    started = time.monotonic()
    for i in range(count):
        send(i)
    stack.wait_idle()
    elapsed = time.monotonic() - started
    stats = server.stats()
    return {**stats, CPU: stats[CPU] - cpu}, elapsed


def idle_rate(server: PrivateRedis, stack: Stack, seconds: float = 10.0) -> dict[str, float]:
    """What an idle stack costs Redis a second: commands, and CPU seconds."""
    stack.wait_idle()
    server.client.config_resetstat()
    cpu = server.stats()[CPU]
    time.sleep(seconds)
    stats = server.stats()
    return {**{name: calls / seconds for name, calls in stats.items()}, CPU: (stats[CPU] - cpu) / seconds}


def per_request(stats: dict[str, float], elapsed: float, idle: dict[str, float], count: int) -> dict:
    net = {name: max(0.0, calls - idle.get(name, 0.0) * elapsed) / count for name, calls in stats.items()
           if name not in ("config|resetstat", "config", "info")}
    cpu_us = net.pop(CPU) * 1e6
    commands = sum(net.values())
    scripts = sum(v for name, v in net.items() if name in ROUND_TRIP_COMMANDS)
    top = dict(sorted(((n, round(v, 2)) for n, v in net.items() if v >= 0.5), key=lambda kv: -kv[1])[:12])
    return {"commands": round(commands, 1), "scripts": round(scripts, 1), "redis_cpu_us": round(cpu_us),
            "requests_per_redis_cpu_second": round(1e6 / cpu_us) if cpu_us else None, "top": top}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    server = PrivateRedis()
    stack = Stack(redis_url=server.url)
    try:
        stack.start()
        headers = {"Authorization": f"Bearer {stack.user_key}"}
        api, v1 = stack.api, f"{stack.web_url}/v1"

        def execute(i):
            requests.post(f"{api}/chat/execute", json={"message": f"{QUESTION} {i}", "model": MODEL},
                          headers=headers, timeout=30).raise_for_status()

        def stream(i):
            with requests.post(f"{api}/chat/stream", json={"message": f"{QUESTION} {i}", "model": MODEL},
                               headers=headers, timeout=30, stream=True) as reply:
                reply.raise_for_status()
                for _ in reply.iter_lines():
                    pass

        def openai(i):
            requests.post(f"{v1}/chat/completions", json={"model": MODEL, "messages": [
                {"role": "user", "content": f"{QUESTION} {i}"}]}, headers=headers, timeout=30).raise_for_status()

        def batch(_):
            items = [{"message": f"{QUESTION} {i}", "model": MODEL} for i in range(args.batch)]
            created = requests.post(f"{api}/batch/submit", json={"requests": items}, headers=headers, timeout=60)
            created.raise_for_status()
            status = f"{api}/batch/{created.json()['batch_id']}/status"
            while requests.get(status, headers=headers, timeout=10).json()["status"] not in ("completed", "partially_completed",
                                                                                 "failed", "cancelled"):
                time.sleep(0.5)

        for warm in (execute, stream):
            warm(0)
        idle = idle_rate(server, stack)
        results = {"date": datetime.date.today().isoformat(), "host": platform.node(), "requests": args.requests,
                   "batch_items": args.batch,
                   "idle_commands_per_second": round(sum(v for k, v in idle.items() if k != CPU), 1)}
        for name, send, count, per in (("chat/execute", execute, args.requests, args.requests),
                                       ("chat/stream", stream, args.requests, args.requests),
                                       ("/v1/chat/completions", openai, args.requests, args.requests),
                                       ("batch item", batch, 1, args.batch)):
            stats, elapsed = measured(server, stack, send, count)
            results[name] = per_request(stats, elapsed, idle, per)
            print(name, json.dumps(results[name]), flush=True)
        print(json.dumps(results))
    finally:
        stack.stop()
        server.stop()


if __name__ == "__main__":
    main()
