"""Requests in Redis: a record per request and an event stream per request.

The record (a hash) holds the status, the owner and the final result, for status reads.
The event stream carries what the caller waits for: chunks as they come, then exactly one
terminal event ("final" or "error"). Writing the terminal event and the final status is
one Lua script, so a redelivered task can never publish a second answer.

Event types: "decision" (the routing decision), "chunk" ({"text"}), then "final" or "error".
A caller that goes away sets the request's cancel time (a few seconds ahead, so a reconnect
can resume); the worker checks it while streaming and stops once it has passed.

Keys: {prefix}req:{id} (hash), {prefix}events:{id} (stream) and {prefix}cancel:{id}, all
expiring after RESULT_TTL.
"""

from __future__ import annotations

import json
import time

import redis

from orchestrator.budgets import KEY_TTL as BUDGET_TTL
from orchestrator.budgets import Charge
from orchestrator.conversations import ConversationTurn

TERMINAL_EVENTS = ("final", "error")
STREAM_MAXLEN = 10_000

# KEYS: record, events, then the conversation's key when ARGV[7] > 0, then the budget's
# totals, held and until keys when ARGV[8] is '1'. ARGV: status, event type, payload json,
# ttl, now, maxlen, number of conversation messages, charge (1/0), request id, cost in
# micro-dollars, budget ttl, then the conversation's new messages.
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'completed' or status == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[3], 'finished_at', ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[2], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local next_key = 3
local messages = tonumber(ARGV[7])
if messages > 0 then
  for i = 12, 11 + messages do redis.call('RPUSH', KEYS[3], ARGV[i]) end
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
return 1
"""


class RequestStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl
        self._finish = client.register_script(_FINISH)

    def record_key(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def events_key(self, request_id: str) -> str:
        return f"{self.prefix}events:{request_id}"

    def create(self, request_id: str, owner: str, kind: str, end_user: str | None = None) -> None:
        key = self.record_key(request_id)
        record = {"status": "queued", "owner": owner, "kind": kind, "created_at": time.time()}
        if end_user:
            record["user"] = end_user
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.ttl)
        pipe.execute()

    def get(self, request_id: str) -> dict | None:
        record = self.redis.hgetall(self.record_key(request_id))
        if not record:
            return None
        for field in ("result", "chain"):
            if field in record:
                record[field] = json.loads(record[field])
        return record

    def status(self, request_id: str) -> str | None:
        return self.redis.hget(self.record_key(request_id), "status")

    def mark_running(self, request_id: str) -> None:
        self.redis.hset(self.record_key(request_id), mapping={"status": "running", "started_at": time.time()})

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
        args = [
            status, event, json.dumps(payload), self.ttl, time.time(), STREAM_MAXLEN, len(messages),
            int(charge is not None), charge.request_id if charge else "", charge.micro if charge else 0, BUDGET_TTL,
            *messages,
        ]
        return bool(self._finish(keys=keys, args=args))

    def publish(self, request_id: str, event: str, data: dict) -> str:
        """Append a non-terminal event (the routing decision, a chunk) to the request's stream."""
        key = self.events_key(request_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(key, {"type": event, "data": json.dumps(data)}, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.expire(key, self.ttl)
        return pipe.execute()[0]

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
            for last_id, event, data in self.read(request_id, last_id, remaining):
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
