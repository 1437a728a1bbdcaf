"""Metrics, health, degradation alerts and request ids report what happened: traffic driven
through a real worker and the sandbox (faults included)."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.runtime.monitor import MIN_BASELINE, MIN_RECENT, Monitor
from orchestrator.store.stats import latency_bucket
from tests.processes import wait_until

API = "/api/v1/orchestrator"
EXECUTE = f"{API}/chat/execute"
MODEL = "gpt-4o-mini"


pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def ask(client, **extra):
    reply = client.post(EXECUTE, json={"message": "What is the weather like?", "model": MODEL, **extra})
    return reply.status_code, reply.get_json()


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def key(metric: str, /, **labels: str) -> tuple:
    return metric, tuple(sorted(labels.items()))


def test_metrics_count_the_traffic_driven_through_the_sandbox(app, services, worker, sandbox, client, api_key):
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": MODEL, "fault": "server_error", "count": 2},
                  timeout=5).raise_for_status()
    answers = [ask(client) for _ in range(4)]
    assert all(status == 200 for status, _ in answers)
    seen = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": MODEL}, timeout=5).json()["attempts"]
    reply = app.test_client().get("/metrics")  # no key needed
    assert reply.status_code == 200 and reply.mimetype == "text/plain"
    metrics = samples(reply.get_data(as_text=True))
    labels = {"model": MODEL, "provider": "openai"}
    answered = sum(1 for _, body in answers if body["model_used"] == MODEL)
    assert metrics[key("orchestrator_attempts_total", **labels)] == len(seen)
    assert metrics[key("orchestrator_errors_total", kind="server_error", **labels)] == 2
    assert metrics[key("orchestrator_successes_total", **labels)] == answered
    assert metrics[key("orchestrator_latency_seconds_count", **labels)] == answered
    assert metrics[key("orchestrator_ttft_seconds_count", **labels)] == answered
    assert metrics[key("orchestrator_latency_seconds_bucket", le="+Inf", **labels)] == answered
    output = sum(body["response"]["usage"]["output_tokens"] for _, body in answers if body["model_used"] == MODEL)
    assert metrics[key("orchestrator_tokens_total", direction="output", **labels)] == output
    cost = sum(body["response"]["cost"] for _, body in answers if body["model_used"] == MODEL)
    assert metrics[key("orchestrator_cost_usd_total", **labels)] == pytest.approx(cost, abs=1e-5)
    cost = sum(body["response"]["cost"] for _, body in answers)
    assert metrics[key("orchestrator_circuit_state", scope="model", name=MODEL)] == 0
    assert key("orchestrator_queue_depth", queue="chat", level="0") in metrics
    assert metrics[key("orchestrator_workers_alive")] >= 1
    user = services.users.authenticate(api_key).user
    assert not any(name.startswith("orchestrator_budget") for name, _ in metrics)  # no user ids without a key
    admin = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {services.settings.admin_api_key}"})
    per_user = samples(admin.get_data(as_text=True))
    assert per_user[key("orchestrator_budget_utilization_ratio", user_id=user.id)] == pytest.approx(
        cost / user.monthly_budget, rel=1e-3)
    someone = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {api_key}"})
    assert "user_id=" not in someone.get_data(as_text=True)  # a user's key is not the admin's


def test_health_details_and_probes(app, services, worker):
    services.circuits.record(MODEL, "openai", success=False, force_open=True)
    public = app.test_client()
    health = public.get(f"{API}/health").get_json()
    assert health["status"] == "healthy" and health["workers"]["count"] >= 1
    answering = health["workers"]["answering"]
    assert set(answering) == set(health["workers"]["alive"])  # Celery's ping reached every live worker
    assert all(w["ping"] and w["active_tasks"] == 0 for w in answering.values())
    assert health["streams"] == {"open": 0} and health["batches"] == {"queued": 0, "running": 0}

    services.fleet.heartbeat("ghost@nowhere")  # a heartbeat, but no worker behind it to answer
    try:
        health = public.get(f"{API}/health").get_json()
    finally:
        services.fleet.leave("ghost@nowhere")
    assert health["status"] == "healthy" and health["workers"]["answering"]["ghost@nowhere"] == {
        "ping": False, "active_tasks": None}
    assert any(w.startswith("worker ghost@nowhere did not answer a ping") for w in health["warnings"])
    openai = health["providers"]["openai"]
    assert openai["sandbox"] is True and openai["models"][MODEL]["circuit"] == "open"
    assert f"model {MODEL}: circuit open" in health["warnings"]
    assert set(health["queues"]) == {"chat", "batch"}
    assert public.get(f"{API}/health/live").get_json()["status"] == "alive"
    ready = public.get(f"{API}/health/ready")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_a_latency_degradation_alerts_once(app, services, worker, sandbox, client, redis_client):
    # A baseline of fast answers in the hours before; then the model slows down.
    hour = int(time.time() // 3600)
    for past in range(hour - 10, hour - 4):
        key = services.stats.hour_key(MODEL, past)
        redis_client.hset(key, mapping={"requests": MIN_BASELINE, "ok": MIN_BASELINE,
                                        latency_bucket(0.05): MIN_BASELINE})
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": MODEL, "fault": "slow_first_token", "seconds": 0.6},
                  timeout=5).raise_for_status()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: ask(client), range(24)))
    assert all(status == 200 and body["model_used"] == MODEL for status, body in answers)
    services.monitor.run()  # the worker's own periodic pass may have fired it already
    services.monitor.run()
    alerts = services.alerts.recent(kind="performance_degradation")
    assert len(alerts) == 1 and alerts[0]["subject"] == f"model:{MODEL}"
    assert alerts[0]["details"]["p95"] > 2 * alerts[0]["details"]["baseline_p95"]


def test_a_p95_over_the_operators_ceiling_alerts_without_a_baseline(services, redis_client):
    hour = int(time.time() // 3600)
    redis_client.hset(services.stats.hour_key(MODEL, hour), mapping={
        "requests": MIN_RECENT, "ok": MIN_RECENT, latency_bucket(0.05): MIN_RECENT - 2, latency_bucket(2.0): 2})
    lenient = Monitor(services.redis, services.settings.redis_prefix, services.stats, services.catalog,
                      services.alerts, services.fleet, factor=2.0, ceiling=5.0)
    assert lenient.degradations(time.time()) == []
    strict = Monitor(services.redis, services.settings.redis_prefix, services.stats, services.catalog,
                     services.alerts, services.fleet, factor=2.0, ceiling=1.0)
    fired = strict.degradations(time.time()) + strict.degradations(time.time())
    assert [(a.subject, a.details["trigger"], a.details["baseline_p95"]) for a in fired] == [
        (f"model:{MODEL}", 1.0, None)]


def test_a_lost_worker_alerts_once(services):
    services.redis.zadd(services.fleet.key, {"worker-ghost@host": time.time() - 60})
    monitor = services.monitor
    fired = monitor.lost_workers() + monitor.lost_workers()
    assert [a.subject for a in fired] == ["worker:worker-ghost@host"]


def test_the_request_id_follows_the_request_to_the_worker_and_the_provider(client, worker, sandbox):
    trace = f"trace-{secrets.token_hex(6)}"
    reply = client.post(EXECUTE, json={"message": "hello", "model": MODEL}, headers={"X-Request-ID": trace})
    assert reply.status_code == 200 and reply.headers["X-Request-ID"] == trace
    line = wait_until(lambda: next((ln for ln in worker.log_path.read_text().splitlines() if trace in ln), None), 10,
                      "the worker's log line with the request id")
    entry = json.loads(line)
    assert entry["request_id"] == trace and entry["task_id"] == reply.get_json()["request_id"]
    attempts = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": MODEL}, timeout=5).json()["attempts"]
    assert [a["client_request_id"] for a in attempts] == [trace]  # and on to the provider
    generated = client.get(f"{API}/preferences").headers["X-Request-ID"]
    assert generated and generated != trace
    assert client.get(f"{API}/preferences", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


@pytest.mark.parametrize("primary", ["claude-3-5-haiku-20241022", "gemini-2.5-flash"])
def test_every_attempt_carries_the_request_id_to_its_provider(client, sandbox, primary):
    """Through each SDK, on the failed attempt and on the fallback that answers."""
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": primary, "fault": "server_error", "count": 2},
                  timeout=5).raise_for_status()
    trace = f"trace-{secrets.token_hex(6)}"
    reply = client.post(EXECUTE, json={"message": "hello", "model": primary}, headers={"X-Request-ID": trace})
    assert reply.status_code == 200 and reply.get_json()["model_used"] != primary
    attempts = requests.get(f"{sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]
    assert len(attempts) >= 3 and {a["model"] for a in attempts} >= {primary, reply.get_json()["model_used"]}
    assert {a["client_request_id"] for a in attempts} == {trace}
