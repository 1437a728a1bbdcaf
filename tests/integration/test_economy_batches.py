"""Economy batches on the session's worker and sandbox: items routed and reserved at batch
prices, submitted per provider and model to the sandbox's batch APIs by the fleet's periodic
pass, their answers mapped back and billed at the batch price; a provider batch's failed and
expired items back on the standard path (or failed, as the batch asks); cancel upstream."""

from __future__ import annotations

import pytest
import requests

from orchestrator.core.analysis import request_max_input_tokens
from orchestrator.core.job import ChatJob
from orchestrator.core.types import Message, Usage
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


def submitted(client, batch_id: str, count: int) -> dict:
    """The status once `count` items wait in a provider batch."""
    def waiting():
        body = status(client, batch_id)
        states = [item["economy"] and item["economy"]["state"] for item in body["results"]]
        return body if states.count("submitted") == count else None
    return wait_until(waiting, PASSES, f"{count} items submitted to a provider batch", interval=1)


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
