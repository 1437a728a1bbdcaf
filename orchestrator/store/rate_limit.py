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

# A key's log, its limit, the window in ms and a unique id for this request. Returns
# {admitted (0/1), requests in the window, ms until the oldest of them leaves it}. A function,
# so that authentication (orchestrator/store/users.py) can count a request in its own script.
HIT_FUNCTION = """
local function rate_limit_hit(log, limit, window, request)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local count = redis.call('ZCARD', log)
  local admitted = 0
  if count < limit then
    redis.call('ZADD', log, now, now .. ':' .. request)
    redis.call('PEXPIRE', log, window)
    count = count + 1
    admitted = 1
  end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  return {admitted, count, reset}
end
"""
# KEYS[1] the key's log; ARGV: limit, window in ms, a unique id for this request.
_HIT = HIT_FUNCTION + "return rate_limit_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"


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
        self.prefix = prefix
        self.limit = limit
        self.window = window
        self._hit = client.register_script(_HIT)

    def key(self, key_id: str) -> str:
        return f"{self.prefix}ratelimit:{key_id}"

    def hit(self, key_id: str) -> RateLimit:
        """Count one request of this key, unless it would go over the limit."""
        return self.result(self._hit(keys=[self.key(key_id)], args=self.hit_args()))

    def hit_args(self) -> list:
        """rate_limit_hit's arguments after the log: limit, window in ms, this request's id."""
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
