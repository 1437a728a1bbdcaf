"""Economy batch items on their way through a provider's batch API, and those provider batches.

An economy item (a batch item with `ChatJob.economy`) is routed and reserved by a worker like
any item, then parked here, waiting for the fleet's economy pass (orchestrator/execution/
economy.py) to submit it, with the others routed to the same model, as one provider batch.
The item's record says where it stands (`economy`: pending, submitting, submitted, standard
once it went back to the standard path; `economy_model`, `economy_upstream`, `economy_since`),
which the batch's status shows; how it ends is written by the ledger, as for any item.

A submission is recorded before its provider is called (`begin`: its items leave the pending
set, in one script, waited for on the replicas), and settled after: `accepted` (it becomes the
provider batch's record) or `release` (its items wait again). Both, and `claim` (a pass taking
over a submission another pass left), act only for the pass that owns the submission, so that
two passes never both settle one.

Keys (orchestrator/store/keyspace.py): economy-pending:{model}, submission:{id},
submission:{id}:items, submissions-open, upstream:{id}, upstream:{id}:items, upstreams-open,
batch:{batch_id}:upstreams, economy-lock; the upstream and batch keys expire RESULT_TTL after
they were written, the others last until their items move on.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import redis

from orchestrator.core.job import batch_of
from orchestrator.store.connection import NO_REPLICAS, Replicas
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

# an economy item's `economy` field
PENDING, SUBMITTING, SUBMITTED, STANDARD = "pending", "submitting", "submitted", "standard"


@dataclass(frozen=True)
class ParkedItem:
    """An economy item as the pass reads it from its record."""

    request_id: str
    status: str | None  # None: the record expired
    payload: dict | None  # its job
    chain: dict | None
    batch_cancelled: bool


@dataclass(frozen=True)
class Submission:
    """Items on their way to their provider as one batch, from before the call to its record."""

    id: str  # the provider batch is tagged with it (orchestrator/providers/batch_api.py)
    provider: str
    model: str
    owner: str  # the pass that may settle it
    at: float  # when it was recorded, before the provider was called
    request_ids: list[str]


class ProviderBatches:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int, replicas: Replicas = NO_REPLICAS):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ttl, self.replicas = ttl, replicas
        self._begin = Lua(client, "submission_begin")
        self._claim = Lua(client, "submission_claim")
        self._accepted = Lua(client, "submission_accepted")
        self._release = Lua(client, "submission_release")

    def lock(self, seconds: float) -> redis.lock.Lock:
        """One economy pass at a time across the fleet; a pass that dies frees it after `seconds`."""
        return self.redis.lock(self.keyspace.economy_lock, timeout=seconds, blocking=False)

    def park(self, request_id: str, model: str, chain: dict, now: float | None = None) -> None:
        """The item, routed to `model` with its reservation made, waits for the next submission."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keyspace.record(request_id), mapping={
            "chain": json.dumps(chain), "economy": PENDING, "economy_model": model, "economy_since": now})
        pipe.zadd(self.keyspace.economy_pending(model), {request_id: now})
        pipe.execute()

    def pending(self, models: list[str], limit: int) -> dict[str, list[str]]:
        """Up to `limit` waiting items of each model that has some, oldest first."""
        pipe = self.redis.pipeline(transaction=False)
        for model in models:
            pipe.zrange(self.keyspace.economy_pending(model), 0, limit - 1)
        return {model: ids for model, ids in zip(models, pipe.execute(), strict=True) if ids}

    def unpark(self, model: str, request_ids: list[str]) -> None:
        if request_ids:
            self.redis.zrem(self.keyspace.economy_pending(model), *request_ids)

    def items(self, request_ids: list[str]) -> list[ParkedItem]:
        """The items' records (status, job, chain) and whether their batch was cancelled, in two round trips."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hmget(self.keyspace.record(request_id), "status", "payload", "chain")
        records = pipe.execute()
        batches = sorted({batch_of(request_id) or "" for request_id in request_ids} - {""})
        for batch_id in batches:
            pipe.hexists(self.keyspace.batch(batch_id), "cancelled_at")
        cancelled = dict(zip(batches, pipe.execute(), strict=True))
        return [ParkedItem(request_id, status, payload and json.loads(payload), chain and json.loads(chain),
                           bool(cancelled.get(batch_of(request_id) or "")))
                for request_id, (status, payload, chain) in zip(request_ids, records, strict=True)]

    def begin(self, provider: str, model: str, request_ids: list[str], owner: str,
              now: float | None = None) -> Submission:
        """The pending items leave for a new submission, before its provider is called; on the
        replicas too (REDIS_WAIT_REPLICAS), so that a failover cannot forget it."""
        submission = Submission(f"sub_{uuid.uuid4().hex}", provider, model, owner,
                                time.time() if now is None else now, request_ids)
        keys = [self.keyspace.economy_pending(model), *self._keys(submission.id),
                *map(self.keyspace.record, request_ids)]
        self.replicas.script(self.redis, self._begin, keys, submission_id=submission.id, owner=owner,
                             provider=provider, model=model, now=submission.at, state=SUBMITTING,
                             request_ids=request_ids)
        return submission

    def left(self, owner: str, before: float) -> list[Submission]:
        """The submissions recorded before `before` by another pass than `owner`, not settled yet."""
        ids = self.redis.zrangebyscore(self.keyspace.submissions_open, "-inf", before)
        pipe = self.redis.pipeline(transaction=False)
        for submission_id in ids:
            pipe.hgetall(self.keyspace.submission(submission_id))
            pipe.lrange(self.keyspace.submission_items(submission_id), 0, -1)
        replies = pipe.execute()
        submissions = [Submission(submission_id, raw["provider"], raw["model"], raw["owner"], float(raw["at"]), items)
                       for submission_id, raw, items in zip(ids, replies[::2], replies[1::2], strict=True) if raw]
        return [submission for submission in submissions if submission.owner != owner]

    def claim(self, submission: Submission, owner: str) -> bool:
        """`owner`'s pass takes the submission over; False when another pass took it first."""
        return bool(self._claim([self.keyspace.submission(submission.id)], owner_was=submission.owner, owner=owner))

    def accepted(self, submission: Submission, owner: str, upstream_id: str, now: float | None = None) -> bool:
        """The provider has the submission as batch `upstream_id`: recorded, its items submitted;
        False (nothing written) when the submission is no longer `owner`'s."""
        batches = sorted({batch_of(request_id) or "" for request_id in submission.request_ids} - {""})
        keys = [*self._keys(submission.id), self.keyspace.upstream(upstream_id),
                self.keyspace.upstream_items(upstream_id), self.keyspace.upstreams_open,
                *map(self.keyspace.record, submission.request_ids), *map(self.keyspace.batch_upstreams, batches)]
        return bool(self._accepted(keys, submission_id=submission.id, owner=owner, upstream_id=upstream_id,
                                   now=time.time() if now is None else now, ttl=self.ttl, state=SUBMITTED,
                                   records=len(submission.request_ids)))

    def release(self, submission: Submission, owner: str, now: float | None = None) -> bool:
        """The provider does not have the submission: its items wait for the next submission
        again; False (nothing written) when the submission is no longer `owner`'s."""
        keys = [*self._keys(submission.id), self.keyspace.economy_pending(submission.model),
                *map(self.keyspace.record, submission.request_ids)]
        return bool(self._release(keys, submission_id=submission.id, owner=owner,
                                  now=time.time() if now is None else now, state=PENDING,
                                  request_ids=submission.request_ids))

    def _keys(self, submission_id: str) -> list[str]:
        return [self.keyspace.submission(submission_id), self.keyspace.submission_items(submission_id),
                self.keyspace.submissions_open]

    def open_upstreams(self) -> list[dict]:
        """The provider batches not collected yet, oldest first."""
        ids = self.redis.zrange(self.keyspace.upstreams_open, 0, -1)
        return [upstream for upstream in self._read(ids) if upstream is not None]

    def request_ids(self, upstream_id: str) -> list[str]:
        return self.redis.lrange(self.keyspace.upstream_items(upstream_id), 0, -1)

    def update(self, upstream_id: str, **fields) -> None:
        self.redis.hset(self.keyspace.upstream(upstream_id), mapping=fields)

    def collected(self, upstream_id: str, status: str, now: float | None = None) -> None:
        """Every item of the provider batch has ended, or gone back to the standard path."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keyspace.upstream(upstream_id), mapping={"status": status, "collected_at": now or time.time()})
        pipe.zrem(self.keyspace.upstreams_open, upstream_id)
        pipe.execute()

    def back_to_standard(self, request_ids: list[str], now: float | None = None) -> None:
        """The items go through the standard path (their provider batch failed or expired them)."""
        pipe = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            pipe.hset(self.keyspace.record(request_id), mapping={"economy": STANDARD, "economy_since": now or time.time()})
        pipe.execute()

    def of_batch(self, batch_id: str) -> list[dict]:
        """The provider batches a batch's items went to (for its status), oldest first."""
        upstreams = self._read(sorted(self.redis.smembers(self.keyspace.batch_upstreams(batch_id))))
        return sorted((u for u in upstreams if u is not None), key=lambda u: u["submitted_at"])

    def _read(self, ids: list[str]) -> list[dict | None]:
        pipe = self.redis.pipeline(transaction=False)
        for upstream_id in ids:
            pipe.hgetall(self.keyspace.upstream(upstream_id))
        return [_upstream(upstream_id, raw) for upstream_id, raw in zip(ids, pipe.execute(), strict=True)]


def _upstream(upstream_id: str, raw: dict) -> dict | None:
    if not raw:
        return None
    times = ("submitted_at", "cancel_sent_at", "ended_at", "collected_at")
    return {"id": upstream_id, "provider": raw["provider"], "model": raw["model"], "total": int(raw["total"]),
            "status": raw["status"], **{name: float(raw[name]) if raw.get(name) else None for name in times}}
