"""What the Redis broker holds, read in kombu's own key layout (under REDIS_PREFIX).

kombu's Redis transport keeps a queue as one list per priority level (`{queue}` for level
0, `{queue}{sep}{level}` for the others) and a message taken by a worker, until its ack, in
the `unacked` hash (delivery tag -> [message, exchange, routing key]). A message is in
neither for an instant: between the worker's BRPOP and its write to `unacked`. A worker
killed in that instant loses the message (kombu's Redis transport has no atomic move);
workers/lost_items.py uses these reads to find batch items lost that way and send them again.

A list is pushed on the left and served from the right, so its last element is the message
that has waited longest; every task published carries the time it was sent in its
`enqueued_at` header (workers/observability.py), which gives /metrics the age of the oldest
waiting task, the signal to scale workers on.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import redis

from celeryconfig import broker_transport_options

SEP = broker_transport_options["sep"]
LEVELS = broker_transport_options["priority_steps"]
PREFIX = broker_transport_options["global_keyprefix"]
ENQUEUED_AT = "enqueued_at"  # message header: the publisher's time.time() when it sent the task


class Waiting(NamedTuple):
    """A priority level of a queue: how many messages wait, and when the oldest was sent."""

    depth: int
    oldest_enqueued_at: float | None  # None when empty, or for a message sent without the header


def queue_keys(queue: str, prefix: str = PREFIX) -> list[str]:
    """The queue's list for each priority level, in level order (0 is served first)."""
    return [f"{prefix}{queue}" if level == 0 else f"{prefix}{queue}{SEP}{level}" for level in LEVELS]


def queue_depths(client: redis.Redis, queues: list[str], prefix: str = PREFIX) -> dict[str, dict[int, int]]:
    """Messages waiting per queue and priority level, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue, prefix):
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {queue: {level: int(next(lengths)) for level in LEVELS} for queue in queues}


def waiting(client: redis.Redis, queues: list[str], prefix: str = PREFIX) -> dict[str, dict[int, Waiting]]:
    """Per queue and priority level, the messages waiting and the oldest one's send time (one
    round trip: a length and the last element of each list)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue, prefix):
            pipe.llen(key)
            pipe.lindex(key, -1)
    replies = iter(pipe.execute())
    return {queue: {level: Waiting(int(next(replies)), _enqueued_at(next(replies))) for level in LEVELS}
            for queue in queues}


def _enqueued_at(message: str | bytes | None) -> float | None:
    try:
        return float(json.loads(message)["headers"][ENQUEUED_AT]) if message else None
    except (ValueError, LookupError, TypeError):
        return None


def queue_length(client: redis.Redis, queue: str, prefix: str = PREFIX) -> int:
    """Messages waiting in `queue`, every priority level together (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue, prefix):
        pipe.llen(key)
    return sum(pipe.execute())


def reserved_task_ids(client: redis.Redis, prefix: str = PREFIX) -> set[str]:
    """The ids of the tasks workers hold (running, prefetched or waiting for a countdown)."""
    ids = set()
    for value in client.hvals(f"{prefix}unacked"):
        try:
            ids.add(json.loads(value)[0]["headers"]["id"])
        except (ValueError, LookupError, TypeError):
            continue
    return ids
