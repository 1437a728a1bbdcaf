"""Requests in Redis: a record per request and an event stream per request.

The record (a hash) holds the status, the owner and the final result, for status reads.
The event stream carries what the caller waits for: chunks as they come, then exactly one
terminal event ("final" or "error"). Writing the terminal event and the final status is
one Lua script, so a redelivered task can never publish a second answer.

Event types: "decision" (the routing decision), "chunk" ({"text"}), then "final" or "error".
A caller that goes away sets the request's cancel time (a few seconds ahead, so a reconnect
can resume); the worker checks it while streaming and stops once it has passed.

Batch items (orchestrator/store/batches.py) are requests too, with ids that name their batch. An
item's transitions (queued -> running -> completed, failed or cancelled) are Lua scripts
here that also move the batch's counters ({prefix}batch:{id}: running, completed, failed,
cancelled, cost_micro, started_at, finished_at) in the same step as the item's record, so
the counters stay exact however often an item's task is delivered. An item publishes no
event stream: its result is read from its record.

Keys: {prefix}req:{id} (hash), {prefix}events:{id} (stream) and {prefix}cancel:{id}, all
expiring after RESULT_TTL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis

from orchestrator.store.batches import batch_key, batch_of
from orchestrator.store.budgets import KEY_TTL as BUDGET_TTL
from orchestrator.store.budgets import Charge
from orchestrator.store.connection import RoundTrip, one_trip
from orchestrator.store.conversations import ConversationTurn

TERMINAL_EVENTS = ("final", "error")
STREAM_MAXLEN = 10_000

# A batch's counters after one or more of its items ended: finished when all have.
_BATCH_SETTLE = """
local function batch_settle(batch, now)
  local c = redis.call('HMGET', batch, 'total', 'completed', 'failed', 'cancelled')
  local done = (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0) + (tonumber(c[4]) or 0)
  if done >= (tonumber(c[1]) or 0) then redis.call('HSETNX', batch, 'finished_at', now) end
end
"""

# KEYS: record, events, then the conversation's key when ARGV[7] > 0, then the budget's
# totals, held and until keys when ARGV[8] is '1', then the batch's key when ARGV[12] is
# '1'. ARGV: status, event type, payload json, ttl, now, maxlen, number of conversation
# messages, charge (1/0), request id, cost in micro-dollars, budget ttl, batch item (1/0),
# then the conversation's new messages.
_FINISH = _BATCH_SETTLE + """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
local item = ARGV[12] == '1'
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[3], 'finished_at', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if not item then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[2], 'data', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
local next_key = 3
local messages = tonumber(ARGV[7])
if messages > 0 then
  for i = 13, 12 + messages do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  next_key = 4
end
if ARGV[8] == '1' then
  local totals, held, until_ = KEYS[next_key], KEYS[next_key + 1], KEYS[next_key + 2]
  redis.call('HDEL', held, ARGV[9])
  redis.call('ZREM', until_, ARGV[9])
  redis.call('HINCRBY', totals, 'spent_micro', ARGV[10])
  redis.call('EXPIRE', totals, ARGV[11])
end
local batch = KEYS[#KEYS]
if item and redis.call('EXISTS', batch) == 1 then
  if status == 'running' then redis.call('HINCRBY', batch, 'running', -1) end
  redis.call('HINCRBY', batch, ARGV[1], 1)
  if ARGV[8] == '1' then
    redis.call('HINCRBY', batch, 'cost_micro', ARGV[10])
    redis.call('HSET', KEYS[1], 'cost_micro', ARGV[10])  -- what was billed, to the micro-dollar
  end
  batch_settle(batch, ARGV[5])
  redis.call('EXPIRE', batch, ARGV[4])
end
return 1
"""

# KEYS: an item's record, its batch. ARGV: now, the result of an item cancelled before it
# started, '1' when a started item has made no provider call yet (it may still be cancelled).
# Returns run, done (already ended), missing (expired), cancelled (ended here: the batch
# was cancelled before the item started) or cancel (the worker ends it, settling its budget).
_BEGIN = _BATCH_SETTLE + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 'done' end
local cancelled = redis.call('HEXISTS', KEYS[2], 'cancelled_at') == 1
if status == 'queued' then
  if cancelled then
    redis.call('HSET', KEYS[1], 'status', 'cancelled', 'result', ARGV[2], 'finished_at', ARGV[1])
    redis.call('HINCRBY', KEYS[2], 'cancelled', 1)
    batch_settle(KEYS[2], ARGV[1])
    return 'cancelled'
  end
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HINCRBY', KEYS[2], 'running', 1)
    redis.call('HSETNX', KEYS[2], 'started_at', ARGV[1])
  end
  return 'run'
end
if cancelled and ARGV[3] == '1' then return 'cancel' end
return 'run'
"""

# KEYS: a chat request's record. ARGV: now. Marks it running unless it has ended (a task
# delivered again) or its record is gone; returns its status before.
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'completed' and status ~= 'failed' and status ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
end
return status
"""

# KEYS: a batch, then records of its items. ARGV: now, the cancelled items' result. Ends
# every item still queued as cancelled; returns how many.
_CANCEL_QUEUED = _BATCH_SETTLE + """
local n = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == 'queued' then
    redis.call('HSET', KEYS[i], 'status', 'cancelled', 'result', ARGV[2], 'finished_at', ARGV[1])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], 'cancelled', n)
  batch_settle(KEYS[1], ARGV[1])
