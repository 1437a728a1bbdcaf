"""How long the sandbox takes to answer: each model's catalog speed, scaled and jittered.

`x-sandbox-latency: <seconds>` on a request replaces all of it with a fixed delay before
the answer (before the first chunk of a stream), for benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from aiohttp import web

from orchestrator.core.catalog import Catalog
from sandbox.wire import invalid

LATENCY_HEADER = "x-sandbox-latency"
JITTER = 0.10  # each request is up to this proportion faster or slower than the model's prior


@dataclass(frozen=True)
class Pacing:
    first_token: float  # seconds before the answer, or before a stream's first text
    per_token: float  # seconds per output token after that

    def total(self, tokens: int) -> float:
        return self.first_token + self.per_token * tokens


IMMEDIATE = Pacing(0.0, 0.0)


def parse_latency_header(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{LATENCY_HEADER} must be a number of seconds, not {value!r}")
    return seconds


def fixed_latency(request: web.Request) -> float | None:
    """The fixed delay the request's x-sandbox-latency header asks for; None without one."""
    value = request.headers.get(LATENCY_HEADER)
    try:
        return None if value is None else parse_latency_header(value)
    except ValueError as exc:
        raise invalid(f"sandbox: {exc}") from None


class Latency:
    def __init__(self, catalog: Catalog, scale: float, seed: int = 0):
        self._catalog = catalog
        self._scale = scale
        self._rng = random.Random(seed)

    def pacing(self, model: str, reasoning_tokens: int, fixed: float | None = None) -> Pacing:
        """Reasoning tokens are spent before the first visible token, at the model's speed."""
        if fixed is not None:
            return Pacing(fixed, 0.0)
        if self._scale <= 0 or model not in self._catalog:
            return IMMEDIATE
        spec = self._catalog.get(model)
        factor = self._scale * (1 + self._rng.uniform(-JITTER, JITTER))
        per_token = factor / spec.tokens_per_second
        return Pacing(factor * spec.ttft + reasoning_tokens * per_token, per_token)
