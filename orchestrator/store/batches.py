"""Batches: many chat requests submitted at once, each run as its own request.

A batch is a hash of its owner, priority, size, times and counters; each of its items is a
request record (orchestrator/store/requests.py) whose id names the batch and the item's
index (`bat_<hex>-<index>`), run by the same `execute_chat` task as an interactive request,
on the `batch` queue. The item's transitions and the batch's counters move together in
the ledger's Lua (orchestrator/store/ledger.py), so the counters stay exact under
redelivery; this module writes the batch when it is submitted, raises its cancel flag, and
reads it back.

Keys (orchestrator/store/keyspace.py): batch:{id} (expiring RESULT_TTL after the batch's last
item ended), batch:{id}:lost-seen, batches-open (the batches not known to have ended, for
/health and the lost-item sweep; a batch leaves it when a look finds it ended, or RESULT_TTL
after its creation), and the items' records req:{item id} (with the item's job, index and
metadata); user-batches:{user}, the user's batches by creation time (the dashboard lists them).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import redis

from orchestrator.config import Settings
from orchestrator.core.job import ChatJob, ChatResult, Failure, Status, item_id, job_from_body
from orchestrator.store.keyspace import Keys
from orchestrator.store.ledger import Ledger
from orchestrator.store.requests import RequestStore

MICRO = 1_000_000
ECONOMY_FIELDS = ("economy", "economy_model", "economy_upstream", "economy_since")  # provider_batches.py writes them
ITEM_FIELDS = ("message", "task", "strategy", "model", "max_tokens", "system_prompt", "temperature")
WRITE_CHUNK = 2_000  # items per pipeline round trip
CANCEL_CHUNK = 1_000  # items per cancelling script run (each holds Redis a few milliseconds)

STANDARD, ECONOMY = "standard", "economy"  # a batch's mode
MODES = (STANDARD, ECONOMY)
CANCELLED = {"status": 499, "code": "cancelled", "message": "The batch was cancelled before this item started.",
             "details": {"attempts": []}}


def item_job(item: dict, owner: str, settings: Settings, batch_id: str, priority: int,
             end_user: str | None = None, economy: str | None = None) -> ChatJob:
    """The job of one item. Its time budget (REQUEST_TIMEOUT) starts when a worker starts
    it, not when the batch is submitted: a large batch waits its turn. `economy`: see ChatJob."""
    body = {name: item.get(name) for name in ITEM_FIELDS}
    body["message"] = item.get("message") or item.get("task")
    body["user"] = end_user
    return dataclasses.replace(job_from_body(body, owner, settings), deadline=None, batch=batch_id, priority=priority,
                               economy=economy)


def batch_status(batch: dict, now: float | None = None) -> str:
    """queued, running, completed, partially_completed, failed or cancelled."""
    counts = batch["counts"]
    done = counts["completed"] + counts["failed"] + counts["cancelled"]
    if batch["timing"]["cancelled_at"] is not None:
        return "cancelled"
    if done < batch["total"]:
        return "running" if counts["running"] or done else "queued"
    if counts["completed"] == batch["total"]:
        return "completed"
    return "partially_completed" if counts["completed"] else "failed"


def _float(value) -> float | None:
    return float(value) if value not in (None, "") else None


def _economy(state: str | None, model: str | None, upstream: str | None, since: str | None) -> dict | None:
    """An economy item's way through its provider's batch API (orchestrator/store/provider_batches.py)."""
    if not state:
        return None
    return {"state": state, "model": model, "provider_batch": upstream or None, "since": _float(since)}


def _item_view(index: int, request_id: str, fields: list) -> dict:
    """One item as the API shows it: its answer, or its error, and what it cost (as billed:
    the items' costs add up to the batch's, and to what the budget spent, exactly)."""
    status, result, metadata, started_at, finished_at, cost_micro, *economy = fields
    view = {
        "index": index, "request_id": request_id, "status": status or "expired", "content": None, "model": None,
        "cost": 0.0, "usage": None, "finish_reason": None, "attempts": [], "error": None,
        "metadata": json.loads(metadata) if metadata else None,
        "started_at": _float(started_at), "finished_at": _float(finished_at), "economy": _economy(*economy),
    }
    if result and status == Status.COMPLETED:
        answer = ChatResult.from_json(json.loads(result))
        response = answer.response
        view.update(content=response.content, model=answer.model_used, cost=response.cost,
                    usage=response.usage.as_dict(), finish_reason=response.finish_reason,
                    attempts=[attempt.to_json() for attempt in answer.attempts])
    elif result:
        failure = Failure.from_json(json.loads(result))
        view.update(error={"status": failure.status, "code": failure.code, "message": failure.message},
                    attempts=failure.details.get("attempts") or [])
    if cost_micro:
        view["cost"] = int(cost_micro) / MICRO
    return view


class BatchStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int, requests: RequestStore, ledger: Ledger):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ledger = ledger
        self.ttl = ttl
        self.requests = requests

    def key(self, batch_id: str) -> str:
        return self.keyspace.batch(batch_id)

    @property
    def open_key(self) -> str:
        return self.keyspace.batches_open

    def create(self, batch_id: str, owner: str, priority: int, jobs: list[ChatJob], metadata: list,
               end_user: str | None = None, openai: dict | None = None) -> None:
        """Record the batch and every item as queued, a few thousand per round trip; the
        items must exist before their tasks are sent. `openai`: what the OpenAI door keeps
        with a batch it made (api/openai_batches.py: its input file, endpoint, metadata)."""
        mode = ECONOMY if jobs and jobs[0].economy else STANDARD
        key = self.key(batch_id)
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"owner": owner, "priority": priority, "total": len(jobs), "created_at": now, "mode": mode,
                                "running": 0, "completed": 0, "failed": 0, "cancelled": 0, "cost_micro": 0})
        if openai is not None:
            pipe.hset(key, "openai", json.dumps(openai))
        pipe.expire(key, self.ttl)
        pipe.zadd(self.open_key, {batch_id: now})
        pipe.zremrangebyscore(self.open_key, 0, now - self.ttl)  # older than any result kept: forgotten
        owned = self.keyspace.user_batches(owner)
        pipe.zadd(owned, {batch_id: now})
        pipe.zremrangebyscore(owned, 0, now - self.ttl)
        pipe.expire(owned, self.ttl)
        for index, (job, meta) in enumerate(zip(jobs, metadata, strict=True)):
            # The job stays with the item: its task can be sent again if the broker lost it.
            extra = {"batch": batch_id, "index": index, "payload": json.dumps(job.to_json())}
            if meta is not None:
                extra["metadata"] = json.dumps(meta)
            self.requests.create(item_id(batch_id, index), owner, "batch", end_user, extra=extra, pipe=pipe)
            if (index + 1) % WRITE_CHUNK == 0:
                pipe.execute()
        pipe.execute()

    def mark_sent(self, batch_id: str) -> None:
        """Every item's task is on the queue (only then may an item be found lost). With
        replicas, this write waits for them: replication keeps the master's order, so the
        batch's records and tasks, written before it, are on a replica too when the API
        answers 202."""
        self.ledger.replicas.write(self.redis, lambda pipe: pipe.hset(self.key(batch_id), "sent_at", time.time()))

    def may_sweep(self, every: float) -> bool:
        """At most one look for lost items every `every` seconds, across the fleet: two looks
        closer together could both miss an item a worker was taking and send it twice."""
        return bool(self.redis.set(self.keyspace.lost_sweep, 1, nx=True, px=int(every * 1000)))

    def open_ids(self) -> list[str]:
        """The batches not known to have ended."""
        return self.redis.zrange(self.open_key, 0, -1)

    def confirm_lost(self, batch_id: str, seen: set[int]) -> set[int]:
        """Of the items seen lost at this look, those seen lost at the previous look too; the
        others are remembered for the next. A message is out of both the queue and the unacked
        hash for an instant while a worker takes it (between its BRPOP and its unacked write),
        so only an item seen lost twice, one look interval apart, is really lost. Looks never
        overlap (may_sweep), so reading then writing is safe."""
        key = self.keyspace.batch_lost_seen(batch_id)
        confirmed = seen & {int(index) for index in self.redis.smembers(key)}
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if seen - confirmed:
            pipe.sadd(key, *(seen - confirmed))
            pipe.expire(key, self.ttl)
        pipe.execute()
        return confirmed

    def queued_jobs(self, batch_id: str, total: int) -> list[tuple[int, ChatJob]]:
        """(index, job) of the items not started yet."""
        pipe = self.redis.pipeline(transaction=False)
        for index in range(total):
            pipe.hmget(self.requests.record_key(item_id(batch_id, index)), "status", "payload")
        return [(index, ChatJob.from_json(json.loads(payload))) for index, (status, payload) in enumerate(pipe.execute())
                if status == Status.QUEUED and payload]

    def get(self, batch_id: str, now: float | None = None) -> dict | None:
        """The batch's summary: status, counts per state, progress, cost and timing. A batch
        found ended leaves the index of unfinished ones."""
        batch = self._summary(batch_id, self.redis.hgetall(self.key(batch_id)), now)
        if batch is not None and batch["status"] not in ("queued", "running"):
            self.redis.zrem(self.open_key, batch_id)
        return batch

    def of_owner(self, owner: str, limit: int) -> list[dict]:
        """The owner's newest batches' summaries, newest first."""
        return self._summaries(self.redis.zrevrange(self.keyspace.user_batches(owner), 0, limit - 1))

    def open_batches(self, limit: int) -> list[dict]:
        """Every user's batches not found ended yet, newest first (the admin's view)."""
        return self._summaries(self.redis.zrevrange(self.open_key, 0, limit - 1))

    def _summaries(self, ids: list[str]) -> list[dict]:
        return [summary for summary in self._read(ids).values() if summary is not None]

    def _read(self, ids: list[str]) -> dict[str, dict | None]:
        """Each batch's summary (None once expired), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for batch_id in ids:
            pipe.hgetall(self.key(batch_id))
        return {batch_id: self._summary(batch_id, raw) for batch_id, raw in zip(ids, pipe.execute(), strict=True)}

    def unfinished(self) -> dict[str, int]:
        """How many batches are queued and how many running, across all users; the ones
        found ended (or expired) leave the index."""
        summaries = self._read(self.redis.zrange(self.open_key, 0, -1))
        statuses = {batch_id: summary and summary["status"] for batch_id, summary in summaries.items()}
        ended = [batch_id for batch_id, status in statuses.items() if status not in ("queued", "running")]
        if ended:
            self.redis.zrem(self.open_key, *ended)
        return {state: sum(1 for status in statuses.values() if status == state) for state in ("queued", "running")}

    @staticmethod
    def _summary(batch_id: str, raw: dict, now: float | None = None) -> dict | None:
        if not raw or "total" not in raw:
            return None
        now = now or time.time()
        total = int(raw["total"])
        counts = {state.value: int(raw.get(state, 0)) for state in Status if state is not Status.QUEUED}
        counts = {Status.QUEUED.value: max(0, total - sum(counts.values())), **counts}
        done = counts["completed"] + counts["failed"] + counts["cancelled"]
        created, finished = float(raw["created_at"]), _float(raw.get("finished_at"))
        batch = {
            "batch_id": batch_id,
            "owner": raw["owner"],
            "sent": "sent_at" in raw,
            "priority": int(raw["priority"]),
            "mode": raw.get("mode", STANDARD),
            "openai": json.loads(raw["openai"]) if "openai" in raw else None,
            "total": total,
            "counts": counts,
            "progress": round(done / total, 4) if total else 1.0,
            "cost": round(int(raw.get("cost_micro", 0)) / MICRO, 6),
            "timing": {
                "created_at": created,
                "started_at": _float(raw.get("started_at")),
                "finished_at": finished,
                "cancelled_at": _float(raw.get("cancelled_at")),
                "elapsed": round((finished or now) - created, 3),
            },
        }
        batch["status"] = batch_status(batch)
        return batch

    def results(self, batch_id: str, total: int, offset: int = 0, limit: int = 100) -> list[dict]:
        """Items offset..offset+limit-1 in submission order (one round trip)."""
        indexes = range(max(0, offset), min(total, offset + limit))
        pipe = self.redis.pipeline(transaction=False)
        for index in indexes:
            pipe.hmget(self.requests.record_key(item_id(batch_id, index)), "status", "result", "metadata",
                       "started_at", "finished_at", "cost_micro", *ECONOMY_FIELDS)
        return [_item_view(index, item_id(batch_id, index), fields) for index, fields in zip(indexes, pipe.execute(), strict=True)]

    def iter_records(self, batch_id: str, total: int, page: int = 500) -> Iterator[tuple[str, dict | None, dict | None]]:
        """Each item's (status, result as the ledger wrote it, metadata), in submission order."""
        for offset in range(0, total, page):
            pipe = self.redis.pipeline(transaction=False)
            for index in range(offset, min(total, offset + page)):
                pipe.hmget(self.requests.record_key(item_id(batch_id, index)), "status", "result", "metadata")
            for status, result, metadata in pipe.execute():
                yield status, result and json.loads(result), metadata and json.loads(metadata)

    def iter_results(self, batch_id: str, total: int, page: int = 500) -> Iterator[dict]:
        for offset in range(0, total, page):
            yield from self.results(batch_id, total, offset, page)

    def cancel(self, batch_id: str, total: int) -> int:
        """Stop the batch: raise its cancel flag (a worker checks it before starting an
        item) and end every item not started yet as cancelled. Running items finish.
        Returns how many items this cancelled."""
        if not self.redis.hsetnx(self.key(batch_id), "cancelled_at", time.time()):
            return 0  # cancelled already
        cancelled = 0
        for start in range(0, total, CANCEL_CHUNK):
            ids = [item_id(batch_id, index) for index in range(start, min(total, start + CANCEL_CHUNK))]
            cancelled += self.ledger.cancel_queued(batch_id, ids, CANCELLED)
        return cancelled
