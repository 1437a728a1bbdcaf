"""The worker's logging, request ids and periodic checks (Celery signal handlers).

- Logging: the root logger gets orchestrator/runtime/logs.py's handler (JSON by default) instead of
  Celery's own, so the worker's lines carry the request and task ids.
- Request ids: a task carries its request's X-Request-ID in a message header
  (`request_id`, added by the publisher, here or in the API: api/observability.py); the
  worker sets it around each task, and keeps it on the retries a task sends itself.
- Queue age: every task published carries the time it was sent (`enqueued_at`), from which
  /metrics reads how long the oldest waiting task has waited (workers/broker.py).
- Checks: on each heartbeat, orchestrator/runtime/monitor.py's checks, the sweep for batch
  items the broker lost (workers/lost_items.py) and economy batches' submissions and collections
  (workers/provider_batches.py), by one worker of the fleet per interval, in a thread of their
  own so the heartbeat is never held up.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import before_task_publish, heartbeat_sent, setup_logging, task_postrun, task_prerun

from orchestrator.config import get_settings
from orchestrator.runtime import logs
from workers.broker import ENQUEUED_AT

log = logging.getLogger(__name__)


@setup_logging.connect
def _logging(loglevel=None, **kwargs) -> None:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)


@before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    request_id = logs.REQUEST_ID.get()
    if request_id and headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id


@before_task_publish.connect
def _stamp_send_time(headers=None, **kwargs) -> None:
    if headers is not None:
        headers[ENQUEUED_AT] = time.time()


@task_prerun.connect
def _enter(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, "request_id", None) or ((getattr(request, "headers", None) or {}).get("request_id"))
    logs.REQUEST_ID.set(request_id or task_id)
    logs.TASK_ID.set(task_id)
    log.info("task %s started", getattr(task, "name", "?"))


@task_postrun.connect
def _leave(**kwargs) -> None:
    logs.REQUEST_ID.set(None)
    logs.TASK_ID.set(None)


_running = threading.Lock()


def _check() -> None:
    from workers import lost_items, provider_batches
    from workers.tasks import services

    try:
        services().monitor.tick(lambda: lost_items.sweep(services()), lambda: provider_batches.step(services()))
    finally:
        _running.release()


@heartbeat_sent.connect
def _monitor(sender=None, **kwargs) -> None:
    if _running.acquire(blocking=False):  # one pass at a time in this process
        threading.Thread(target=_check, name="monitor", daemon=True).start()
