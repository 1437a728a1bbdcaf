"""Batch records and their counters (orchestrator/store/batches.py, request_store.py) on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator.core.decision import Decision
from orchestrator.core.job import Attempt, ChatJob, ChatResult, ModelResponse, batch_of, item_id, new_batch_id
from orchestrator.core.types import Usage
from orchestrator.store.batches import CANCELLED, BatchStore
from orchestrator.store.budgets import Budgets
from orchestrator.store.ledger import Ledger
from orchestrator.store.requests import RequestStore


@pytest.fixture
def stores():
    client = fakeredis.FakeRedis(decode_responses=True)
    ledger = Ledger(client, "t:", ttl=60)
    return ledger, BatchStore(client, "t:", 60, RequestStore(client, "t:", ttl=60), ledger), Budgets(client, "t:")


DECISION = Decision("p", "m", "", 0.0, 0.0, (), 0.5, "balanced", None, "", None)


def _result(content: str, cost: float) -> dict:
    response = ModelResponse(content=content, finish_reason="stop", usage=Usage(), model="m", provider="p",
                             provider_request_id=None, latency=0.1, cost=cost)
    return ChatResult("r", response, DECISION, (Attempt("m", "p", None, None, 0.1),)).to_json()


def _batch(batches: BatchStore, size: int) -> str:
    batch_id = new_batch_id()
    batches.create(batch_id, "alice", 5, [ChatJob(messages=())] * size, [{"n": i} for i in range(size)])
    return batch_id


def test_item_ids_name_their_batch():
    batch_id = new_batch_id()
    assert batch_of(item_id(batch_id, 42)) == batch_id
    assert batch_of("req_0123") is None


def test_counters_are_exact_under_redelivery(stores):
    ledger, batches, budgets = stores
    batch_id = _batch(batches, 2)
    first = item_id(batch_id, 0)
    assert batches.get(batch_id)["status"] == "queued"
    assert ledger.begin_item(first, CANCELLED, False) == "run"
    assert ledger.begin_item(first, CANCELLED, False) == "run"  # redelivered: counted once
    assert batches.get(batch_id)["counts"]["running"] == 1
    assert batches.get(batch_id)["status"] == "running"
    budgets.reserve("alice", 10, first, 0.5, 1e12)
    charge = budgets.charge("alice", first, 0.25)
    assert ledger.complete(first, _result("a", 0.25), charge=charge) is True
    assert ledger.complete(first, _result("b", 0.25), charge=charge) is False  # never twice
    batch = batches.get(batch_id)
    assert batch["counts"] == {"queued": 1, "running": 0, "completed": 1, "failed": 0, "cancelled": 0}
    assert batch["cost"] == 0.25 and budgets.usage("alice") == (0.25, 0.0)
    assert ledger.redis.exists(ledger.keyspace.events(first)) == 0  # items keep their result in the record

    second = item_id(batch_id, 1)
    ledger.begin_item(second, CANCELLED, False)
    ledger.fail(second, {"status": 502, "code": "server_error", "message": "x", "details": {"attempts": []}})
    batch = batches.get(batch_id)
    assert batch["status"] == "partially_completed" and batch["progress"] == 1.0
    assert batch["timing"]["finished_at"] is not None
    page = batches.results(batch_id, batch["total"], 0, 10)
    assert [(r["index"], r["status"], r["content"], r["metadata"]) for r in page] == [
        (0, "completed", "a", {"n": 0}), (1, "failed", None, {"n": 1})]
    assert page[1]["error"]["code"] == "server_error" and page[0]["cost"] == 0.25


def test_cancel_ends_queued_items_and_spares_running_ones(stores):
    ledger, batches, _ = stores
    batch_id = _batch(batches, 4)
    running = item_id(batch_id, 0)
    ledger.begin_item(running, CANCELLED, False)
    assert batches.cancel(batch_id, 4) == 3
    assert batches.cancel(batch_id, 4) == 0  # once
    batch = batches.get(batch_id)
    assert batch["status"] == "cancelled"
    assert batch["counts"] == {"queued": 0, "running": 1, "completed": 0, "failed": 0, "cancelled": 3}
    assert ledger.begin_item(item_id(batch_id, 1), CANCELLED, False) == "done"  # its task finds it ended
    assert ledger.begin_item(running, CANCELLED, False) == "run"  # a started item finishes
    assert ledger.begin_item(running, CANCELLED, True) == "cancel"  # unless it has called no provider yet
    ledger.complete(running, _result("done", 0.0))
    batch = batches.get(batch_id)
    assert batch["counts"]["completed"] == 1 and batch["counts"]["running"] == 0
    assert batch["timing"]["finished_at"] is not None


def test_an_item_whose_batch_was_cancelled_before_it_started_ends_cancelled(stores):
    ledger, batches, _ = stores
    batch_id = _batch(batches, 1)
    ledger.redis.hset(batches.key(batch_id), "cancelled_at", 1.0)  # the flag alone, before any sweep
    assert ledger.begin_item(item_id(batch_id, 0), CANCELLED, False) == "cancelled"
    assert batches.get(batch_id)["counts"]["cancelled"] == 1
