"""Requests per API key per window (RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW seconds),
shared by every API process through Redis.

A sliding window log: each key has a sorted set of the times of its requests in the last
window. One Lua function (run by the authentication's script, orchestrator/store/users.py, so that
a request costs one round trip) drops the entries older than the window, counts the rest and
records the new request only if it fits, so however many processes count at once, no key ever gets
more than the limit in any window (a fixed window lets twice the limit through around a
boundary). Times come from the Redis server's clock, so API hosts need not agree on the
time. A key costs at most RATE_LIMIT_REQUESTS entries and expires one window after its last
request.

Key: {prefix}ratelimit:{key_id} (sorted set: request -> time in ms).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import redis

from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua


@dataclass(frozen=True)
class RateLimit:
    """The state of a key's limit after one request."""

    allowed: bool
    limit: int
    window: int  # seconds
    remaining: int
    reset_after: int  # whole seconds until the oldest request counted leaves the window


class RateLimiter:
    def __init__(self, client: redis.Redis, prefix: str, limit: int, window: int):
        self.keyspace = Keys(prefix)
        self.limit = limit
        self.window = window
        self._hit = Lua(client, "rate_limit")

    def key(self, key_id: str) -> str:
        return self.keyspace.rate_limit(key_id)

    def hit(self, key_id: str) -> RateLimit:
        """Count one request of this key, unless it would go over the limit."""
        limit, window_ms, request = self.hit_args()
        return self.result(self._hit([self.key(key_id)], limit=limit, window_ms=window_ms, request=request))

    def hit_args(self) -> list:
        """rate_limit_hit's arguments after the log (lua/lib/rate_limit_hit.lua): limit,
        window in ms, this request's id."""
        return [self.limit, self.window * 1000, secrets.token_hex(6)]

    def result(self, reply: list) -> RateLimit:
        """What rate_limit_hit's reply means."""
        admitted, count, reset_ms = reply
        return RateLimit(
            allowed=bool(admitted),
            limit=self.limit,
            window=self.window,
            remaining=max(self.limit - count, 0),
            reset_after=max(math.ceil(reset_ms / 1000), 1),
        )
