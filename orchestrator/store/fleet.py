"""Worker heartbeats in Redis: which workers are alive, without a broadcast round trip.

Key: {prefix}workers (sorted set: hostname -> time of its last heartbeat). A worker removes
its entry when it shuts down; the monitor (orchestrator/runtime/monitor.py) takes, and alerts on,
the entries of workers that went silent without doing so.
"""

from __future__ import annotations

import time

import redis

from orchestrator.store.keyspace import Keys

HEARTBEAT_TTL = 15.0  # a worker silent this long counts as gone


class Fleet:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.key = Keys(prefix).workers

    def heartbeat(self, hostname: str) -> None:
        # Stale entries stay until `lost()` takes them (the monitor alerts on each): a worker
        # that shut down removed its own entry, so one still here past the TTL was lost.
        self.redis.zadd(self.key, {hostname: time.time()})

    def leave(self, hostname: str) -> None:
        self.redis.zrem(self.key, hostname)

    def alive(self) -> list[str]:
        return sorted(self.redis.zrangebyscore(self.key, time.time() - HEARTBEAT_TTL, "+inf"))

    def lost(self) -> list[tuple[str, float]]:
        """Take the workers silent for longer than HEARTBEAT_TTL off the set, with their last
        heartbeat; whoever calls this (the monitor) reports them, once."""
        cutoff = time.time() - HEARTBEAT_TTL
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrangebyscore(self.key, 0, cutoff, withscores=True)
        pipe.zremrangebyscore(self.key, 0, cutoff)
        stale, _ = pipe.execute()
        return [(hostname, float(score)) for hostname, score in stale]
