"""Economy batches' periodic work, on the fleet's periodic pass (orchestrator/runtime/monitor.py,
run by one worker every INTERVAL seconds from the workers' heartbeats): submit the items parked
for a provider batch, collect the provider batches that ended, and put the items they failed
back on the batch queue, as standard items (orchestrator/execution/economy.py). The monitor's
pass is the project's one periodic mechanism: nothing more to start with `make run`, the
Procfile or docker-compose, and no Celery beat."""

from __future__ import annotations

from itertools import groupby

from orchestrator.core.job import ChatJob
from orchestrator.runtime.services import Services
from workers import dispatch
from workers.queues import DEFAULT_PRIORITY


def step(services: Services) -> None:
    services.economy.run(resend)


def resend(items: list[tuple[str, ChatJob]]) -> None:
    """The items' tasks on the batch queue again, each at its batch's priority."""
    def priority(item: tuple[str, ChatJob]) -> int:
        return item[1].priority if item[1].priority is not None else DEFAULT_PRIORITY

    for level, group in groupby(sorted(items, key=priority), key=priority):
        dispatch.enqueue_batch_items(group, level)
