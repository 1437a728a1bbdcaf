"""Budgets: the worst case is reserved before a call, the real cost settled once after it,
and concurrent requests can never spend past a user's monthly budget."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.core.job import ChatJob
from orchestrator.execution.outcomes import FINISHED
from orchestrator.runtime.services import Services

EXECUTE = "/api/v1/orchestrator/chat/execute"
MODEL = "gpt-4o-mini"


def user_client(app, services, budget: float):
    user, issued = services.users.create("budget test", monthly_budget=budget)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issued.key}"
    return user, client


def test_a_request_is_billed_its_real_cost_and_its_reservation_released(app, services, worker, sandbox):
    user, client = user_client(app, services, budget=5.0)
    reply = client.post(EXECUTE, json={"message": "What is the weather like?", "model": MODEL, "max_tokens": 500})
    assert reply.status_code == 200, reply.get_json()
    spent, reserved = services.budgets.usage(user.id)
    assert spent == pytest.approx(reply.get_json()["response"]["cost"], abs=1e-6) and spent > 0
    assert reserved == 0


def test_a_request_whose_worst_case_exceeds_what_is_left_is_refused_before_any_call(app, services, worker):
    user, client = user_client(app, services, budget=0.0001)
    reply = client.post(EXECUTE, json={"message": "Write a long essay on tea", "model": MODEL, "max_tokens": 4000})
    assert reply.status_code == 402
    assert "budget" in reply.get_json()["error"]["message"]
    assert services.budgets.usage(user.id) == (0.0, 0.0)


def test_concurrent_requests_never_spend_past_the_budget(app, services, worker):
    # The worst case of one request is about a quarter of the budget: at most four fit at once.
    worst_case = services.catalog.get(MODEL).worst_case_cost(20, 2000)
    user, issued_client = user_client(app, services, budget=worst_case * 4.5)
    header = issued_client.environ_base["HTTP_AUTHORIZATION"]

    def ask(i: int):
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = header
        reply = client.post(EXECUTE, json={"message": f"Question {i}: what is tea?", "model": MODEL,
                                           "max_tokens": 2000})
        return reply.status_code, reply.get_json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(pool.map(ask, range(24)))
    answered = [body for status, body in replies if status == 200]
    refused = [body for status, body in replies if status == 402]
    assert len(answered) + len(refused) == 24 and answered and refused
    spent, reserved = services.budgets.usage(user.id)
    assert spent == pytest.approx(sum(b["response"]["cost"] for b in answered), abs=1e-6)
    assert spent <= user.monthly_budget and reserved == 0


LONG_CONTEXT_MODEL = "gemini-2.5-pro"  # its rates rise by half or more above 200,000 input tokens


def test_concurrent_requests_past_the_long_context_tier_never_spend_past_the_budget(app, services, worker):
    # The sandbox counts four characters a token: each prompt is just above 200,000 tokens, and
    # each answer settles at about $0.50 at the long-context rate. The reservation rests on one
    # token a byte (about $2.00), so one or two of six fit in $2.60; reserved at the base rate
    # ($0.25, as the gateway once did), all six would fit and spend about $3.00.
    budget = 2.60
    user, issued_client = user_client(app, services, budget=budget)
    header = issued_client.environ_base["HTTP_AUTHORIZATION"]
    prompt = "tea " * 200_050

    def ask(i: int):
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = header
        reply = client.post(EXECUTE, json={"message": f"{i} {prompt}", "model": LONG_CONTEXT_MODEL, "max_tokens": 50})
        return reply.status_code, reply.get_json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(ask, range(6)))
    answered = [body for status, body in replies if status == 200]
    assert answered and {status for status, _ in replies} <= {200, 402}, [status for status, _ in replies]
    assert all(b["response"]["usage"]["input_tokens"] > 200_000 and b["response"]["cost"] > 0.5 for b in answered)
    spent, reserved = services.budgets.usage(user.id)
    assert spent == pytest.approx(sum(b["response"]["cost"] for b in answered), abs=1e-5)
    assert spent <= budget and reserved == 0


def test_a_settlement_is_applied_once_however_often_the_answer_is_published(services):
    charge = services.budgets.charge("usr_once", "req_once", 0.25)
    services.budgets.reserve("usr_once", 10, "req_once", 1.0, expires_at=9e9)
    services.requests.create("req_once", "usr_once", "chat")
    assert services.ledger.complete("req_once", {"ok": 1}, charge=charge) is True
    assert services.ledger.complete("req_once", {"ok": 2}, charge=charge) is False
    assert services.budgets.usage("usr_once") == (0.25, 0.0)


def test_a_crashed_workers_reservation_expires(services):
    import time

    services.budgets.reserve("usr_crash", 1.0, "req_crash", 0.9, expires_at=time.time() - 1)
    assert services.budgets.usage("usr_crash") == (0.0, 0.0)
    assert services.budgets.reserve("usr_crash", 1.0, "req_next", 0.9, expires_at=time.time() + 60)


def test_with_cost_tracking_off_nothing_is_reserved_or_billed(app, services, sandbox, api_key):
    untracked = Services(settings=dataclasses.replace(services.settings, cost_tracking_enabled=False),
                         redis=services.redis, catalog=services.catalog)
    owner = untracked.users.authenticate(api_key).user.id
    payload = {"messages": [{"role": "user", "content": "hello"}], "model": MODEL, "owner": owner}
    untracked.requests.create("req_untracked", owner, "chat")
    assert untracked.executor.run("req_untracked", ChatJob.from_json(payload)) == FINISHED
    result = untracked.requests.get("req_untracked")
    assert result["status"] == "completed" and result["result"]["response"]["cost"] == 0
    assert untracked.budgets.usage(owner) == (0.0, 0.0)
