"""Economy batches on the session's worker and sandbox: items routed and reserved at batch
prices, submitted per provider and model to the sandbox's batch APIs by the fleet's periodic
pass, their answers mapped back and billed at the batch price; a provider batch's failed and
expired items back on the standard path (or failed, as the batch asks); cancel upstream; a pass
that dies around its provider's acceptance never has the provider run its items twice."""

from __future__ import annotations

import time

import pytest
import requests

from orchestrator.core.analysis import request_max_input_tokens
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import ChatJob
from orchestrator.core.types import Message, Usage
from orchestrator.execution.economy import LOCK_SECONDS, SETTLE, Pass
from orchestrator.providers.anthropic_batches import AnthropicBatches
from orchestrator.providers.gemini_batches import GeminiBatches
from orchestrator.providers.openai_batches import OpenAIBatches
from tests.integration.test_batch import BATCH, MICRO, status, submit, wait_ended
from tests.processes import wait_until

GPT, CLAUDE, GEMINI = "gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
PASSES = 30  # seconds: a few of the fleet's periodic passes (every 5 s)

pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def rule(sandbox: str, fault: str, model: str, **params) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": fault, **params},
                  timeout=5).raise_for_status()


def items(*models: str, count: int = 1) -> list[dict]:
    return [{"message": f"Name a colour, please ({model} {n})", "model": model, "max_tokens": 40}
            for model in models for n in range(count)]


def batch_cost(services, item: dict) -> float:
    usage = {k: v for k, v in item["usage"].items() if k != "total_tokens"}
    return services.catalog.get(item["model"]).batch_priced().cost(Usage(**usage))


def standard_cost(services, item: dict) -> float:
    usage = {k: v for k, v in item["usage"].items() if k != "total_tokens"}
    return services.catalog.get(item["model"]).cost(Usage(**usage))


def held(redis_client, settings) -> dict[str, int]:
    """Every reservation held now (micro-dollars by request id), whoever holds it."""
    return {request_id: int(micro) for key in redis_client.scan_iter(match=f"{settings.redis_prefix}budget:*:held")
            for request_id, micro in redis_client.hgetall(key).items()}


def submitted(client, batch_id: str, count: int, state: str = "submitted") -> dict:
    """The status once `count` items wait in a provider batch (or are in `state`)."""
    def waiting():
        body = status(client, batch_id)
        states = [item["economy"] and item["economy"]["state"] for item in body["results"]]
        return body if states.count(state) == count else None
    return wait_until(waiting, PASSES, f"{count} items {state}", interval=1)


