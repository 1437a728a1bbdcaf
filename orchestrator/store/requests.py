"""Requests in Redis: a record per request and an event stream per request.

The record (a hash) holds the status, the owner and the final result, for status reads.
The event stream carries what the caller waits for: chunks as they come, then exactly one
terminal event ("final" or "error"), which only the ledger (orchestrator/store/ledger.py)
writes. Event types: "decision" (the routing decision), "chunk" ({"text", "model" answering}), then "final" or
"error". A caller that goes away sets the request's cancel time (a few seconds ahead, so a
reconnect can resume); the worker checks it while streaming and stops once it has passed.

Keys (orchestrator/store/keyspace.py): req:{id}, events:{id}, cancel:{id}, all expiring
after RESULT_TTL; user-requests:{user}, the owner's newest USER_INDEX_SIZE chat requests (not
batch items: their batch lists them), for the dashboard's recent requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import NamedTuple

import redis

from orchestrator.core.embedding import EMBEDDING_KIND
from orchestrator.core.job import ChatResult, Status
from orchestrator.store.connection import RoundTrip
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

TERMINAL_EVENTS = ("final", "error")
STREAM_MAXLEN = 10_000
USER_INDEX_SIZE = 200


class RequestStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ttl = ttl
        self._start = Lua(client, "start")

    def record_key(self, request_id: str) -> str:
        return self.keyspace.record(request_id)

    def events_key(self, request_id: str) -> str:
        return self.keyspace.events(request_id)

    def create(
        self, request_id: str, owner: str, kind: str, end_user: str | None = None,
        extra: dict | None = None, pipe=None,
    ) -> None:
        """Record a queued request; `extra` fields are stored with it (a batch item's index
        and metadata). With `pipe`, the commands join that pipeline and the caller runs it."""
        key = self.record_key(request_id)
        record = {"status": Status.QUEUED.value, "owner": owner, "kind": kind, "created_at": time.time(), **(extra or {})}
        if end_user:
            record["user"] = end_user
        own = pipe is None
        pipe = self.redis.pipeline(transaction=False) if own else pipe
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.ttl)
        if kind != "batch":
            index = self.keyspace.user_requests(owner)
            pipe.zadd(index, {request_id: record["created_at"]})
            pipe.zremrangebyrank(index, 0, -USER_INDEX_SIZE - 1)
            pipe.expire(index, self.ttl)
        if own:
            pipe.execute()

    def get(self, request_id: str) -> dict | None:
        record = self.redis.hgetall(self.record_key(request_id))
        if not record:
            return None
        for field in ("result", "chain"):
            if field in record:
                record[field] = json.loads(record[field])
        return record

    def recent(self, owner: str, limit: int) -> list[dict]:
        """The owner's newest chat requests, newest first: status, model, and the cost routing
        estimated beside the cost billed (one round trip after the index's)."""
        ids = self.redis.zrevrange(self.keyspace.user_requests(owner), 0, limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for request_id in ids:
            pipe.hmget(self.record_key(request_id), "kind", "status", "created_at", "finished_at", "result")
        return [_summary(request_id, *fields) for request_id, fields in zip(ids, pipe.execute(), strict=True)
                if fields[1] is not None]

    def status_in(self, trip: RoundTrip, request_id: str) -> Callable[[], str | None]:
        key = self.record_key(request_id)
        return trip.command(lambda pipe: pipe.hget(key, "status"), lambda replies: replies[0])

    def start_in(self, trip: RoundTrip, request_id: str) -> Callable[[], str | None]:
        """In the caller's round trip, mark a request running unless it has ended; its
        status before (a terminal one for a task delivered again, None for a lost record)."""
        return trip.script(self._start, [self.record_key(request_id)], lambda status: status, now=time.time())

    def save_chain(self, request_id: str, chain: dict) -> None:
        """Keep the fallback chain's state (attempts, errors, timings) with the request."""
        self.redis.hset(self.record_key(request_id), "chain", json.dumps(chain))

    def publish_chunk(self, request_id: str, data: dict) -> None:
        """A piece of a streamed answer: one XADD. The stream was made, with its expiry, by the
        routing decision published before any chunk (execution/admission.py)."""
        self.redis.xadd(self.events_key(request_id), {"type": "chunk", "data": json.dumps(data)},
                        maxlen=STREAM_MAXLEN, approximate=True)

    def publish_in(self, trip: RoundTrip, request_id: str, event: str, data: dict) -> Callable[[], str]:
        """Append a non-terminal event (the routing decision) to the request's stream, in the
        caller's round trip; the event's entry id."""
        key, fields = self.events_key(request_id), {"type": event, "data": json.dumps(data)}

        def queue(pipe) -> None:
            pipe.xadd(key, fields, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(key, self.ttl)

        return trip.command(queue, lambda replies: replies[0])

    def read(self, request_id: str, after: str, block: float) -> list[tuple[str, str, dict]]:
        """The events after entry id `after`, as (id, type, data); waits up to `block`
        seconds for the first one and returns [] when none came."""
        reply = self.redis.xread({self.events_key(request_id): after}, block=max(1, int(block * 1000)), count=100)
        return [
            (entry_id, fields["type"], json.loads(fields["data"]))
            for _, entries in reply or ()
            for entry_id, fields in entries
        ]

    def wait_terminal(self, request_id: str, timeout: float) -> tuple[str, dict] | None:
        """Block until the request's terminal event arrives; None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last_id = "0-0"
        while (remaining := deadline - time.monotonic()) > 0:
            for entry_id, event, data in self.read(request_id, last_id, remaining):
                last_id = entry_id
                if event in TERMINAL_EVENTS:
                    return event, data
        return None

    def drop_events(self, request_id: str) -> None:
        """Delete the request's event stream once its caller has read the end (an embedding's
        vectors, which nobody reads twice, would otherwise stay until RESULT_TTL)."""
        self.redis.delete(self.events_key(request_id))

    def cancel(self, request_id: str, grace: float) -> None:
        """Ask the worker to stop in `grace` seconds: the caller went away, and has that
        long to come back (resume) before the work is dropped."""
        self.redis.set(self.cancel_key(request_id), time.time() + grace, ex=self.ttl)

    def resume(self, request_id: str) -> None:
        """A caller is reading again: the request goes on."""
        self.redis.delete(self.cancel_key(request_id))

    def cancelled(self, request_id: str) -> bool:
        when = self.redis.get(self.cancel_key(request_id))
        return when is not None and time.time() >= float(when)

    def cancel_key(self, request_id: str) -> str:
        return self.keyspace.cancel(request_id)


def _summary(request_id: str, kind: str | None, status: str, created_at: str, finished_at: str | None,
             result: str | None) -> dict:
    data = json.loads(result) if result else {}
    answered = _answered(kind, data) if data and status == Status.COMPLETED else _Answered()
    return {
        "request_id": request_id,
        "status": status,
        "created_at": float(created_at),
        "finished_at": float(finished_at) if finished_at else None,
        "model": answered.model,
        "complexity": answered.complexity,
        "estimated_cost": answered.estimated_cost,
        "cost": answered.cost,
        "error": data.get("code") if status != Status.COMPLETED else None,
    }


class _Answered(NamedTuple):
    model: str | None = None
    cost: float | None = None
    complexity: str | None = None
    estimated_cost: float | None = None  # the routing decision's


def _answered(kind: str | None, data: dict) -> _Answered:
    """What a completed request's stored result says of its model, cost and routing."""
    if kind == EMBEDDING_KIND:  # the result less its vectors (orchestrator/core/embedding.py)
        return _Answered(data["model_used"], data["cost"], EMBEDDING_KIND)
    answer = ChatResult.from_json(data)
    decision = answer.routing_decision
    return _Answered(answer.model_used, answer.response.cost, decision.complexity, decision.estimated_cost)
