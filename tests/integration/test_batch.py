"""Batches through the API in-process and the session's real worker: submit, poll to the end,
results by page and as JSONL, validation, ownership, cancel, a restart of the API."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from api import create_app
from api.batch import _send
from orchestrator.core.job import new_batch_id
from orchestrator.runtime.services import Services
from orchestrator.store.batches import item_job
from tests.processes import wait_until

BATCH = "/api/v1/orchestrator/batch"
HEALTH = "/api/v1/orchestrator/health"
ENDED = ("completed", "partially_completed", "failed", "cancelled")
MICRO = 1_000_000


def status(client, batch_id: str, **page) -> dict:
    reply = client.get(f"{BATCH}/{batch_id}/status", query_string=page)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def wait_ended(client, batch_id: str, timeout: float = 30, interval: float = 0.1) -> dict:
    """The batch's status once every item has ended (polled, with a deadline)."""
    def ended():
        body = status(client, batch_id, limit=0)
        return body if body["status"] in ENDED and body["counts"]["running"] == 0 else None
    return wait_until(ended, timeout, f"batch {batch_id} to end", interval=interval)


def submit(client, items: list[dict], **extra) -> dict:
    reply = client.post(f"{BATCH}/submit", json={"requests": items, **extra})
    assert reply.status_code == 202, reply.get_json()
    return reply.get_json()


def sandbox_attempts(sandbox: str, model: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": model}, timeout=5).json()["attempts"]


def sent_text(attempt: dict) -> str:
    return attempt["messages"][-1]["content"]




def test_submit_poll_results_by_page_and_as_jsonl(client, app, fresh_sandbox, api_key):
    items = [{"task": f"Summarise note {i} in one line", "metadata": {"note": i}} for i in range(5)]
    items += [{"message": "Write a haiku about tides", "model": "gpt-4o-mini", "max_tokens": 50,
               "temperature": 0.2, "system_prompt": "Be brief", "strategy": "cost_optimal"},
              {"task": "Explain recursion", "strategy": "quality_optimal"}]
    submitted = submit(client, items, priority=7)
    assert submitted["status"] == "queued" and submitted["total"] == 7 and submitted["priority"] == 7
    batch_id = submitted["batch_id"]

    done = wait_ended(client, batch_id)
    assert done["status"] == "completed"
    assert done["counts"] == {"queued": 0, "running": 0, "completed": 7, "failed": 0, "cancelled": 0}
    assert done["progress"] == 1.0
    timing = done["timing"]
    assert timing["created_at"] <= timing["started_at"] <= timing["finished_at"]
    assert timing["elapsed"] == pytest.approx(timing["finished_at"] - timing["created_at"], abs=0.01)

    first = status(client, batch_id, offset=0, limit=3)
    assert [r["index"] for r in first["results"]] == [0, 1, 2] and first["next_offset"] == 3
    last = status(client, batch_id, offset=first["next_offset"] + 3, limit=3)
    assert [r["index"] for r in last["results"]] == [6] and last["next_offset"] is None
    results = status(client, batch_id, limit=100)["results"]
    for result in results:
        assert result["status"] == "completed" and result["content"] and result["error"] is None
        assert result["cost"] > 0 and result["attempts"][-1]["error"] is None and result["model"]
    assert [r["metadata"] for r in results[:5]] == [{"note": i} for i in range(5)]
    assert results[5]["model"] == "gpt-4o-mini" and results[5]["usage"]["output_tokens"] <= 50

    costs = sum(round(r["cost"] * MICRO) for r in results)
    assert round(done["cost"] * MICRO) == costs
    spent, reserved = usage(app, api_key)
    assert round(spent * MICRO) == costs and reserved == 0

    download = client.get(f"{BATCH}/{batch_id}/results.jsonl")
    assert download.status_code == 200 and download.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in download.data.decode().splitlines()]
    assert lines == results


def usage(app, api_key: str) -> tuple[float, float]:
    """The key's user's (spent, reserved) this month."""
    services = app.extensions["orchestrator"]
    return services.budgets.usage(services.users.authenticate(api_key).user.id)


