"""Worker heartbeats in Redis: which workers are alive, without a broadcast round trip.

Key: {prefix}workers (sorted set: hostname -> time of its last heartbeat).
"""

from __future__ import annotations

import time

import redis

HEARTBEAT_TTL = 15.0  # a worker silent this long counts as gone


class Fleet:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.key = f"{prefix}workers"

    def heartbeat(self, hostname: str) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.key, {hostname: now})
        pipe.zremrangebyscore(self.key, 0, now - HEARTBEAT_TTL)
        pipe.execute()

    def leave(self, hostname: str) -> None:
        self.redis.zrem(self.key, hostname)

    def alive(self) -> list[str]:
        return sorted(self.redis.zrangebyscore(self.key, time.time() - HEARTBEAT_TTL, "+inf"))
