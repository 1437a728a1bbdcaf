"""Sandbox capacity: thousands of concurrent slow requests against one sandbox process.

    .venv/bin/python -m bench.sandbox [--requests 2000] [--latency 1.0] [--stream]

Starts `python -m orchestrator.runtime.cli sandbox` on a free port (SANDBOX_LATENCY_SCALE=0),
sends every request at once, each asking for a fixed delay with `x-sandbox-latency`, and
prints one JSON line, then a summary. Ideally the wall time equals that delay.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from sandbox.latency import LATENCY_HEADER
from sandbox.server import raise_open_files_limit

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process's group (started with start_new_session), SIGKILL after `timeout`."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_sandbox(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.runtime.cli", "sandbox", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "SANDBOX_LATENCY_SCALE": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def wait_until_healthy(session: aiohttp.ClientSession, url: str, sandbox: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if sandbox.poll() is not None:
            raise RuntimeError(f"the sandbox exited: {sandbox.stderr.read().decode(errors='replace')}")
        try:
            async with session.get(f"{url}/health") as reply:
                if reply.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the sandbox did not answer within {START_TIMEOUT}s")


async def one_request(session: aiohttp.ClientSession, url: str, index: int, latency: float, stream: bool):
    """(seconds from send to the whole body, error or None)."""
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"request {index}"}], "max_tokens": 200,
            "stream": stream}
    headers = {LATENCY_HEADER: str(latency)}
    started = time.monotonic()
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as reply:
            await reply.read()
            error = None if reply.status == 200 else f"HTTP {reply.status}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        error = type(exc).__name__
    return time.monotonic() - started, error


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set size (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def one_round(session: aiohttp.ClientSession, url: str, sandbox_pid: int, args) -> dict:
    server_cpu, client_cpu, started = cpu_seconds(sandbox_pid), time.process_time(), time.monotonic()
    results = await asyncio.gather(
        *(one_request(session, url, i, args.latency, args.stream) for i in range(args.requests))
    )
    wall = time.monotonic() - started
    seconds = [s for s, _ in results]
    errors = collections.Counter(error for _, error in results if error)
    return {
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "wall_s": round(wall, 3),
        "wall_to_ideal": round(wall / args.latency, 3),
        "p50_s": round(percentile(seconds, 0.50), 3),
        "p99_s": round(percentile(seconds, 0.99), 3),
        "max_s": round(max(seconds), 3),
        "sandbox_cpu_s": round(cpu_seconds(sandbox_pid) - server_cpu, 2),
        "client_cpu_s": round(time.process_time() - client_cpu, 2),
    }


async def measure(args) -> dict:
    """A round on new connections, then the same round again on the pooled (kept-alive) ones."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox = start_sandbox(port)
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            await wait_until_healthy(session, url, sandbox)
            rounds = {
                "new_connections": await one_round(session, url, sandbox.pid, args),
                "pooled_connections": await one_round(session, url, sandbox.pid, args),
            }
        rss = peak_rss_mb(sandbox.pid)
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    return {
        "bench": "sandbox_capacity",
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "requests": args.requests,
        "latency_s": args.latency,
        "stream": args.stream,
        "rounds": rounds,
        "sandbox_peak_rss_mb": round(rss, 1),
    }


def summary(r: dict) -> str:
    kind = "streamed" if r["stream"] else "plain"
    lines = [
        f"{r['requests']} concurrent {kind} requests of {r['latency_s']:g}s against one sandbox process "
        f"({r['machine']['cpus']} CPUs, Python {r['machine']['python']}, {r['date']}), "
        f"sandbox peak RSS {r['sandbox_peak_rss_mb']:.1f} MB"
    ]
    for name, o in r["rounds"].items():
        lines.append(
            f"  {name.replace('_', ' ')}: errors {o['errors']} {o['error_kinds'] or ''}| wall {o['wall_s']:.3f}s "
            f"= {o['wall_to_ideal']:.3f} x the ideal | p50 {o['p50_s']:.3f}s p99 {o['p99_s']:.3f}s "
            f"max {o['max_s']:.3f}s | CPU sandbox {o['sandbox_cpu_s']:.2f}s, client {o['client_cpu_s']:.2f}s"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds each request asks the sandbox to wait")
    parser.add_argument("--stream", action="store_true", help="streamed answers instead of plain ones")
    args = parser.parse_args()
    raise_open_files_limit()  # this client holds one socket per request too
    result = asyncio.run(measure(args))
    print(json.dumps(result))
    print(summary(result))


if __name__ == "__main__":
    main()
