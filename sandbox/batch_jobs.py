"""Provider batches the sandbox plays (OpenAI batches, Anthropic message batches, Gemini batch
jobs): their items, answered one by one over the batch's delay, and how each batch ends.

A batch's course is set when it is created, by the fault rules that match its model
(sandbox/faults.py, set with POST /_sandbox/faults): `batch_delay` (the seconds over which its
items are answered; DEFAULT_DELAY without a rule) and `batch_expire` (it expires at the end of
its delay with only `after_items` answered). Item i of n is answered at created + delay *
(i + 1) / n, as the same call made alone would be, its own fault rules included: a rule with a
count fails that many items. A cancelled batch answers nothing more; what was answered stays.
The wire modules (openai_batches, anthropic_batches, gemini_batches) give it each provider's shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.fault_rules import FaultRules

DEFAULT_DELAY = 1.0  # seconds
IN_PROGRESS, COMPLETED, EXPIRED, CANCELLED = "in_progress", "completed", "expired", "cancelled"


@dataclass(frozen=True)
class Outcome:
    """An item's answer: the HTTP status and body the same call alone would have had."""

    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Item:
    custom_id: str
    model: str
    body: dict  # the call's body, in its provider's format
    outcome: Outcome | None = None  # None: not answered (yet)


Answer = Callable[[Item], Outcome]


@dataclass
class BatchJob:
    id: str
    api: str  # openai, anthropic or gemini
    items: list[Item]
    created: float
    delay: float
    answer: Answer
    expire_after: int | None = None  # items answered before it expires; None: it completes
    state: str = IN_PROGRESS
    ended_at: float | None = None
    cancelled_at: float | None = None
    extra: dict = field(default_factory=dict)  # the wire format's own fields (input file, metadata, ...)

    def advance(self, now: float | None = None) -> BatchJob:
        """Answer the items due by `now`, and end the batch at the end of its delay."""
        if self.ended_at is not None:
            return self
        now = time.time() if now is None else now
        total, finished = len(self.items), now >= self.created + self.delay
        due = total if finished else int(total * (now - self.created) / self.delay)
        for item in self.items[:min(due, total if self.expire_after is None else self.expire_after)]:
            if item.outcome is None:
                item.outcome = self.answer(item)
        if finished:
            self.ended_at = self.created + self.delay
            self.state = EXPIRED if self.expire_after is not None and self.expire_after < total else COMPLETED
        return self

    def cancel(self, now: float | None = None) -> None:
        """Stop answering; what was answered stays. A batch that has ended stays as it ended."""
        now = time.time() if now is None else now
        self.advance(now)
        if self.ended_at is None:
            self.cancelled_at = self.ended_at = now
            self.state = CANCELLED

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def count(self, ok: bool) -> int:
        return sum(1 for item in self.items if item.outcome is not None and item.outcome.ok == ok)

    @property
    def unanswered(self) -> int:
        return sum(1 for item in self.items if item.outcome is None)


def page_size(asked: str | None, default: int, most: int) -> int | None:
    """A list's page size as asked (None: not a size from 1 to `most`)."""
    try:
        size = default if asked is None else int(asked)
    except ValueError:
        return None
    return size if 1 <= size <= most else None


class BatchJobs:
    def __init__(self):
        self._jobs: dict[str, BatchJob] = {}

    def create(self, job_id: str, api: str, items: list[Item], rules: FaultRules, answer: Answer, **extra) -> BatchJob:
        faults = rules.batch_faults(items[0].model if items else "")
        delay, expire = faults.get("batch_delay"), faults.get("batch_expire")
        job = BatchJob(job_id, api, items, time.time(), delay["seconds"] if delay else DEFAULT_DELAY, answer,
                       expire["after_items"] if expire else None, extra=extra)
        self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> BatchJob | None:
        job = self._jobs.get(job_id)
        return job.advance() if job else None

    def all(self) -> list[BatchJob]:
        return [job.advance() for job in self._jobs.values()]

    def newest_first(self, api: str, after: str | None, limit: int) -> tuple[list[BatchJob], bool]:
        """A page of an API's batches, newest first, from the one after `after` (a batch id;
        None: the newest); and whether more follow."""
        jobs = [job for job in reversed(self.all()) if job.api == api]
        ids = [job.id for job in jobs]
        start = 0 if after is None else ids.index(after) + 1 if after in ids else len(jobs)
        return jobs[start:start + limit], start + limit < len(jobs)

    def clear(self) -> None:
        self._jobs.clear()
