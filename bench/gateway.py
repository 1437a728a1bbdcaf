"""Gateway overhead: what the whole stack (API, queue, worker, provider SDK) adds to a call.

    .venv/bin/python -m bench.gateway [--rates 10,50,100,200] [--duration 20] [--repeats 1]
        [--worker-class gthread|gevent] [--workers 2] [--threads 500] [--openai]
        [--py-spy PATH --profile-rate 50 --profile-dir /tmp/orchbench/profiles]

The web runs as `orchestrator web` runs it (its defaults unless told otherwise); gevent,
not a project dependency, must be importable to try it. `--py-spy` takes a py-spy binary
installed outside the project (`pip install --target /tmp/... py-spy`) and, after the runs,
records the API's and the worker's processes (only threads holding the GIL: CPU, not waits)
during one more run at `--profile-rate`, as raw collapsed stacks.

Starts its own sandbox (SANDBOX_LATENCY_SCALE=0: it answers at once), worker and web
processes on free ports, under a Redis database and key prefix of their own (BENCH_REDIS_URL,
default redis://127.0.0.1:6379/12; the prefix is new for each run and its keys are deleted
at the end). At each rate it sends, open loop (request i leaves at t0 + i/rate whether or not
earlier ones have answered; latency counts from that scheduled time, as gwbench's load.py
does), first the sandbox's own /v1/chat/completions (the baseline), then
POST /api/v1/orchestrator/chat/execute with the same message, model and max_tokens (with
--openai also our /v1/chat/completions). Added latency = orchestrator percentile - direct
percentile in the same run. It reports the errors, the CPU ms per request of the API and
worker processes (their process trees, from /proc), their peak RSS, and where each
request's time went, from the request record's timestamps (created by the API just before
it enqueues, started by the worker, finished when the worker publishes):
API before enqueue, enqueue to worker start, worker, terminal event to the client.

The caller is a user with a key of its own (authentication and the rate limiter run as they
do for any user; RATE_LIMIT_REQUESTS is set out of reach), and routing, budgets and
accounting stay on. Prints one JSON line, then a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis

from bench.sandbox import free_port, stop_group
from sandbox.server import raise_open_files_limit

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
MESSAGE = "Say hello."
MODEL = "gpt-4o-mini"
MAX_TOKENS = 16

# LiteLLM proxy 1.108.0 on this kind of machine (2 cores), from ../shared/bench/gwbench/README.md
# (2026-11-25): added latency p50/p90/p99 ms at 10 and 50 RPS, saturated at 100 and 200;
# 13-15 ms of CPU per request; 360-400 MB RSS.
LITELLM_ADDED_MS = {10: (12.8, 17.1, 21.9), 50: (12.0, 15.0, 17.7)}
LITELLM_CPU_MS = 14.0
LITELLM_RSS_MB = 380.0


# --- processes --------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            kids.extend(int(p) for p in text.split())
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(_children(p))
    return pids


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def tree_rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class RssSampler:
    """Peak of the summed RSS of some process trees, sampled every `interval` seconds."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5):
        self.pids, self.interval = pids, interval
        self.peak = {name: 0.0 for name in pids} | {"total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            values = {name: tree_rss_mb(pid) for name, pid in self.pids.items()}
            values["total"] = sum(values.values())
            for name, value in values.items():
                self.peak[name] = max(self.peak[name], value)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class Process:
    """A child process in a session of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 20) -> None:
        stop_group(self.popen, timeout)
        self._log.close()


def web_default(option: str) -> int:
    """The default of an option of `orchestrator web`, so that the bench measures what it runs."""
    from orchestrator.runtime.cli import web

    return next(p.default for p in web.params if p.name == option)


@dataclass
class WebOptions:
    """How `orchestrator web` serves the API: gunicorn's worker class and counts."""

    worker_class: str = "gthread"
    workers: int = field(default_factory=lambda: web_default("workers"))
    threads: int = field(default_factory=lambda: web_default("threads"))  # gthread
    connections: int = 1000  # gevent: connections per worker process

    def describe(self) -> str:
        if self.worker_class == "gevent":
            return f"gevent {self.workers}x{self.connections} connections"
        return f"{self.worker_class} {self.workers}x{self.threads} threads"


@dataclass
class Stack:
    """Sandbox, worker and web processes of our own, under a Redis prefix of our own."""

    latency_scale: float = 0.0
    web: WebOptions = field(default_factory=WebOptions)
    worker_concurrency: int | None = None
    redis_url: str = DEFAULT_REDIS_URL
    extra_env: dict = field(default_factory=dict)
    log_dir: Path | None = None

    def __post_init__(self):
        self.prefix = f"bench{secrets.token_hex(4)}:"
        self.admin_key = f"bench-admin-{secrets.token_hex(16)}"
        self.sandbox_port, self.web_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.api = f"{self.web_url}/api/v1/orchestrator"
        self.log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="orchbench-"))
        self.processes: dict[str, Process] = {}
        self.user_key: str | None = None

    def env(self) -> dict:
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.prefix,
            "ADMIN_API_KEY": self.admin_key,
            "RATE_LIMIT_REQUESTS": "100000000",
            "MONTHLY_COST_LIMIT": "1000000000",
            "SANDBOX_URL": self.sandbox_url,
            "SANDBOX_LATENCY_SCALE": str(self.latency_scale),
            **self.extra_env,
        }
        if self.worker_concurrency:
            env["WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        return env

    def web_args(self) -> list[str]:
        w = self.web
        bind = f"127.0.0.1:{self.web_port}"
        if w.worker_class == "gthread":  # what `orchestrator web` runs
            return [sys.executable, "-m", "orchestrator.runtime.cli", "web", "--bind", bind, "--workers", str(w.workers),
                    "--threads", str(w.threads)]
        # Another worker class: the same gunicorn command with that class (gevent must be installed).
        return [sys.executable, "-m", "gunicorn", "--bind", bind, "--worker-class", w.worker_class,
                "--workers", str(w.workers), "--worker-connections", str(w.connections), "--no-control-socket",
                "api.wsgi:app"]

    def start(self) -> Stack:
        env = self.env()
        cli = [sys.executable, "-m", "orchestrator.runtime.cli"]
        self.processes["sandbox"] = Process("sandbox", [*cli, "sandbox", "--port", str(self.sandbox_port)], env,
                                            self.log_dir)
        self.processes["worker"] = Process("worker", [*cli, "worker"], env, self.log_dir)
        self.processes["web"] = Process("web", self.web_args(), env, self.log_dir)
        try:
            self._wait_ready()
            self.user_key = self._create_user()
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        import urllib.request

        deadline = time.monotonic() + START_TIMEOUT
        pending = {"sandbox": f"{self.sandbox_url}/health", "web": f"{self.api}/health"}
        while pending:
            for name, process in self.processes.items():
                if not process.alive():
                    raise RuntimeError(f"{name} exited:\n{process.tail()}")
            for name, url in list(pending.items()):
                try:
                    with urllib.request.urlopen(url, timeout=2) as reply:
                        if reply.status == 200:
                            del pending[name]
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {START_TIMEOUT}s: {sorted(pending)}")
            time.sleep(0.2)

    def _create_user(self) -> str:
        import urllib.request

        request = urllib.request.Request(
            f"{self.api}/admin/users", data=json.dumps({"name": "bench"}).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())["key"]["key"]

    @property
    def pids(self) -> dict[str, int]:
        return {"api": self.processes["web"].pid, "worker": self.processes["worker"].pid}

    def cpu(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}

    def wait_idle(self, timeout: float = 120, below: float = 0.05) -> None:
        """Until the API and worker use less than `below` of a CPU over half a second."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = sum(self.cpu().values())
            time.sleep(0.5)
            if sum(self.cpu().values()) - before < below * 0.5:
                return

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def stop(self) -> None:
        for name in ("web", "worker", "sandbox"):
            if name in self.processes:
                self.processes[name].stop()
        try:
            client = self.redis()
            for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                client.delete(key)
        except redis.RedisError:
            pass

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- figures ----------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank, as gwbench's load.py."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def summary_ms(seconds: list[float]) -> dict:
    return {f"p{p:g}": None if (v := percentile(seconds, p)) is None else round(v * 1000, 2)
            for p in (50, 90, 99)} | {"max": round(max(seconds) * 1000, 2) if seconds else None, "n": len(seconds)}


def machine() -> dict:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "node": platform.node(),
            "loadavg_1m_5m": [round(load[0], 2), round(load[1], 2)]}


def other_load_pct(seconds: float = 2.0) -> float:
    """CPU used by the whole machine, in % of one CPU, over a short window (before a run)."""
    def busy():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)
    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return round(100.0 * (b1 - b0) / max(1, t1 - t0) * os.cpu_count(), 1)


# --- the open-loop load -----------------------------------------------------------------

@dataclass
class Shot:
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    first: float = 0.0  # first content (streams)
    error: str | None = None
    request_id: str | None = None
    wall_sent: float = 0.0  # time.time() at send, to compare with the request record
    wall_done: float = 0.0


async def open_loop(rate: float, duration: float, send, new=Shot) -> list:
    """Call `send(shot)` for request i at t0 + i/rate, whatever the earlier ones are doing;
    each shot is `new(scheduled time)`."""
    n = max(1, int(round(rate * duration)))
    t0 = time.perf_counter() + 0.05
    shots = [new(t0 + i / rate) for i in range(n)]
    tasks = []
    for shot in shots:
        delay = shot.scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(shot)))
    await asyncio.gather(*tasks)
    return shots


def _classify(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return type(exc).__name__


class Caller:
    """The three ways of asking for the same answer."""

    def __init__(self, session: aiohttp.ClientSession, stack: Stack, model: str, max_tokens: int, message: str):
        self.session, self.stack = session, stack
        self.openai_body = json.dumps({"model": model, "messages": [{"role": "user", "content": message}],
                                       "max_tokens": max_tokens}).encode()
        self.chat_body = json.dumps({"message": message, "model": model, "max_tokens": max_tokens}).encode()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stack.user_key}"}

    async def _post(self, shot: Shot, url: str, body: bytes, headers: dict, check) -> None:
        shot.sent, shot.wall_sent = time.perf_counter(), time.time()
        try:
            async with self.session.post(url, data=body, headers=headers) as reply:
                data = await reply.read()
                shot.done, shot.wall_done = time.perf_counter(), time.time()
                if reply.status != 200:
                    shot.error = f"http_{reply.status}"
                else:
                    check(shot, json.loads(data))
        except Exception as exc:  # noqa: BLE001 - every failure is a data point
            shot.done, shot.error = time.perf_counter(), _classify(exc)

    async def direct(self, shot: Shot) -> None:
        await self._post(shot, f"{self.stack.sandbox_url}/v1/chat/completions", self.openai_body,
                         {"Content-Type": "application/json"}, _has_choices)

    async def execute(self, shot: Shot) -> None:
        def check(s: Shot, body: dict) -> None:
            s.request_id = body.get("request_id")
            if not body.get("response", {}).get("content"):
                s.error = "no_content"
        await self._post(shot, f"{self.stack.api}/chat/execute", self.chat_body, self.headers, check)

    async def openai(self, shot: Shot) -> None:
        await self._post(shot, f"{self.stack.web_url}/v1/chat/completions", self.openai_body, self.headers,
                         _has_choices)


def _has_choices(shot: Shot, body: dict) -> None:
    if not body.get("choices"):
        shot.error = "no_choices"


def latency_report(shots: list[Shot]) -> dict:
    ok = [s for s in shots if s.error is None]
    errors: dict[str, int] = {}
    for s in shots:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    lags = [s.sent - s.scheduled for s in shots]
    span = max((s.done for s in ok), default=shots[0].scheduled) - shots[0].scheduled
    return {
        "sent": len(shots), "ok": len(ok), "errors": errors,
        "achieved_rps": round(len(ok) / span, 1) if span > 0 else None,
        "latency_ms": summary_ms([s.done - s.scheduled for s in ok]),
        "send_lag_ms": summary_ms(lags),
    }


def breakdown(stack: Stack, shots: list[Shot]) -> dict:
    """Where the time of each answered request went, from its record's timestamps (ms, p50/p99)."""
    client = stack.redis()
    pipe = client.pipeline(transaction=False)
    done = [s for s in shots if s.error is None and s.request_id]
    for s in done:
        pipe.hmget(f"{stack.prefix}req:{s.request_id}", "created_at", "started_at", "finished_at")
    parts: dict[str, list[float]] = {"api_before_enqueue": [], "enqueue_to_worker_start": [], "worker": [],
                                     "terminal_event_to_client": []}
    for s, (created, started, finished) in zip(done, pipe.execute(), strict=True):
        if not (created and started and finished):
            continue
        created, started, finished = float(created), float(started), float(finished)
        parts["api_before_enqueue"].append(created - s.wall_sent)
        parts["enqueue_to_worker_start"].append(started - created)
        parts["worker"].append(finished - started)
        parts["terminal_event_to_client"].append(s.wall_done - finished)
    return {name: {"p50": _ms(percentile(v, 50)), "p99": _ms(percentile(v, 99)), "n": len(v)}
            for name, v in parts.items()}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def measured_run(stack: Stack, rate: float, duration: float, warmup: float, send) -> dict:
    """Warm-up (discarded), then the measured phase with the stack's CPU and peak RSS."""
    async def run():
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            if warmup > 0:  # on the same session: the measured phase reuses its connections
                await open_loop(rate, warmup, send(session))
                await asyncio.to_thread(stack.wait_idle, 30)
            cpu0, client0 = stack.cpu(), time.process_time()
            with RssSampler(stack.pids) as rss:
                shots = await open_loop(rate, duration, send(session))
            return shots, cpu0, client0, stack.cpu(), time.process_time(), rss

    shots, cpu0, client0, cpu1, client1, rss = asyncio.run(run())
    report = latency_report(shots)
    ok = max(report["ok"], 1)
    report["cpu_ms_per_request"] = {name: round(1000 * (cpu1[name] - cpu0[name]) / ok, 2) for name in cpu0}
    report["cpu_ms_per_request"]["total"] = round(sum(report["cpu_ms_per_request"].values()), 2)
    report["client_cpu_pct"] = round(100 * (client1 - client0) / duration, 1)
    report["peak_rss_mb"] = {name: round(v, 1) for name, v in rss.peak.items()}
    report["_shots"] = shots
    return report


def run_gateway(args) -> dict:
    rates = [float(r) for r in args.rates.split(",")]
    web = WebOptions(args.worker_class, args.workers, args.threads, args.worker_connections)
    runs = []
    with Stack(latency_scale=0.0, web=web, redis_url=args.redis_url) as stack:
        load_before = other_load_pct()
        # Warm every process (imports, connection pools, first routing) before measuring.
        measured_run(stack, 20, 3, 0, lambda s: Caller(s, stack, args.model, args.max_tokens, MESSAGE).execute)
        stack.wait_idle(30)
        for repeat in range(args.repeats):
            for rate in rates:
                row = {"rate": rate, "repeat": repeat + 1}
                kinds = ["direct", "execute"] + (["openai"] if args.openai else [])
                for kind in kinds:
                    stack.wait_idle(60)

                    def sender(session, kind=kind):
                        return getattr(Caller(session, stack, args.model, args.max_tokens, MESSAGE), kind)
                    report = measured_run(stack, rate, args.duration, args.warmup, sender)
                    shots = report.pop("_shots")
                    if kind == "execute":
                        report["breakdown_ms"] = breakdown(stack, shots)
                    if kind != "direct":
                        report["added_ms"] = {
                            p: None if report["latency_ms"][p] is None or row["direct"]["latency_ms"][p] is None
                            else round(report["latency_ms"][p] - row["direct"]["latency_ms"][p], 2)
                            for p in ("p50", "p90", "p99")}
                        if rate in LITELLM_ADDED_MS and report["added_ms"]["p50"]:
                            theirs = LITELLM_ADDED_MS[rate]
                            report["litellm_added_over_ours"] = {
                                p: round(t / o, 1) if o and o > 0 else None
                                for p, t, o in zip(("p50", "p90", "p99"), theirs,
                                                   (report["added_ms"][q] for q in ("p50", "p90", "p99")), strict=True)}
                    row[kind] = report
                    print(_row_line(kind, rate, report), file=sys.stderr, flush=True)
                runs.append(row)
        rss_now = {name: round(tree_rss_mb(pid), 1) for name, pid in stack.pids.items()}
        if args.py_spy:
            profiles = profile(stack, args)
        else:
            profiles = None
    return {
        "bench": "gateway_overhead",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "machine_busy_before_pct_of_one_cpu": load_before,
        "web": web.describe(),
        "worker": f"threads pool, concurrency {stack.worker_concurrency or 'WORKER_CONCURRENCY (32)'}",
        "model": args.model, "max_tokens": args.max_tokens, "duration_s": args.duration,
        "litellm_reference": {"added_ms_p50_p90_p99": LITELLM_ADDED_MS, "cpu_ms_per_request": LITELLM_CPU_MS,
                              "rss_mb": LITELLM_RSS_MB, "source": "../shared/bench/gwbench/README.md, 2026-11-25"},
        "rss_mb_after": rss_now,
        "runs": runs,
        "profiles": profiles,
    }


def profile(stack: Stack, args) -> dict:
    """py-spy (installed outside the project) over the API and worker processes during a run."""
    out_dir = Path(args.profile_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = {"worker": stack.pids["worker"]}
    for i, pid in enumerate(p for p in tree(stack.pids["api"])[1:]):
        targets[f"api{i}"] = pid
    recorders = {}
    for name, pid in targets.items():
        path = out_dir / f"{name}.txt"
        recorders[name] = (path, subprocess.Popen(
            [args.py_spy, "record", "--pid", str(pid), "--duration", str(int(args.duration)), "--rate", "250",
             "--format", "raw", "--output", str(path), "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    report = measured_run(stack, args.profile_rate, args.duration - 2, 0,
                          lambda s: Caller(s, stack, args.model, args.max_tokens, MESSAGE).execute)
    report.pop("_shots")
    for _, recorder in recorders.values():
        recorder.wait(args.duration + 30)
    return {"rate": args.profile_rate, "files": {name: str(path) for name, (path, _) in recorders.items()},
            "run": report}


def _row_line(kind: str, rate: float, r: dict) -> str:
    lat = r["latency_ms"]
    added = r.get("added_ms") or {}
    cpu = r["cpu_ms_per_request"]
    return (f"{rate:>5g} rps {kind:<8} p50/p90/p99 {lat['p50']}/{lat['p90']}/{lat['p99']} ms"
            + (f" added {added.get('p50')}/{added.get('p90')}/{added.get('p99')}" if added else "")
            + f" errors {sum(r['errors'].values())} cpu/req api {cpu['api']} worker {cpu['worker']} ms"
            + f" rss {r['peak_rss_mb']['total']} MB")


def table(result: dict) -> str:
    lines = [
        f"gateway overhead, {result['date']}, {result['machine']['cpus']} CPUs, Python {result['machine']['python']}, "
        f"web {result['web']}, load average {result['machine']['loadavg_1m_5m']}",
        "| RPS | direct p50/p90/p99 ms | execute p50/p90/p99 ms | added p50/p90/p99 ms | LiteLLM added ÷ ours "
        "(p50/p99) | errors | CPU ms/req API+worker | peak RSS MB API+worker |",
        "|---:|---|---|---|---|---|---|---|",
    ]
    for row in result["runs"]:
        for kind in ("execute", "openai"):
            if kind not in row:
                continue
            d, o = row["direct"]["latency_ms"], row[kind]["latency_ms"]
            a = row[kind]["added_ms"]
            ratio = row[kind].get("litellm_added_over_ours")
            cpu = row[kind]["cpu_ms_per_request"]
            rss = row[kind]["peak_rss_mb"]
            label = f"{row['rate']:g}" + ("" if kind == "execute" else " (/v1)")
            lines.append(
                f"| {label} | {d['p50']} / {d['p90']} / {d['p99']} | {o['p50']} / {o['p90']} / {o['p99']} | "
                f"+{a['p50']} / +{a['p90']} / +{a['p99']} | "
                f"{_ratio_text(ratio)} | "
                f"{sum(row[kind]['errors'].values())} of {row[kind]['sent']} | "
                f"{cpu['api']} + {cpu['worker']} = {cpu['total']} | {rss['api']} + {rss['worker']} |")
    lines.append("")
    lines.append("where the time went (execute; ms p50 / p99):")
    for row in result["runs"]:
        b = row["execute"]["breakdown_ms"]
        lines.append(f"  {row['rate']:g} rps: " + ", ".join(f"{k} {v['p50']} / {v['p99']}" for k, v in b.items()))
    return "\n".join(lines)


def _ratio_text(ratio: dict | None) -> str:
    return f"{ratio['p50']}x / {ratio['p99']}x" if ratio else "(LiteLLM saturated)"


def add_web_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "gevent"))
    parser.add_argument("--workers", type=int, default=web_default("workers"), help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=web_default("threads"), help="threads per process (gthread)")
    parser.add_argument("--worker-connections", type=int, default=1000, help="connections per process (gevent)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,50,100,200")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the same rate before each run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--openai", action="store_true", help="also our /v1/chat/completions")
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile API and worker after the runs")
    parser.add_argument("--profile-rate", type=float, default=50.0)
    parser.add_argument("--profile-dir", default="/tmp/orchbench/profiles")
    add_web_options(parser)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    result = run_gateway(args)
    print(json.dumps(result))
    print(table(result))


if __name__ == "__main__":
    main()
