"""One provider call's own cost: time to the first token through each adapter, against the
typed SDK call it replaced and a bare HTTP client.

    .venv/bin/python -m bench.provider_call [--calls 300] [--rounds 3]

Starts the sandbox on a free port (SANDBOX_LATENCY_SCALE=0: it answers at once) and, in one
thread, streams the same 16-token request again and again, timing from the call to the first
piece of text: through the adapter (orchestrator/providers: the SDK client's plain POST, its
SSE read by the adapter), through the SDK's typed `create` as the adapters called it before
(OpenAI: its raw lines; Anthropic: its typed events), and through a bare httpx2 client (the
floor). The kinds take turns, call after call; prints one JSON line,
then each round's medians.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import time

import aiohttp
import httpx2

from bench.sandbox import free_port, start_sandbox, wait_until_healthy
from orchestrator.config import get_settings
from orchestrator.core.catalog import Catalog
from orchestrator.core.types import ChatRequest, Message, StreamDelta
from orchestrator.providers.registry import ProviderRegistry

MESSAGE = "Tell me about the history of tea."
TOKENS = 16
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}


def adapter(registry: ProviderRegistry, model: str):
    provider = registry.for_model(registry.catalog.get(model))
    request = ChatRequest(model=model, messages=(Message("user", MESSAGE),), max_tokens=TOKENS)

    def first_token() -> None:
        events = provider.stream(request, timeout=30)
        try:
            next(e for e in events if isinstance(e, StreamDelta))
        finally:
            events.close()

    return first_token


def typed(registry: ProviderRegistry, model: str):
    client = registry.for_model(registry.catalog.get(model)).client
    messages = [{"role": "user", "content": MESSAGE}]
    if model.startswith("claude"):
        def first_token() -> None:
            with client.messages.create(model=model, messages=messages, max_tokens=TOKENS, stream=True) as events:
                next(e for e in events if e.type == "content_block_delta")
    else:  # the adapter's call until 2026-11-26: the typed create, its SSE lines read as they are
        def first_token() -> None:
            with client.chat.completions.with_streaming_response.create(
                model=model, messages=messages, max_tokens=TOKENS, stream=True, stream_options={"include_usage": True}
            ) as reply:
                next(line for line in reply.iter_lines() if '"content"' in line)
    return first_token


def bare(sandbox_url: str, model: str):
    http = httpx2.Client()
    messages = [{"role": "user", "content": MESSAGE}]
    if model.startswith("claude"):
        url, marker = f"{sandbox_url}/v1/messages", "content_block_delta"
    else:
        url, marker = f"{sandbox_url}/v1/chat/completions", '"content"'

    def first_token() -> None:
        body = {"model": model, "messages": messages, "max_tokens": TOKENS, "stream": True}
        with http.stream("POST", url, json=body, headers={"Authorization": "Bearer sandbox"}) as reply:
            next(line for line in reply.iter_lines() if marker in line)

    return first_token


def medians_ms(calls: dict, n: int) -> dict:
    """Each call's median over `n` turns, the calls taking turns so that drift hits them alike."""
    times = {name: [] for name in calls}
    for _ in range(n):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    os.environ["SANDBOX_URL"] = sandbox_url = f"http://127.0.0.1:{port}"
    sandbox = start_sandbox(port)
    try:
        asyncio.run(_ready(sandbox_url, sandbox))
        registry = ProviderRegistry(get_settings(), Catalog.load())
        calls = {}
        for provider, model in MODELS.items():
            calls[f"{provider}/adapter"] = adapter(registry, model)
            calls[f"{provider}/typed"] = typed(registry, model)
            calls[f"{provider}/bare"] = bare(sandbox_url, model)
        medians_ms(calls, 20)  # warm: connections, imports
        rounds = [medians_ms(calls, args.calls) for _ in range(args.rounds)]
    finally:
        sandbox.terminate()
        sandbox.wait()
    result = {"bench": "provider_call", "date": datetime.date.today().isoformat(), "calls": args.calls,
              "loadavg_1m": os.getloadavg()[0], "first_token_ms_median": rounds}
    print(json.dumps(result))
    for name in rounds[0]:
        print(f"{name:20s} " + " · ".join(f"{r[name]:.2f}" for r in rounds) + " ms")


async def _ready(url: str, sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        await wait_until_healthy(session, url, sandbox)


if __name__ == "__main__":
    main()
