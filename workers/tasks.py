"""Celery tasks. Each is idempotent, keyed by its request id."""

from __future__ import annotations

import gc
import logging
from contextlib import contextmanager
from functools import lru_cache

import redis
from celery.exceptions import Reject
from celery.signals import heartbeat_sent, worker_ready, worker_shutdown

from orchestrator.config import get_settings
from orchestrator.core.embedding import EmbeddingJob, UnknownEmbeddingJobVersion
from orchestrator.core.job import ADMIN_ID, ChatJob, RateLimitSlot, UnknownJobVersion
from orchestrator.core.retry_policy import Chain
from orchestrator.execution.outcomes import RetryLater
from orchestrator.runtime import logs
from orchestrator.runtime.services import Services
from orchestrator.store.connection import REDIS_AWAY
from workers.app import app
from workers.dispatch import EXECUTE_CHAT, EXECUTE_EMBEDDING
from workers.queues import DEFAULT_PRIORITY, MOST_URGENT, batch_kombu_priority, kombu_priority, task_reprs

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def services() -> Services:
    """One set of clients per worker process, shared by its threads."""
    return Services.from_settings(get_settings())


@app.task(name=EXECUTE_CHAT, bind=True, max_retries=None)
def execute_chat(self, request_id: str, payload: dict, chain: dict | None = None, slot: dict | None = None) -> None:
    """One step of a request's chain (`payload` is its ChatJob as JSON); the next attempt is
    this same task, retried. A batch item runs the same way, on the batch queue."""
    try:
        job = ChatJob.from_json(payload)
        state = Chain.from_dict(chain) if chain else None
        booked = RateLimitSlot.from_json(slot) if slot else None
    except (UnknownJobVersion, LookupError, TypeError, ValueError) as exc:
        log.exception("request %s: its task's arguments cannot be read", request_id)
        services().settlement.unreadable(request_id, payload.get("owner") or ADMIN_ID, str(exc) or type(exc).__name__)
        return
    with back_on_the_queue_while_redis_is_away():
        outcome = services().executor.run(request_id, job, state, booked, logs.REQUEST_ID.get())
    if isinstance(outcome, RetryLater):
        kwargs: dict = {"chain": outcome.chain.as_dict()}
        if outcome.slot is not None:
            kwargs["slot"] = outcome.slot.to_json()  # a rate-limit slot booked for the next run
        raise self.retry(args=[request_id, payload], kwargs=kwargs, countdown=outcome.delay,
                         priority=_retry_priority(job), **task_reprs(request_id))


@app.task(name=EXECUTE_EMBEDDING)
def execute_embedding(request_id: str, payload: dict) -> None:
    """An embedding request, its fallbacks within the task (orchestrator/execution/embedder.py)."""
    try:
        job = EmbeddingJob.from_json(payload)
    except (UnknownEmbeddingJobVersion, LookupError, TypeError, ValueError) as exc:
        log.exception("request %s: its task's arguments cannot be read", request_id)
        services().settlement.unreadable(request_id, payload.get("owner") or ADMIN_ID, str(exc) or type(exc).__name__)
        return
    with back_on_the_queue_while_redis_is_away():
        services().embedder.run(request_id, job)


@contextmanager
def back_on_the_queue_while_redis_is_away():
    """A task that meets Redis away (down, or failing over) is requeued rather than acked as
    failed, which would lose it: if Redis is too far away to take it back now, its message
    stays unacked and comes back after VISIBILITY_TIMEOUT. It runs again from where its
    records stand (every step is idempotent by request id)."""
    try:
        yield
    except REDIS_AWAY as exc:
        log.warning("Redis unreachable; the task goes back on the queue: %s", exc)
        raise Reject(exc, requeue=True) from exc


def _retry_priority(job: ChatJob) -> int:
    """The next attempt of a chat request jumps the queue: it has already waited its turn.
    A batch item's stays at its batch's priority, behind interactive chat."""
    if job.batch:
        return batch_kombu_priority(job.priority if job.priority is not None else DEFAULT_PRIORITY)
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
