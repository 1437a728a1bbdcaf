"""Streaming: time to first token added by the orchestrator, and how many streams it holds.

    .venv/bin/python -m bench.streaming [--rate 10] [--duration 20] [--repeats 3]
        [--levels 100,250,500,1000] [--worker-class gthread|gevent] [--workers 2] [--threads 32]
        [--worker-connections 1000] [--latency-scale 6] [--tokens 30] [--skip-ttft] [--skip-capacity]

Starts its own sandbox, worker and web processes (bench/gateway.py's Stack: free ports, a
Redis database and a key prefix of their own, a user with its own key) and measures:

1. Added time to first token. The sandbox answers at once (SANDBOX_LATENCY_SCALE=0).
   Open loop at `--rate` streams a second for `--duration` seconds: first the sandbox's own
   streaming /v1/chat/completions (time to the first chunk with content), then
   POST /api/v1/orchestrator/chat/stream with the same message, model and max_tokens (time
   to the first `chunk` event), each timed from its scheduled send. Added = orchestrator
   percentile - direct percentile, p50 and p99, `--repeats` times in turn.
2. Concurrent streams held. A new stack whose sandbox answers at the models' catalog speed
   times `--latency-scale` (SANDBOX_LATENCY_SCALE, default 6), the worker's concurrency the
   largest level. For each level N, N streams are opened at once, each pinned to a slow
   model (gpt-4: 0.8 s to the first token and 30 tokens a second in the catalog; 30 tokens
   at 6 times that pace: about 5 s to the first token, 11 s an answer). Reported: errors (HTTP
   status, error event, no final event, transport errors, a stream not done in
   `--stream-timeout`), the most streams open at the same moment (answer headers received,
   final event not yet), time to the first chunk and to the end, and the API and worker
   processes' CPU and peak RSS.

Prints one JSON line, then a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from dataclasses import dataclass

import aiohttp

from bench.gateway import (
    RssSampler,
    Stack,
    WebOptions,
    add_web_options,
    machine,
    open_loop,
    other_load_pct,
    percentile,
    summary_ms,
)
from sandbox.server import raise_open_files_limit

TTFT_MODEL = "gpt-4o-mini"
TTFT_TOKENS = 16
SLOW_MODEL = "gpt-4"  # catalog: 0.8 s to the first token, 30 tokens a second
SLOW_TOKENS = 30
# Six times the catalog's pace: about 5 s to the first token and 11 s an answer, in 10 chunks.
# At the catalog's own pace (1) an answer lasts about 2 s, less than this machine needs to
# start 1,000 streams, so the streams would never all be open at once whatever the server.
SLOW_SCALE = 6.0
MESSAGE = "Tell me about the history of tea."
LATE_FIRST_CHUNK = 10.0  # seconds: FIRST_TOKEN_TIMEOUT's default, what a client would call stalled


@dataclass
class Stream:
    scheduled: float
    sent: float = 0.0
    headers: float = 0.0
    first: float = 0.0
    done: float = 0.0
    error: str | None = None


async def direct_stream(session: aiohttp.ClientSession, url: str, s: Stream, model: str, tokens: int,
                        message: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": message}], "max_tokens": tokens,
            "stream": True}
    s.sent = time.perf_counter()
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body) as reply:
            s.headers = time.perf_counter()
            if reply.status != 200:
                s.error = f"http_{reply.status}"
                await reply.read()
                return
            finished = False
            async for line in reply.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    finished = True
                elif not s.first:
                    choices = json.loads(data).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        s.first = time.perf_counter()
            s.done = time.perf_counter()
            if not finished or not s.first:
                s.error = "no_done" if not finished else "no_content"
    except Exception as exc:  # noqa: BLE001 - every failure is a data point
        s.error, s.done = _classify(exc), time.perf_counter()


async def orchestrator_stream(session: aiohttp.ClientSession, api: str, key: str, s: Stream, model: str,
                              tokens: int, message: str) -> None:
    body = {"message": message, "model": model, "max_tokens": tokens}
    s.sent = time.perf_counter()
    try:
        async with session.post(f"{api}/chat/stream", json=body,
                                headers={"Authorization": f"Bearer {key}"}) as reply:
            s.headers = time.perf_counter()
            if reply.status != 200:
                s.error = f"http_{reply.status}"
                await reply.read()
                return
            last = None
            async for line in reply.content:
                if line.startswith(b"event:"):
                    last = line[6:].strip()
                    if last == b"chunk" and not s.first:
                        s.first = time.perf_counter()
                    elif last == b"error":
                        s.error = "error_event"
            s.done = time.perf_counter()
            if s.error is None and last != b"final":
                s.error = "no_final_event"
            elif s.error is None and not s.first:
                s.error = "no_chunk"
    except Exception as exc:  # noqa: BLE001
        s.error, s.done = _classify(exc), time.perf_counter()


def _classify(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


def _errors(streams: list[Stream]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in streams:
        if s.error:
            counts[s.error] = counts.get(s.error, 0) + 1
    return counts


# --- 1. added time to first token --------------------------------------------------------

def ttft_runs(stack: Stack, args) -> list[dict]:
    async def run(kind: str) -> list[Stream]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=30)) as session:
            if kind == "direct":
                def one(s):
                    return direct_stream(session, stack.sandbox_url, s, TTFT_MODEL, TTFT_TOKENS, MESSAGE)
            else:
                def one(s):
                    return orchestrator_stream(session, stack.api, stack.user_key, s, TTFT_MODEL, TTFT_TOKENS,
                                               MESSAGE)
            if args.warmup > 0:
                await open_loop(args.rate, args.warmup, one, Stream)
            return await open_loop(args.rate, args.duration, one, Stream)

    runs = []
    for repeat in range(args.repeats):
        row = {"repeat": repeat + 1}
        for kind in ("direct", "orchestrator"):
            stack.wait_idle(60)
            cpu0 = stack.cpu()
            streams = asyncio.run(run(kind))
            cpu1 = stack.cpu()
            ok = [s for s in streams if s.error is None]
            row[kind] = {
                "sent": len(streams), "ok": len(ok), "errors": _errors(streams),
                "ttft_ms": summary_ms([s.first - s.scheduled for s in ok]),
                "whole_answer_ms": summary_ms([s.done - s.scheduled for s in ok]),
                "cpu_ms_per_stream": {k: round(1000 * (cpu1[k] - cpu0[k]) / max(1, len(ok)), 2) for k in cpu0},
            }
        d, o = row["direct"]["ttft_ms"], row["orchestrator"]["ttft_ms"]
        row["added_ttft_ms"] = {p: round(o[p] - d[p], 2) for p in ("p50", "p99") if o[p] is not None and d[p]}
        print(f"  ttft repeat {repeat + 1}: direct p50 {d['p50']} p99 {d['p99']} ms | orchestrator p50 {o['p50']} "
              f"p99 {o['p99']} max {o['max']} ms | added {row['added_ttft_ms']} | errors {row['orchestrator']['errors']}",
              file=sys.stderr, flush=True)
        runs.append(row)
    return runs


# --- 2. concurrent streams held ----------------------------------------------------------

def peak_open(streams: list[Stream]) -> int:
    """The most streams open at one moment: headers received, not yet finished."""
    edges = []
    for s in streams:
        if s.headers and s.done:
            edges += [(s.headers, 1), (s.done, -1)]
    open_now = peak = 0
    for _, step in sorted(edges):
        open_now += step
        peak = max(peak, open_now)
    return peak


def capacity_level(stack: Stack, n: int, args) -> dict:
    async def run() -> tuple[list[Stream], float]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=args.stream_timeout)) as session:
            now = time.perf_counter()
            streams = [Stream(now) for _ in range(n)]
            await asyncio.gather(*(
                orchestrator_stream(session, stack.api, stack.user_key, s, SLOW_MODEL, args.tokens,
                                    f"{MESSAGE} ({i})")
                for i, s in enumerate(streams)))
            return streams, time.perf_counter() - now

    stack.wait_idle(120)
    cpu0 = stack.cpu()
    with RssSampler(stack.pids) as rss:
        streams, wall = asyncio.run(run())
    cpu1 = stack.cpu()
    ok = [s for s in streams if s.error is None]
    firsts = [s.first - s.scheduled for s in ok]
    return {
        "streams": n, "ok": len(ok), "errors": _errors(streams), "error_count": n - len(ok),
        "peak_open": peak_open(streams),
        "first_chunk_s": {f"p{p}": _s(percentile(firsts, p)) for p in (50, 99)} | {"max": _s(max(firsts, default=None))},
        "first_chunk_later_than_10s": sum(1 for f in firsts if f > LATE_FIRST_CHUNK),
        "whole_answer_s": {f"p{p}": _s(percentile([s.done - s.scheduled for s in ok], p)) for p in (50, 99)},
        "wall_s": round(wall, 2),
        "cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
        "peak_rss_mb": {k: round(v, 1) for k, v in rss.peak.items()},
    }


def _s(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def capacity_runs(args, web: WebOptions) -> dict:
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    with Stack(latency_scale=args.latency_scale, web=web, worker_concurrency=args.worker_concurrency or max(levels),
               redis_url=args.redis_url) as stack:
        for n in levels:
            row = capacity_level(stack, n, args)
            rows.append(row)
            print(f"  {n} streams: ok {row['ok']} errors {row['errors']} peak open {row['peak_open']} | first chunk "
                  f"p50 {row['first_chunk_s']['p50']} p99 {row['first_chunk_s']['p99']} max "
                  f"{row['first_chunk_s']['max']} s | answer p50 {row['whole_answer_s']['p50']} p99 "
                  f"{row['whole_answer_s']['p99']} s | wall {row['wall_s']} s | cpu {row['cpu_s']} | rss "
                  f"{row['peak_rss_mb']}", file=sys.stderr, flush=True)
        worker = f"threads pool, concurrency {stack.worker_concurrency}"
    return {"worker": worker, "model": SLOW_MODEL, "max_tokens": args.tokens, "latency_scale": args.latency_scale,
            "levels": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="streams a second in the TTFT runs")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each TTFT run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at the same rate before each TTFT run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--levels", default="100,250,500,1000", help="concurrent streams, in turn")
    parser.add_argument("--worker-concurrency", type=int, default=None, help="default: the largest level")
    parser.add_argument("--tokens", type=int, default=SLOW_TOKENS, help="max_tokens of each held stream")
    parser.add_argument("--latency-scale", type=float, default=SLOW_SCALE,
                        help="SANDBOX_LATENCY_SCALE of the held streams (1: the catalog's speed)")
    parser.add_argument("--stream-timeout", type=float, default=120.0, help="seconds a client waits for a stream")
    parser.add_argument("--skip-ttft", action="store_true")
    parser.add_argument("--skip-capacity", action="store_true")
    add_web_options(parser)
    args = parser.parse_args(argv)
    raise_open_files_limit()
    web = WebOptions(args.worker_class, args.workers, args.threads, args.worker_connections)
    result = {"bench": "streaming", "date": datetime.date.today().isoformat(), "machine": machine(),
              "machine_busy_before_pct_of_one_cpu": other_load_pct(), "web": web.describe()}
    print(f"streaming bench, web {web.describe()}, machine {result['machine']}", file=sys.stderr, flush=True)
    if not args.skip_ttft:
        with Stack(latency_scale=0.0, web=web, redis_url=args.redis_url) as stack:
            result["ttft"] = {"rate": args.rate, "duration_s": args.duration, "model": TTFT_MODEL,
                              "max_tokens": TTFT_TOKENS, "runs": ttft_runs(stack, args)}
            added = [r["added_ttft_ms"]["p50"] for r in result["ttft"]["runs"] if "p50" in r["added_ttft_ms"]]
            result["ttft"]["added_p50_ms_median"] = sorted(added)[len(added) // 2] if added else None
    if not args.skip_capacity:
        result["capacity"] = capacity_runs(args, web)
    print(json.dumps(result))
    print(summary(result))


def summary(r: dict) -> str:
    lines = [f"streaming through the orchestrator, {r['date']}, {r['machine']['cpus']} CPUs, web {r['web']}, "
             f"load average {r['machine']['loadavg_1m_5m']}"]
    if "ttft" in r:
        t = r["ttft"]
        lines.append(f"added time to first token at {t['rate']:g} streams/s ({t['model']}, sandbox at 0 ms; "
                     "goal p50 < 5 ms):")
        for row in t["runs"]:
            d, o = row["direct"]["ttft_ms"], row["orchestrator"]["ttft_ms"]
            lines.append(f"  direct p50 {d['p50']} / p99 {d['p99']} ms, orchestrator p50 {o['p50']} / p99 {o['p99']} "
                         f"ms, added p50 {row['added_ttft_ms'].get('p50')} / p99 {row['added_ttft_ms'].get('p99')} "
                         f"ms, errors {sum(row['orchestrator']['errors'].values())} of {row['orchestrator']['sent']}")
    if "capacity" in r:
        c = r["capacity"]
        lines.append(f"concurrent streams ({c['model']}, {c['max_tokens']} tokens, catalog speed x {c['latency_scale']:g}; "
                     f"worker {c['worker']};"
                     " goal 1,000 with no error):")
        for row in c["levels"]:
            lines.append(
                f"  {row['streams']:>5}: errors {row['error_count']} {row['errors'] or ''}| peak open {row['peak_open']} "
                f"| first chunk p50 {row['first_chunk_s']['p50']} s p99 {row['first_chunk_s']['p99']} s "
                f"(> 10 s: {row['first_chunk_later_than_10s']}) | answer p50 {row['whole_answer_s']['p50']} s "
                f"p99 {row['whole_answer_s']['p99']} s | CPU s api {row['cpu_s']['api']} worker {row['cpu_s']['worker']}"
                f" | peak RSS MB api {row['peak_rss_mb']['api']} worker {row['peak_rss_mb']['worker']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