def test_economy_items_go_to_each_providers_batch_api_and_are_billed_at_batch_prices(client, services, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", "*", seconds=0)
    batch = submit(client, items(GPT, CLAUDE, GEMINI, count=2), mode="economy")
    assert batch["mode"] == "economy"
    ended = wait_ended(client, batch["batch_id"], timeout=PASSES, interval=1)
    body = status(client, batch["batch_id"])
    assert ended["status"] == "completed"
    uploads = {(u["provider"], u["model"], u["total"], u["status"]) for u in body["provider_batches"]}
    assert uploads == {("openai", GPT, 2, "completed"), ("anthropic", CLAUDE, 2, "ended"),
                       ("google", GEMINI, 2, "JOB_STATE_SUCCEEDED")}
    ids = {u["model"]: u["id"] for u in body["provider_batches"]}
    attempts = requests.get(f"{fresh_sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]
    assert sorted(a["client_request_id"] for a in attempts) == sorted(r["request_id"] for r in body["results"])
    for item in body["results"]:
        assert item["content"] and item["economy"]["state"] == "submitted"
        assert item["economy"]["provider_batch"] == ids[item["model"]]
        assert item["cost"] == pytest.approx(batch_cost(services, item), abs=1e-6)
        assert item["cost"] == pytest.approx(standard_cost(services, item) / 2, abs=2e-6)
    assert body["cost"] == pytest.approx(sum(item["cost"] for item in body["results"]), abs=1e-6)


def test_budget_reserved_at_batch_prices_while_a_provider_batch_runs(client, services, redis_client, settings,
                                                                    fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", GPT, seconds=60)
    batch = submit(client, items(GPT, count=3), mode="economy")
    body = submitted(client, batch["batch_id"], 3)
    model, sent = services.catalog.get(GPT), items(GPT, count=3)
    holds = held(redis_client, settings)
    assert set(holds) == {item["request_id"] for item in body["results"]}
    for item, asked in zip(body["results"], sent, strict=True):  # the worst case at the batch price, half the standard
        tokens = request_max_input_tokens(ChatJob((Message("user", asked["message"]),)).chat_request(settings))
        assert holds[item["request_id"]] == round(model.batch_priced().worst_case_cost(tokens, 40) * MICRO)
        assert holds[item["request_id"]] == pytest.approx(model.worst_case_cost(tokens, 40) * MICRO / 2, abs=1)
    assert body["status"] == "running" and body["counts"]["running"] == 3
    assert all(item["economy"]["since"] >= body["timing"]["created_at"] for item in body["results"])


def test_items_a_provider_batch_failed_or_expired_run_again_at_the_standard_price(client, services, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", GPT, seconds=0)
    rule(fresh_sandbox, "batch_expire", CLAUDE, after_items=1)
    rule(fresh_sandbox, "server_error", GPT, count=1)  # the provider batch's first GPT item fails
    batch = submit(client, items(GPT, CLAUDE, count=2), mode="economy")
    ended = wait_ended(client, batch["batch_id"], timeout=2 * PASSES, interval=1)
    body = status(client, batch["batch_id"])
    assert ended["status"] == "completed"
    again = [item for item in body["results"] if item["economy"]["state"] == "standard"]
    assert sorted(item["model"] for item in again) == [CLAUDE, GPT]
    for item in body["results"]:
        price = standard_cost if item in again else batch_cost
        assert item["cost"] == pytest.approx(price(services, item), abs=1e-6)


def test_items_a_provider_batch_failed_end_failed_when_the_batch_asks(client, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", GPT, seconds=0)
    rule(fresh_sandbox, "batch_expire", GPT, after_items=1)
    batch = submit(client, items(GPT, count=2), completion_window="24h", on_upstream_failure="fail")
    ended = wait_ended(client, batch["batch_id"], timeout=PASSES, interval=1)
    body = status(client, batch["batch_id"])
    assert ended["status"] == "partially_completed" and ended["counts"]["failed"] == 1
    failed = next(item for item in body["results"] if item["status"] == "failed")
    assert failed["error"]["code"] == "timeout" and "expired" in failed["error"]["message"]
    assert failed["cost"] == 0


def test_cancelling_cancels_the_provider_batch(client, services, redis_client, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", GEMINI, seconds=120)
    batch = submit(client, items(GEMINI, count=3), mode="economy")
    body = submitted(client, batch["batch_id"], 3)
    upstream = body["provider_batches"][0]["id"]
    assert client.post(f"{BATCH}/{batch['batch_id']}/cancel").status_code == 200
    ended = wait_ended(client, batch["batch_id"], timeout=PASSES, interval=1)
    assert ended["status"] == "cancelled" and ended["counts"]["cancelled"] == 3 and ended["cost"] == 0
    job = requests.get(f"{fresh_sandbox}/v1beta/{upstream}", timeout=5).json()
    assert job["metadata"]["state"] == "BATCH_STATE_CANCELLED"
    assert status(client, batch["batch_id"])["provider_batches"][0]["cancel_sent_at"] is not None


class PassDied(Exception):
    """The pass stops here (its worker killed): no code of it runs after this point."""


def sandbox_batches(sandbox: str, model: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/batches", params={"model": model}, timeout=5).json()["batches"]


def one_pass(services, client, model: str, monkeypatch, adapter, call) -> dict:
    """Three economy items of `model` parked, then one pass, run here while the session's
    worker waits for the lock, whose call to the provider's batch API is `call(submit)`; it
    leaves the items submitting. The orchestrator batch."""
    lock = services.provider_batches.lock(LOCK_SECONDS)
    assert lock.acquire(blocking=True, blocking_timeout=PASSES)
    try:
        batch = submit(client, items(model, count=3), mode="economy")
        submitted(client, batch["batch_id"], 3, state="pending")
        submit_call = adapter.submit
        monkeypatch.setattr(adapter, "submit", lambda api, calls, tag: call(lambda: submit_call(api, calls, tag)))
        try:
            services.economy.submit(Pass(lock, resend=lambda again: pytest.fail(f"{again} sent again")))
        except PassDied:
            pass
        assert submitted(client, batch["batch_id"], 3, state="submitting")
    finally:
        lock.release()
    return batch


def answered_once_at_batch_prices(services, client, sandbox: str, batch: dict, model: str) -> str:
    """The batch ended with every item answered once, by one provider batch, billed at its
    price; that provider batch's id (the sandbox's)."""
    ended = wait_ended(client, batch["batch_id"], timeout=SETTLE + 2 * PASSES, interval=1)
    body = status(client, batch["batch_id"])
    assert ended["status"] == "completed"
    made = sandbox_batches(sandbox, model)
    assert len(made) == 1 and made[0]["items"] == 3
    assert [u["id"].removeprefix("batches/") for u in body["provider_batches"]] == [made[0]["id"]]
    attempts = requests.get(f"{sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]
    assert sorted(a["client_request_id"] for a in attempts) == sorted(r["request_id"] for r in body["results"])
    for item in body["results"]:
        assert item["economy"]["state"] == "submitted"
        assert item["economy"]["provider_batch"] == body["provider_batches"][0]["id"]
        assert item["cost"] == pytest.approx(batch_cost(services, item), abs=1e-6)
    assert body["cost"] == pytest.approx(sum(item["cost"] for item in body["results"]), abs=1e-6)
    return made[0]["id"]


@pytest.mark.parametrize(("model", "adapter", "delay"), [
    (GPT, OpenAIBatches, 0), (GEMINI, GeminiBatches, 0),
    (CLAUDE, AnthropicBatches, SETTLE + 10),  # still running when first looked for: known only once it ends
])
def test_a_batch_the_provider_took_from_a_pass_that_died_before_recording_it_is_adopted(
        services, client, fresh_sandbox, monkeypatch, model, adapter, delay):
    rule(fresh_sandbox, "batch_delay", model, seconds=delay)
    taken = []

    def accepted_then_died(submit_batch):
        taken.append(submit_batch().removeprefix("batches/"))
        raise PassDied

    batch = one_pass(services, client, model, monkeypatch, adapter, accepted_then_died)
    assert answered_once_at_batch_prices(services, client, fresh_sandbox, batch, model) == taken[0]


def test_a_batch_accepted_despite_a_timeout_is_adopted_not_submitted_again(services, client, fresh_sandbox,
                                                                           monkeypatch):
    rule(fresh_sandbox, "batch_delay", GPT, seconds=0)

    def accepted_but_timed_out(submit_batch):
        submit_batch()
        raise ProviderError(ErrorKind.TIMEOUT, "read timed out", provider="openai", model=GPT)

    batch = one_pass(services, client, GPT, monkeypatch, OpenAIBatches, accepted_but_timed_out)
    answered_once_at_batch_prices(services, client, fresh_sandbox, batch, GPT)


def test_a_submission_that_never_reached_the_provider_is_submitted_again(services, client, fresh_sandbox,
                                                                         monkeypatch):
    rule(fresh_sandbox, "batch_delay", GPT, seconds=0)

    def died_before_calling(submit_batch):
        raise PassDied

    batch = one_pass(services, client, GPT, monkeypatch, OpenAIBatches, died_before_calling)
    assert sandbox_batches(fresh_sandbox, GPT) == []
    answered_once_at_batch_prices(services, client, fresh_sandbox, batch, GPT)


def test_only_the_pass_that_owns_a_submission_settles_it(services, redis_client, settings):
    store, ids = services.provider_batches, [f"bat_{'0' * 32}-{i}" for i in range(2)]
    lock = store.lock(LOCK_SECONDS)  # the session worker's passes wait
    assert lock.acquire(blocking=True, blocking_timeout=PASSES)
    try:
        store.park(ids[0], GPT, {}), store.park(ids[1], GPT, {})
        left = store.begin("openai", GPT, ids, owner="dead pass")
        assert store.pending([GPT], 10) == {} and store.left("dead pass", time.time()) == []
        assert store.left("second", left.at - 1) == [] and store.left("second", time.time()) == [left]
        assert store.claim(left, "second") and not store.claim(left, "third")  # the third saw it before the second took it
        assert not store.accepted(left, "dead pass", "batch_late") and not store.release(left, "third")
        assert not redis_client.exists(f"{settings.redis_prefix}upstream:batch_late")
        assert store.accepted(left, "second", "batch_1") and not store.release(left, "second")
        assert store.request_ids("batch_1") == ids and [u["id"] for u in store.open_upstreams()] == ["batch_1"]
        assert store.left("third", time.time()) == [] and store.pending([GPT], 10) == {}
    finally:
        lock.release()


def test_a_submission_that_cannot_be_looked_for_holds_up_no_other(services, redis_client, monkeypatch):
    """One left submission whose model has left the catalog raises where it is looked for; the
    next one is still taken over and, never having reached its provider, parked again."""
    store, gone, fine = services.provider_batches, [f"bat_{'1' * 32}-0"], [f"bat_{'2' * 32}-0"]
    lock = store.lock(LOCK_SECONDS)  # the session worker's passes wait
    assert lock.acquire(blocking=True, blocking_timeout=PASSES)
    try:
        store.park(gone[0], "model-no-longer-in-the-catalog", {}), store.park(fine[0], GPT, {})
        store.begin("openai", "model-no-longer-in-the-catalog", gone, owner="dead pass")
        store.begin("openai", GPT, fine, owner="dead pass")
        monkeypatch.setattr("orchestrator.execution.economy.SETTLE", -1.0)  # both are left already
        services.economy._settle_left(Pass(lock, resend=lambda again: pytest.fail(f"{again} sent again")))
        assert store.pending([GPT], 10) == {GPT: fine}
    finally:
        lock.release()  # its keys go with the test's (clean_keys)