def test_failed_items_make_a_batch_partially_completed_or_failed(client, fresh_sandbox):
    requests.post(f"{fresh_sandbox}/_sandbox/faults", timeout=5,
                  json={"model": "gpt-4o", "fault": "content_filter", "count": 2}).raise_for_status()
    mixed = submit(client, [{"task": "Say yes", "model": "gpt-4o-mini"}, {"task": "Say no", "model": "gpt-4o"}])
    done = wait_ended(client, mixed["batch_id"])
    assert done["status"] == "partially_completed"
    assert done["counts"]["completed"] == 1 and done["counts"]["failed"] == 1
    failed = status(client, mixed["batch_id"], offset=1, limit=1)["results"][0]
    assert failed["status"] == "failed" and failed["content"] is None, failed
    assert failed["error"] is not None, failed
    assert failed["error"]["code"] == "content_filtered" and failed["attempts"][0]["error"] == "content_filtered"

    all_failed = submit(client, [{"task": "Say maybe", "model": "gpt-4o"}])
    assert wait_ended(client, all_failed["batch_id"])["status"] == "failed"


@pytest.mark.parametrize(("items", "index", "reason"), [
    ([{"task": "ok"}, {"task": "ok"}, {"task": "ok", "temperature": 5}], 2, "temperature"),
    ([{"task": "ok", "model": "no-such-model"}], 0, "Unknown model"),
    ([{"task": "ok"}, {"metadata": {"a": 1}}], 1, "`task` or as `message`"),
    ([{"task": "ok"}, {"task": "a", "message": "b"}], 1, "one of the two"),
    ([{"task": "   "}], 0, "white space"),
    ([{"task": "ok", "colour": "blue"}], 0, "colour: Unknown field"),
    (["just a string"], 0, "Invalid input type"),
])
def test_one_invalid_item_rejects_the_batch_naming_its_index(client, redis_client, settings, items, index, reason):
    reply = client.post(f"{BATCH}/submit", json={"requests": items})
    assert reply.status_code == 422
    error = reply.get_json()["error"]
    assert error["code"] == "validation_error" and error["details"]["index"] == index
    assert error["message"].startswith(f"Item {index} of requests is invalid") and reason in error["message"]
    assert not list(redis_client.scan_iter(match=f"{settings.redis_prefix}batch:*"))  # nothing was queued


def test_batch_size_and_priority_are_checked(client, settings, worker, api_key):
    assert client.post(f"{BATCH}/submit", json={"requests": []}).status_code == 422
    assert client.post(f"{BATCH}/submit", json={"requests": [{"task": "x"}], "priority": 10}).status_code == 422
    small = Services.from_settings(dataclasses.replace(settings, batch_max_items=3, batch_max_body_bytes=2048))
    limited = create_app(small).test_client()
    limited.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    reply = limited.post(f"{BATCH}/submit", json={"requests": [{"task": "x"}] * 4})
    assert reply.status_code == 422 and "BATCH_MAX_ITEMS" in reply.get_json()["error"]["message"]
    reply = limited.post(f"{BATCH}/submit", json={"requests": [{"task": "x" * 3000}]})
    assert reply.status_code == 413 and "BATCH_MAX_BODY_BYTES" in reply.get_json()["error"]["message"]


def test_another_users_batch_is_not_found(client, app):
    batch_id = submit(client, [{"task": "Hello"}])["batch_id"]
    wait_ended(client, batch_id)
    _, issued = app.extensions["orchestrator"].users.create("someone else")
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issued.key}"
    for reply in (other.get(f"{BATCH}/{batch_id}/status"), other.post(f"{BATCH}/{batch_id}/cancel"),
                  other.get(f"{BATCH}/{batch_id}/results.jsonl"), client.get(f"{BATCH}/bat_nothing/status")):
        assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "not_found"
    assert status(client, batch_id)["status"] == "completed"  # untouched


