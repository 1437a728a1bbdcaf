"""Providers' rate limits (requests and tokens per minute, per model), kept by every worker
together through Redis, so that a large batch waits for its turn instead of provoking 429s.

A model's `limits: {rpm, tpm}` in the catalog are counted over a sliding window of
PROVIDER_LIMIT_WINDOW seconds (60 by default, the provider's minute): at most
rpm × window / 60 calls, and tpm × window / 60 tokens, in any window. A shorter window
smooths bursts (providers quantise their per-minute limits too); a very small rpm stretches
the window so that at least one call fits. Each window is counted a little longer
(MARGIN) than it is, so that the network's jitter between our count and the provider's
arrival cannot put one call too many into the provider's own window.

**Schedule.** Every call to a limited model takes a slot: one Lua script finds the earliest
time at or after the latest slot already given (a FIFO schedule) at which one more call, of
its estimated tokens, keeps every window under the limits, and books it there. A call whose
slot is now goes at once; one whose slot is later waits for it (the task is retried with
that countdown, holding its booking, and claims it when it runs); one whose slot would be
beyond its horizon books nothing and comes back later. So each waiting call costs one
script run, whatever the queue behind it, and a batch never turns into a storm of retries.
Tokens are estimated as the prompt (four characters a token) plus max_tokens, as OpenAI's
own limiter counts them.

**Lanes.** Interactive requests must not queue behind a batch that has booked a model's
next minute. Each limit is split in two lanes: `batch` gets BATCH_LIMIT_SHARE of it (80% by
default, at least one call a window), `chat` the rest. A chat call tries its own lane
first, and the batch lane's schedule after it, so it may use what batches leave; batch
items use their lane only. The two lanes together never exceed the limit.

Keys, per model and lane, expiring one window after the last booked slot:
  {prefix}plimit:{model}:{lane}:at    sorted set: booking -> slot time (ms, Redis clock)
  {prefix}plimit:{model}:{lane}:tok   sorted set: booking -> tokens booked before it
  {prefix}plimit:{model}:{lane}:meta  hash: cum (tokens ever booked), c:{booking} (claimed)
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import redis

from orchestrator.core.catalog import EmbeddingModel, ModelCapabilities, ModelLimits
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

CHAT, BATCH = "chat", "batch"
# Seconds a window is counted beyond its length: more than the lag between booking a slot
# and the provider seeing the call (a loaded worker took up to 0.3 s here).
MARGIN = 0.5

@dataclass(frozen=True)
class Allowance:
    """What one lane of a model may use in any window."""

    window: float  # seconds
    requests: int  # 0: no limit on calls
    tokens: int  # 0: no limit on tokens


@dataclass(frozen=True)
class Grant:
    """The answer to one call: `booked` a slot in `delay` seconds (0: go now) under
    `booking`, or (not booked) no slot within the horizon, the next in `delay` seconds."""

    booked: bool
    delay: float
    lane: str
    booking: str


def allowances(limits: ModelLimits, window: float, batch_share: float) -> dict[str, Allowance]:
    """Each lane's share of a model's limits over the counting window; a lane whose share
    rounds to nothing is left out."""
    calls = tokens = 0
    if limits.rpm:
        calls = max(1, math.floor(limits.rpm * window / 60))
        window = max(window, 60 * calls / limits.rpm)  # a tiny rpm: one call per 60/rpm seconds
    if limits.tpm:
        tokens = max(1, math.floor(limits.tpm * window / 60))
    batch_calls = max(1, math.floor(calls * batch_share)) if calls else 0
    batch_tokens = max(1, math.floor(tokens * batch_share)) if tokens else 0
    lanes = {BATCH: Allowance(window, batch_calls, batch_tokens)}
    chat = Allowance(window, calls - batch_calls, tokens - batch_tokens)
    if (not calls or chat.requests) and (not tokens or chat.tokens):
        lanes[CHAT] = chat
    return lanes


class ProviderLimits:
    def __init__(self, client: redis.Redis, prefix: str, window: float, batch_share: float):
        self.keyspace = Keys(prefix)
        self.window = window
        self.batch_share = batch_share
        self._acquire = Lua(client, "slot_acquire")
        self._claim = Lua(client, "slot_claim")

    def keys(self, model: str, lane: str) -> list[str]:
        return self.keyspace.provider_limit(model, lane)

    def lanes(self, model: ModelCapabilities | EmbeddingModel) -> dict[str, Allowance]:
        return allowances(model.limits, self.window, self.batch_share) if model.limits else {}

    def acquire(self, model: ModelCapabilities | EmbeddingModel, lane: str, tokens: int, horizon: float, owner: str) -> Grant | None:
        """Book the earliest slot of `lane` for one call of `tokens` tokens, if it comes
        within `horizon` seconds; None when the lane has no share of the model's limits."""
        allowance = self.lanes(model).get(lane)
        if allowance is None:
            return None
        booking = f"{owner}:{secrets.token_hex(4)}"
        booked, delay_ms = self._acquire(
            self.keys(model.model_name, lane), window_ms=round((allowance.window + MARGIN) * 1000),
            max_requests=allowance.requests, max_tokens=allowance.tokens, tokens=max(1, tokens), booking=booking,
            horizon_ms=max(0, round(horizon * 1000)),
        )
        return Grant(bool(booked), max(0.0, delay_ms / 1000), lane, booking)

    def claim(self, model: str, lane: str, booking: str) -> bool:
        """Use a booked slot, once: False when it was used already (a redelivered task) or
        has left the window (the task came too late), and the call must book again."""
        at, _, meta = self.keys(model, lane)
        return bool(self._claim([at, meta], booking=booking))
