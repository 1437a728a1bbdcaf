"""The ledger: the only writer of how a request ends, once.

Ending a request is one Lua script (lua/finish.lua): it checks the record is not terminal,
sets the status and result, appends the terminal event (not for a batch item, whose result
is read from its record), appends the turn to the conversation, settles the budget (the
reservation released, the real cost spent) and moves the batch's counters. A second ending
of the same request is refused, so a redelivered task can never answer, append or bill
twice. With replicas (REDIS_WAIT_REPLICAS), the script is followed by a WAIT for them
(orchestrator/store/connection.py, `Replicas`): a request's end, and its billing, is on a
replica before the worker acknowledges the task, so a failover cannot lose it; if the master
is lost mid-write, the caller writes again on the next one, and once only.

A batch item's other transitions are here too, with its batch's counters in the same step:
starting (lua/begin_item.lua) and being cancelled before it started (lua/cancel_queued.lua).
The batch hash's counters: running, completed, failed, cancelled, cost_micro, started_at,
finished_at (orchestrator/store/batches.py reads them).
"""

from __future__ import annotations

import json
import time

import redis

from orchestrator.core.job import Status, batch_of
from orchestrator.store.budgets import KEY_TTL as BUDGET_TTL
from orchestrator.store.budgets import Charge
from orchestrator.store.connection import NO_REPLICAS, Replicas
from orchestrator.store.conversations import ConversationTurn
from orchestrator.store.keyspace import Keys
from orchestrator.store.requests import STREAM_MAXLEN
from orchestrator.store.scripts import Lua


class Ledger:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int, replicas: Replicas = NO_REPLICAS):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.ttl, self.replicas = ttl, replicas
        self._finish = Lua(client, "finish")
        self._begin = Lua(client, "begin_item")
        self._cancel_queued = Lua(client, "cancel_queued")

    def complete(
        self, request_id: str, result: dict, turn: ConversationTurn | None = None, charge: Charge | None = None,
        stored: dict | None = None,
    ) -> bool:
        """Publish the answer, extend its conversation with the turn and settle its cost, in
        one step; False when the request had already finished (a redelivery): nothing then
        is published, appended or billed twice. The record keeps `stored` instead of the
        result when given (an embedding's result less its vectors, which only its caller reads)."""
        return self._end(request_id, Status.COMPLETED, "final", result, turn, charge, stored)

    def fail(self, request_id: str, error: dict, charge: Charge | None = None) -> bool:
        """Publish the error (an `error` dict with `status`, `code`, `message`, `details`)
        and settle the request (its reservation released, only what was generated paid)."""
        return self._end(request_id, Status.FAILED, "error", error, None, charge)

    def cancel_item(self, request_id: str, error: dict, charge: Charge | None = None) -> bool:
        """End a batch item that started but had called no provider when its batch was
        cancelled; its reservation is released."""
        return self._end(request_id, Status.CANCELLED, "error", error, None, charge)

    def begin_item(self, request_id: str, cancelled_result: dict, may_cancel: bool) -> str:
        """Start a batch item (or find it started, ended or cancelled), moving its batch's
        counters with it: run, done, missing, cancelled or cancel (lua/begin_item.lua)."""
        batch_id = batch_of(request_id)
        assert batch_id is not None, f"{request_id} is not a batch item"
        return self._begin([self.keyspace.record(request_id), self.keyspace.batch(batch_id)], now=time.time(),
                           cancelled_result=json.dumps(cancelled_result), may_cancel=int(may_cancel))

    def cancel_queued(self, batch_id: str, request_ids: list[str], result: dict) -> int:
        """End as cancelled those of `request_ids` (items of `batch_id`) not started yet."""
        keys = [self.keyspace.batch(batch_id), *map(self.keyspace.record, request_ids)]
        return self._cancel_queued(keys, now=time.time(), cancelled_result=json.dumps(result))

    def _end(
        self, request_id: str, status: Status, event: str, payload: dict,
        turn: ConversationTurn | None, charge: Charge | None, stored: dict | None = None,
    ) -> bool:
        keys = [self.keyspace.record(request_id), self.keyspace.events(request_id)]
        messages = [json.dumps(m) for m in turn.messages] if turn else []
        if turn:
            keys.append(turn.key)
        if charge:
            keys.extend(charge.keys)
        batch_id = batch_of(request_id)
        if batch_id:
            keys.append(self.keyspace.batch(batch_id))
        return bool(self.replicas.script(
            self.redis, self._finish, keys, status=status.value, event=event, result=json.dumps(payload), ttl=self.ttl, now=time.time(),
            maxlen=STREAM_MAXLEN, messages=len(messages), charge=int(charge is not None),
            request_id=charge.request_id if charge else "", cost_micro=charge.micro if charge else 0,
            budget_ttl=BUDGET_TTL, item=int(batch_id is not None), stored=json.dumps(stored) if stored else "",
            turn=messages,
        ))
