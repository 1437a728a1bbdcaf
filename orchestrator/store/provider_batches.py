"""Economy batch items on their way through a provider's batch API, and those provider batches.

An economy item (a batch item with `ChatJob.economy`) is routed and reserved by a worker like
any item, then parked here, waiting for the fleet's economy pass (orchestrator/execution/
economy.py) to submit it, with the others routed to the same model, as one provider batch.
The item's record says where it stands (`economy`: pending, submitted, standard once it went
back to the standard path; `economy_model`, `economy_upstream`, `economy_since`), which the
batch's status shows; how it ends is written by the ledger, as for any item.

Keys (orchestrator/store/keyspace.py): economy-pending:{model}, upstream:{id},
upstream:{id}:items, upstreams-open, batch:{batch_id}:upstreams, economy-lock; all but the
pending sets and the lock expire RESULT_TTL after they were written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from orchestrator.core.job import batch_of
from orchestrator.store.keyspace import Keys

PENDING, SUBMITTED, STANDARD = "pending", "submitted", "standard"  # an economy item's `economy` field


@dataclass(frozen=True)
class ParkedItem:
    """An economy item as the pass reads it from its record."""

    request_id: str
    status: str | None  # None: the record expired
    payload: dict | None  # its job
    chain: dict | None
    batch_cancelled: bool


class ProviderBatches:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ttl = ttl

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

    def submitted(self, upstream_id: str, provider: str, model: str, request_ids: list[str],
                  now: float | None = None) -> None:
        """The items went to the provider as batch `upstream_id`: recorded, and no longer waiting."""
        now = time.time() if now is None else now
        key, items = self.keyspace.upstream(upstream_id), self.keyspace.upstream_items(upstream_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"provider": provider, "model": model, "total": len(request_ids),
                                "status": "submitted", "submitted_at": now})
        pipe.rpush(items, *request_ids)
        pipe.zadd(self.keyspace.upstreams_open, {upstream_id: now})
        pipe.zrem(self.keyspace.economy_pending(model), *request_ids)
        for request_id in request_ids:
            pipe.hset(self.keyspace.record(request_id),
                      mapping={"economy": SUBMITTED, "economy_upstream": upstream_id, "economy_since": now})
        for batch_id in {batch_of(request_id) for request_id in request_ids} - {None}:
            pipe.sadd(self.keyspace.batch_upstreams(batch_id), upstream_id)
            pipe.expire(self.keyspace.batch_upstreams(batch_id), self.ttl)
        for name in (key, items):
            pipe.expire(name, self.ttl)
        pipe.execute()

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
