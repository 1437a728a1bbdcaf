"""Celery tasks. Each is idempotent, keyed by its request id."""

from __future__ import annotations

from functools import lru_cache

import redis

from celery.signals import heartbeat_sent, worker_ready, worker_shutdown

from orchestrator.config import get_settings
from orchestrator.services import Services
from workers import execution
from workers.app import app


@lru_cache(maxsize=1)
def services() -> Services:
    """One set of clients per worker process, shared by its threads."""
    return Services.from_settings(get_settings())


@app.task(name="orchestrator.execute_chat")
def execute_chat(request_id: str, payload: dict) -> None:
    execution.execute(services(), request_id, payload)


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
