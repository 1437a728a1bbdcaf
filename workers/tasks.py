"""Celery tasks. Each is idempotent, keyed by its request id."""

from __future__ import annotations

import gc
from functools import lru_cache

import redis

from celery.signals import heartbeat_sent, worker_ready, worker_shutdown

from orchestrator.config import get_settings
from orchestrator.runtime.services import Services
from orchestrator.execution import executor as execution
from workers.app import app
from workers.queues import DEFAULT_PRIORITY, MOST_URGENT, batch_kombu_priority, kombu_priority, task_reprs


@lru_cache(maxsize=1)
def services() -> Services:
    """One set of clients per worker process, shared by its threads."""
    return Services.from_settings(get_settings())


@app.task(name="orchestrator.execute_chat", bind=True, max_retries=None)
def execute_chat(self, request_id: str, payload: dict, chain: dict | None = None, slot: dict | None = None) -> None:
    """One step of a request's chain; the next attempt is this same task, retried. A batch
    item (payload["batch"]) runs the same way, on the batch queue."""
    retry = execution.execute(services(), request_id, payload, chain, slot)
    if retry is not None:
        kwargs = {"chain": retry.chain}
        if retry.slot is not None:
            kwargs["slot"] = retry.slot  # a rate-limit slot booked for the next run
        raise self.retry(args=[request_id, payload], kwargs=kwargs, countdown=retry.delay,
                         priority=_retry_priority(payload), **task_reprs(request_id))


def _retry_priority(payload: dict) -> int:
    """The next attempt of a chat request jumps the queue: it has already waited its turn.
    A batch item's stays at its batch's priority, behind interactive chat."""
    if payload.get("batch"):
        return batch_kombu_priority(payload.get("priority", DEFAULT_PRIORITY))
    return kombu_priority(MOST_URGENT)


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
    services().providers.warm()
    gc.collect()
    gc.freeze()  # what lives as long as the worker, out of the collector's way (api/wsgi.py)


@worker_shutdown.connect
def _shutdown(sender, **kwargs) -> None:
    try:
        services().fleet.leave(sender.hostname)
    except redis.RedisError:
        pass
