"""Batch items the broker lost, sent again by the fleet's periodic pass.

kombu's Redis transport loses a message whose worker dies between taking it (BRPOP) and
recording it as unacked. An item not started yet whose task is neither on the batch queue
nor held by a worker was lost. One worker of the fleet looks at every unfinished batch on
each monitor pass (orchestrator/runtime/monitor.py: every INTERVAL seconds); the look is
cheap unless the batch queue is empty, runs at most every SWEEP_EVERY seconds across the
fleet, and an item is sent again when two looks in a row found it lost. Sent twice, an item would call its provider twice, but it ends and is
billed once.
"""

from __future__ import annotations

import logging

from orchestrator.core.job import item_id
from orchestrator.runtime.services import Services
from workers import broker, dispatch
from workers.queues import BATCH_QUEUE

log = logging.getLogger(__name__)

SWEEP_EVERY = 5.0  # seconds between two looks: far longer than a worker takes to record a message


def sweep(services: Services) -> int:
    """Send again what the broker lost of every unfinished batch; how many items."""
    prefix = services.settings.redis_prefix
    if broker.queue_length(services.broker, BATCH_QUEUE, prefix) or not services.batches.may_sweep(SWEEP_EVERY):
        return 0  # the items not started may still be waiting on the queue, or a look is recent
    sent = 0
    for batch_id in services.batches.open_ids():
        batch = services.batches.get(batch_id)
        if batch and batch["status"] in ("queued", "running") and batch["counts"]["queued"] and batch["sent"]:
            sent += _send_lost(services, batch, prefix)
    return sent


def _send_lost(services: Services, batch: dict, prefix: str) -> int:
    batch_id = batch["batch_id"]
    held = broker.reserved_task_ids(services.broker, prefix)
    seen = {index: job for index, job in services.batches.queued_jobs(batch_id, batch["total"])
            if item_id(batch_id, index) not in held}
    lost = sorted(services.batches.confirm_lost(batch_id, set(seen)))
    if lost:
        log.warning("batch %s: %d items lost by the broker, sent again", batch_id, len(lost))
        dispatch.enqueue_batch_items(((item_id(batch_id, index), seen[index]) for index in lost), batch["priority"])
    return len(lost)