end
return n
"""


class RequestStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl
        self._finish = client.register_script(_FINISH)
        self._begin = client.register_script(_BEGIN)
        self._start = client.register_script(_START)
        self._cancel_queued = client.register_script(_CANCEL_QUEUED)

    def record_key(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def events_key(self, request_id: str) -> str:
        return f"{self.prefix}events:{request_id}"

    def create(
        self, request_id: str, owner: str, kind: str, end_user: str | None = None,
        extra: dict | None = None, pipe=None,
    ) -> None:
        """Record a queued request; `extra` fields are stored with it (a batch item's index
        and metadata). With `pipe`, the commands join that pipeline and the caller runs it."""
        key = self.record_key(request_id)
        record = {"status": "queued", "owner": owner, "kind": kind, "created_at": time.time(), **(extra or {})}
        if end_user:
            record["user"] = end_user
        own = pipe is None
        pipe = self.redis.pipeline(transaction=False) if own else pipe
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.ttl)
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

    def status_in(self, trip: RoundTrip, request_id: str) -> Callable[[], str | None]:
        key = self.record_key(request_id)
        return trip.command(lambda pipe: pipe.hget(key, "status"), lambda replies: replies[0])

    def start_in(self, trip: RoundTrip, request_id: str) -> Callable[[], str | None]:
        """In the caller's round trip, mark a chat request running unless it has ended; its
        status before (a terminal one for a task delivered again, None for a lost record)."""
        return trip.script(self._start, [self.record_key(request_id)], [time.time()], lambda status: status)

    def save_chain(self, request_id: str, chain: dict) -> None:
        """Keep the fallback chain's state (attempts, errors, timings) with the request."""
        self.redis.hset(self.record_key(request_id), "chain", json.dumps(chain))

    def complete(
        self, request_id: str, result: dict, turn: ConversationTurn | None = None, charge: Charge | None = None
    ) -> bool:
        """Publish the answer, extend its conversation with the turn and settle its cost, in
        one step; False when the request had already finished (a redelivery): nothing then
        is published, appended or billed twice."""
        return self._terminal(request_id, "completed", "final", result, turn, charge)

    def fail(self, request_id: str, error: dict, charge: Charge | None = None) -> bool:
        """Publish the error (an `error` dict with `status`, `code`, `message`, `details`)
        and settle the request (its reservation released, only what was generated paid)."""
        return self._terminal(request_id, "failed", "error", error, None, charge)

    def cancel_item(self, request_id: str, error: dict, charge: Charge | None = None) -> bool:
        """End a batch item that started but had called no provider when its batch was
        cancelled; its reservation is released."""
        return self._terminal(request_id, "cancelled", "error", error, None, charge)

    def begin_item(self, request_id: str, cancelled_result: dict, may_cancel: bool) -> str:
        """Start a batch item (or find it started, ended or cancelled), moving its batch's
        counters with it: run, done, missing, cancelled or cancel (see _BEGIN)."""
        return self._begin(
            keys=[self.record_key(request_id), batch_key(self.prefix, batch_of(request_id))],
            args=[time.time(), json.dumps(cancelled_result), int(may_cancel)],
        )

    def cancel_queued(self, batch_id: str, request_ids: list[str], result: dict) -> int:
        """End as cancelled those of `request_ids` (items of `batch_id`) not started yet."""
        keys = [batch_key(self.prefix, batch_id), *map(self.record_key, request_ids)]
        return self._cancel_queued(keys=keys, args=[time.time(), json.dumps(result)])

    def _terminal(
        self, request_id: str, status: str, event: str, payload: dict,
        turn: ConversationTurn | None, charge: Charge | None,
    ) -> bool:
        keys = [self.record_key(request_id), self.events_key(request_id)]
        messages = [json.dumps(m) for m in turn.messages] if turn else []
        if turn:
            keys.append(turn.key)
        if charge:
            keys.extend(charge.keys)
        batch_id = batch_of(request_id)
        if batch_id:
            keys.append(batch_key(self.prefix, batch_id))
        args = [
            status, event, json.dumps(payload), self.ttl, time.time(), STREAM_MAXLEN, len(messages),
            int(charge is not None), charge.request_id if charge else "", charge.micro if charge else 0, BUDGET_TTL,
            int(batch_id is not None), *messages,
        ]
        return bool(self._finish(keys=keys, args=args))

    def publish(self, request_id: str, event: str, data: dict) -> str:
        """Append a non-terminal event (the routing decision, a chunk) to the request's stream."""
        return one_trip(self.redis, lambda trip: self.publish_in(trip, request_id, event, data))

    def publish_in(self, trip: RoundTrip, request_id: str, event: str, data: dict) -> Callable[[], str]:
        """`publish`, in the caller's round trip; the event's entry id."""
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
        return f"{self.prefix}cancel:{request_id}"
