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


# KEYS[1] moving averages, KEYS[2] the hour's counters, KEYS[3] the lifetime totals (what
# /metrics exports as Prometheus counters); ARGV: alpha, success (1/0), latency, ttft (''
# when unknown), now, error kind ('' for none), input tokens, output tokens, cost in
# micro-dollars, fallback (1/0), latency bucket field, retention seconds, ttft bucket field.
_RECORD = """
local alpha, ok, latency = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function ewma(field, value)
  local old = redis.call('HGET', KEYS[1], field)
  if old then value = alpha * value + (1 - alpha) * tonumber(old) end
  redis.call('HSET', KEYS[1], field, tostring(value))
end
ewma('success', ok)
if ok == 1 then ewma('latency', latency) end
if ARGV[4] ~= '' then ewma('ttft', tonumber(ARGV[4])) end
redis.call('HINCRBY', KEYS[1], 'samples', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
if ok == 0 then redis.call('HSET', KEYS[1], 'last_error', ARGV[6], 'last_error_at', ARGV[5]) end
for k = 2, #KEYS do
  local key = KEYS[k]
  redis.call('HINCRBY', key, 'requests', 1)
  if ok == 1 then
    redis.call('HINCRBY', key, 'ok', 1)
    redis.call('HINCRBYFLOAT', key, 'latency_sum', latency)
    redis.call('HINCRBY', key, ARGV[11], 1)
    if ARGV[4] ~= '' then
      redis.call('HINCRBYFLOAT', key, 'ttft_sum', ARGV[4])
      redis.call('HINCRBY', key, 'ttft_count', 1)
      if ARGV[13] then redis.call('HINCRBY', key, ARGV[13], 1) end
    end
  else
    redis.call('HINCRBY', key, 'err:' .. ARGV[6], 1)
  end
  redis.call('HINCRBY', key, 'input_tokens', ARGV[7])
  redis.call('HINCRBY', key, 'output_tokens', ARGV[8])
  redis.call('HINCRBY', key, 'cost_micro', ARGV[9])
  redis.call('HINCRBY', key, 'fallbacks', ARGV[10])
end
redis.call('EXPIRE', KEYS[2], ARGV[12])
return 1
"""


def latency_bucket(seconds: float, name: str = "lat") -> str:
    ms = seconds * 1000
    bound = next((b for b in LATENCY_BOUNDS_MS if ms <= b), "inf")
    return f"{name}:{bound}"


class Stats:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._record = client.register_script(_RECORD)

    def _averages_key(self, model: str) -> str:
        return f"{self.prefix}stats:{model}"

    def hour_key(self, model: str, hour: int) -> str:
        return f"{self.prefix}stats:{model}:h{hour}"

    def total_key(self, model: str) -> str:
        return f"{self.prefix}stats:{model}:total"

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
        args = [
            ALPHA, int(outcome.error is None), outcome.latency, "" if outcome.ttft is None else outcome.ttft, now,
            outcome.error or "", outcome.input_tokens, outcome.output_tokens, round(outcome.cost * 1_000_000),
            int(outcome.fallback), latency_bucket(outcome.latency), RETENTION_SECONDS,
            latency_bucket(outcome.ttft or 0.0, "ttft"),
        ]
        self._record(keys=keys, args=args, client=pipe or self.redis)

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
