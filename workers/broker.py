"""What the Redis broker holds, read in kombu's own key layout (under REDIS_PREFIX).

kombu's Redis transport keeps a queue as one list per priority level (`{queue}` for level
0, `{queue}{sep}{level}` for the others) and a message taken by a worker, until its ack, in
the `unacked` hash (delivery tag -> [message, exchange, routing key]). A message is in
neither for an instant: between the worker's BRPOP and its write to `unacked`. A worker
killed in that instant loses the message (kombu's Redis transport has no atomic move);
api/batch.py uses these reads to find batch items lost that way and send them again.
"""

from __future__ import annotations

import json

import redis

from celeryconfig import broker_transport_options
from orchestrator import metrics

SEP = broker_transport_options["sep"]
PREFIX = broker_transport_options["global_keyprefix"]


def queue_keys(queue: str, prefix: str = PREFIX) -> list[str]:
    return list(metrics.queue_keys(prefix, queue, SEP).values())


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