def test_cancel_ends_pending_items_without_calling_a_provider(client, app, api_key, fresh_sandbox, worker):
    model = "gemini-2.5-flash"
    requests.post(f"{fresh_sandbox}/_sandbox/faults", timeout=5,
                  json={"model": model, "fault": "slow_first_token", "seconds": 1.0}).raise_for_status()
    batch_id = submit(client, [{"task": f"cancel me {i}", "model": model} for i in range(20)], priority=0)["batch_id"]
    wait_until(lambda: status(client, batch_id, limit=0)["counts"]["running"] > 0, 15, "items to start", interval=0.1)
    assert client.get(HEALTH).get_json()["batches"] == {"queued": 0, "running": 1}
    reply = client.post(f"{BATCH}/{batch_id}/cancel")
    assert reply.status_code == 200 and reply.get_json()["status"] == "cancelled"
    assert reply.get_json()["counts"]["queued"] == 0

    done = wait_ended(client, batch_id)
    counts = done["counts"]
    assert done["status"] == "cancelled" and counts["running"] == 0 and counts["failed"] == 0
    assert counts["completed"] + counts["cancelled"] == 20 and counts["cancelled"] >= 10
    results = status(client, batch_id, limit=100)["results"]
    ran = {f"cancel me {r['index']}" for r in results if r["status"] == "completed"}
    cancelled = [r for r in results if r["status"] == "cancelled"]
    assert all(r["error"]["code"] == "cancelled" and r["attempts"] == [] and r["cost"] == 0 for r in cancelled)
    assert sorted(sent_text(a) for a in sandbox_attempts(fresh_sandbox, model)) == sorted(ran)  # none of the others
    spent, reserved = usage(app, api_key)
    assert round(spent * MICRO) == sum(round(r["cost"] * MICRO) for r in results) and reserved == 0
    assert client.post(f"{BATCH}/{batch_id}/cancel").get_json()["counts"] == counts  # cancelling again: no change
    assert client.get(HEALTH).get_json()["batches"] == {"queued": 0, "running": 0}


def test_results_survive_a_restart_of_the_api(client, settings, api_key):
    batch_id = submit(client, [{"task": f"Remember {i}"} for i in range(3)])["batch_id"]
    wait_ended(client, batch_id)
    before = client.get(f"{BATCH}/{batch_id}/results.jsonl").data
    restarted = create_app(Services.from_settings(settings)).test_client()  # new app, new connections
    restarted.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    assert restarted.get(f"{BATCH}/{batch_id}/results.jsonl").data == before
    assert status(restarted, batch_id)["status"] == "completed"


def test_items_the_broker_lost_are_sent_again(client, app, api_key, fresh_sandbox):
    """kombu's Redis transport loses a message taken by a worker that dies between its BRPOP
    and its unacked write. Here one item's task is never sent: once the queue is empty, two
    passes in a row of the fleet's monitor find the item neither queued nor held by a worker,
    and send it, with no client polling the batch; the items a worker was just taking are
    not sent twice."""
    services = app.extensions["orchestrator"]
    owner = services.users.authenticate(api_key).user.id
    batch_id = new_batch_id()
    jobs = [item_job({"task": f"lost {i}"}, owner, services.settings, batch_id, 5) for i in range(3)]
    services.batches.create(batch_id, owner, 5, jobs, [None] * 3)
    _send(batch_id, [(0, jobs[0]), (2, jobs[2])], 5)  # item 1's task is lost
    services.batches.mark_sent(batch_id)
    done = wait_ended(client, batch_id, timeout=45, interval=0.5)  # two sweeps 5 s apart; under the rate limit
    assert done["status"] == "completed" and done["counts"]["completed"] == 3
    calls = sorted(sent_text(a) for a in requests.get(f"{fresh_sandbox}/_sandbox/attempts", timeout=5)
                   .json()["attempts"])
    assert calls == ["lost 0", "lost 1", "lost 2"]  # each once


def test_an_item_is_lost_only_when_two_looks_in_a_row_find_it_so(app):
    batches = app.extensions["orchestrator"].batches
    batch_id = new_batch_id()
    assert batches.confirm_lost(batch_id, {1, 2}) == set()  # maybe being taken by a worker
    assert batches.confirm_lost(batch_id, {1, 3}) == {1}
    assert batches.confirm_lost(batch_id, {1, 3}) == {3}  # 1 was sent again: a fresh start
    assert batches.confirm_lost(batch_id, set()) == set()
    assert batches.confirm_lost(batch_id, {1}) == set()
