"""Celery tasks. Each is idempotent, keyed by its request id."""

from __future__ import annotations

from functools import lru_cache

import redis

from celery.signals import heartbeat_sent, worker_ready, worker_shutdown

from orchestrator.config import get_settings
from orchestrator.services import Services
from workers import execution
from workers.app import app
from workers.queues import MOST_URGENT, kombu_priority


@lru_cache(maxsize=1)
def services() -> Services:
    """One set of clients per worker process, shared by its threads."""
    return Services.from_settings(get_settings())


@app.task(name="orchestrator.execute_chat", bind=True, max_retries=None)
def execute_chat(self, request_id: str, payload: dict, chain: dict | None = None) -> None:
    """One step of a request's chain; the next attempt is this same task, retried."""
    retry = execution.execute(services(), request_id, payload, chain)
    if retry is not None:
        # The next attempt jumps the queue: the request has already waited its turn.
        raise self.retry(args=[request_id, payload], kwargs={"chain": retry.chain}, countdown=retry.delay,
                         priority=kombu_priority(MOST_URGENT))


def _beat(hostname: str) -> None:
    try:
        services().fleet.heartbeat(hostname)
    except redis.RedisError:
        pass  # Redis is away; the next heartbeat after it returns restores the entry


@heartbeat_sent.connect
def _heartbeat(sender, **kwargs) -> None:
    _beat(sender.eventer.hostname)


@worker_ready.connect
def _ready(sender, **kwargs) -> None:
    _beat(sender.hostname)


@worker_shutdown.connect
def _shutdown(sender, **kwargs) -> None:
    try:
        services().fleet.leave(sender.hostname)
    except redis.RedisError:
        pass
