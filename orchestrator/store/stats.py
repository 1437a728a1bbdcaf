"""What the workers observe of every model: moving averages for routing, counters for analytics.

Each attempt updates, in one Lua call:
- {prefix}stats:{model} (hash): exponentially weighted moving averages of success (1/0),
  time to first token and latency, the number of samples, and when the last one came;
- {prefix}stats:{model}:h{hour} (hash, kept RETENTION_SECONDS): counters of the hour:
  requests, ok, err:{kind}, input/output tokens, cost in micro-dollars, fallbacks, latency
  and time-to-first-token sums, and latency and time-to-first-token histograms
  (lat:{upper bound in ms}, ttft:{upper bound in ms});
- {prefix}stats:{model}:total (hash, kept): the same counters since the start, never
  expiring, for Prometheus counters (which must not go down when old hours expire).
The moving averages also keep the last error's class and time (last_error, last_error_at).

The router trusts observations in proportion to their number (full trust from
TRUSTED_SAMPLES on) and less as they age (half after OBSERVATION_HALF_LIFE seconds without a sample),
so a model that degrades loses traffic, and one that stops getting traffic drifts back
to its catalog priors and gets tried again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from orchestrator.core.evidence import Observation
from orchestrator.store.connection import RoundTrip
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

ALPHA = 0.2  # weight of the newest sample in the moving averages
RETENTION_SECONDS = 32 * 86400
LATENCY_BOUNDS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


@dataclass(frozen=True)
class Outcome:
    """One attempt on one model: what it cost and how it went."""

    model: str
    provider: str
    error: str | None  # an ErrorKind value, None for success
    latency: float
    ttft: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    fallback: bool = False  # this attempt was not the first choice


def latency_bucket(seconds: float, name: str = "lat") -> str:
    ms = seconds * 1000
    bound = next((b for b in LATENCY_BOUNDS_MS if ms <= b), "inf")
    return f"{name}:{bound}"


class Stats:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.keyspace = Keys(prefix)
        self._record = Lua(client, "stats_record")

    def _averages_key(self, model: str) -> str:
        return self.keyspace.averages(model)

    def hour_key(self, model: str, hour: int) -> str:
        return self.keyspace.hour(model, hour)

    def total_key(self, model: str) -> str:
        return self.keyspace.totals(model)

    def hours(self, models: list[str], first_hour: int, last_hour: int) -> dict[str, list[dict]]:
        """Each model's hourly counters from `first_hour` to `last_hour` (inclusive), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            for hour in range(first_hour, last_hour + 1):
                pipe.hgetall(self.hour_key(model, hour))
        replies = iter(pipe.execute())
        return {model: [next(replies) for _ in range(first_hour, last_hour + 1)] for model in models}

    def totals(self, models: list[str]) -> dict[str, dict]:
        """Each model's lifetime counters and its moving averages (last error), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            pipe.hgetall(self.total_key(model))
            pipe.hgetall(self._averages_key(model))
        replies = pipe.execute()
        return {model: {"totals": replies[2 * i], "averages": replies[2 * i + 1]} for i, model in enumerate(models)}

    def record(self, outcome: Outcome, pipe=None) -> None:
        now = time.time()
        keys = [self._averages_key(outcome.model), self.hour_key(outcome.model, int(now // 3600)),
                self.total_key(outcome.model)]
        self._record(
            keys, client=pipe or self.redis, alpha=ALPHA, success=int(outcome.error is None), latency=outcome.latency,
            ttft="" if outcome.ttft is None else outcome.ttft, now=now, error=outcome.error or "",
            input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
            cost_micro=round(outcome.cost * 1_000_000), fallback=int(outcome.fallback),
            latency_bucket=latency_bucket(outcome.latency), retention=RETENTION_SECONDS,
            ttft_bucket=latency_bucket(outcome.ttft or 0.0, "ttft"),
        )

    def observations_in(self, trip: RoundTrip, models: list[str]) -> Callable[[], dict[str, Observation]]:
        """The moving averages of the models that have any, read in the caller's round trip."""
        def queue(pipe) -> None:
            for model in models:
                pipe.hmget(self._averages_key(model), "samples", "success", "ttft", "latency", "updated_at")

        def observed(replies: list) -> dict[str, Observation]:
            return {
                model: Observation(int(samples), float(success), float(ttft or math.nan),
                                   float(latency or math.nan), float(updated_at))
                for model, (samples, success, ttft, latency, updated_at) in zip(models, replies, strict=True) if samples
            }

        return trip.command(queue, observed)
