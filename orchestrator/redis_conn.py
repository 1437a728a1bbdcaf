"""The Redis connection every process shares (one pool per process)."""

from __future__ import annotations

import redis

from orchestrator.config import Settings


# Every thread waiting on a request holds a connection in a blocking XREAD: an API process
# has up to 500 such threads (`orchestrator web`), and redis-py's default pool stops at 100.
MAX_CONNECTIONS = 1024


def connect(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        password=settings.redis_password,
        socket_connect_timeout=2,
        socket_timeout=None,  # blocking reads (XREAD BLOCK) set their own bound
        health_check_interval=30,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
    )
