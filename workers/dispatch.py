"""What the API asks of the worker fleet, in one place: putting work on the queues (a chat
request, an embedding request, a batch's items, and the task names they run), how much waits there, and which
workers answer. The API never builds a broker message or reads kombu's keys itself."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from orchestrator.core.embedding import EmbeddingJob
from orchestrator.core.job import ChatJob
from workers import broker
from workers.app import app
from workers.queues import BATCH_QUEUE, CHAT_QUEUE, DEFAULT_PRIORITY, batch_kombu_priority, kombu_priority, task_reprs

EXECUTE_CHAT = "orchestrator.execute_chat"
EXECUTE_EMBEDDING = "orchestrator.execute_embedding"
SEND_CHUNK = 1_000  # broker commands per pipeline round trip while enqueuing a batch


def enqueue_chat(request_id: str, job: ChatJob) -> None:
    """One chat request on the chat queue, its id as the task id."""
    app.send_task(EXECUTE_CHAT, args=[request_id, job.to_json()], task_id=request_id, queue=CHAT_QUEUE,
                  priority=kombu_priority(DEFAULT_PRIORITY), **task_reprs(request_id))


def enqueue_embedding(request_id: str, job: EmbeddingJob) -> None:
    """One embedding request on the chat queue, at the API's default priority, as a chat request."""
    app.send_task(EXECUTE_EMBEDDING, args=[request_id, job.to_json()], task_id=request_id, queue=CHAT_QUEUE,
                  priority=kombu_priority(DEFAULT_PRIORITY), **task_reprs(request_id))


def enqueue_batch_items(items: Iterable[tuple[str, ChatJob]], priority: int) -> None:
    """One task per (item id, job) on the batch queue, idempotent by the item's id.

    What `send_task` does, without its two costs per message that dominate at 10,000 items
    (measured: 2.3 ms an item through `send_task`, 0.5 ms this way): the repr of the
    arguments (Flower shows the item's id instead of its whole payload) and a `task-sent`
    event (Flower lists a task from the `task-received` event of the worker that takes it).
    One producer sends them all, in pipelined round trips (kombu's publish batch)."""
    amqp, level = app.amqp, batch_kombu_priority(priority)
    with app.producer_or_acquire() as producer, producer.batch(max_size=SEND_CHUNK):
        for request_id, job in items:
            message = amqp.create_task_message(
                request_id, EXECUTE_CHAT, [request_id, job.to_json()], {}, create_sent_event=False,
                **task_reprs(request_id),
            )
            amqp.send_task_message(producer, EXECUTE_CHAT, message, queue=BATCH_QUEUE, priority=level)


def queue_depths(client: redis.Redis, prefix: str) -> dict[str, dict[int, int]]:
    """Messages waiting per queue (chat, batch) and kombu priority level, in one round trip."""
    return broker.queue_depths(client, [CHAT_QUEUE, BATCH_QUEUE], prefix)


def queue_waiting(client: redis.Redis, prefix: str) -> dict[str, dict[int, broker.Waiting]]:
    """Per queue and kombu priority level, the messages waiting and when the oldest was sent."""
    return broker.waiting(client, [CHAT_QUEUE, BATCH_QUEUE], prefix)


def ask_workers(names: list[str], timeout: float) -> tuple[set[str], dict[str, list]]:
    """Which of `names` answer a Celery ping within `timeout`, and the tasks in hand of those
    (an inspect, which a worker may fail to answer in time)."""
    control = app.control
    pongs = {name for reply in control.ping(destination=names, timeout=timeout, limit=len(names)) for name in reply}
    active = (control.inspect(destination=sorted(pongs), timeout=timeout, limit=len(pongs)).active() or {}
              if pongs else {})
    return pongs, active
