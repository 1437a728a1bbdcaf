"""Alerts, analytics and feedback report what happened: traffic driven through a real worker
and the sandbox (faults included), then read back over the API."""

from __future__ import annotations

import time

import pytest
import requests

from orchestrator.core.analysis import analyze
from orchestrator.core.job import new_request_id
from orchestrator.core.types import Message
from orchestrator.store.alerts import Alert, Webhook
from orchestrator.store.usage import Usage
from tests.processes import free_port, wait_until

API = "/api/v1/orchestrator"
EXECUTE = f"{API}/chat/execute"
SIMPLE = "What is the weather like?"


pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def new_client(app, services, budget: float | None = None, name: str = "analytics test"):
    user, issued = services.users.create(name, monthly_budget=budget)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issued.key}"
    return user, client


def admin_client(app, settings):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.admin_api_key}"
    return client


def ask(client, message: str = SIMPLE, **extra):
    reply = client.post(EXECUTE, json={"message": message, **extra})
    return reply.status_code, reply.get_json()


# --- budget alerts

def test_budget_alerts_fire_once_at_each_threshold_and_reach_the_webhook(app, services, worker, webhook):
    # The cost of one request, measured on another user: the sandbox's answer is the same
    # every time, and max_tokens cuts it, so each request costs about its worst case.
    _, calibration = new_client(app, services, budget=100.0)
    status, body = ask(calibration, model="gpt-4", max_tokens=40)
    assert status == 200, body
    cost = body["response"]["cost"]
    worst = services.catalog.get("gpt-4").worst_case_cost(analyze((Message("user", SIMPLE),), None, 40).max_input_tokens, 40)
    budget = 9 * cost + worst + 0.000005  # ten requests fit, the eleventh does not
    user, client = new_client(app, services, budget=budget, name="alice")

    outcomes = [ask(client, model="gpt-4", max_tokens=40)[0] for _ in range(13)]
    assert outcomes[:10] == [200] * 10 and set(outcomes[10:]) == {402}, outcomes
    spent, held = services.budgets.usage(user.id)
    assert held == 0 and spent <= budget and spent >= 0.8 * budget

    alerts = client.get(f"{API}/alerts").get_json()["alerts"]
    thresholds = sorted(a["details"]["threshold"] for a in alerts if a["kind"] == "budget_threshold")
    assert thresholds == [50, 80, 100]
    assert all(a["user_id"] == user.id and "alice" in a["message"] for a in alerts)
    # The admin sees them among everyone's; another user sees none of them.
    everyone = admin_client(app, services.settings).get(f"{API}/alerts?kind=budget_threshold").get_json()["alerts"]
    assert {a["id"] for a in alerts} <= {a["id"] for a in everyone}
    assert calibration.get(f"{API}/alerts").get_json()["alerts"] == []
    posted = wait_until(lambda: [a for a in webhook if a.get("user_id") == user.id] if len(
        [a for a in webhook if a.get("user_id") == user.id]) >= 3 else None, 10, "the webhook to receive 3 alerts")
    assert sorted(a["details"]["threshold"] for a in posted) == [50, 80, 100]


def test_a_dead_webhook_is_logged_never_raised(caplog):
    dead = Webhook(f"http://127.0.0.1:{free_port()}/alerts", timeout=0.5)
    assert dead.post(Alert(kind="test", severity="info", subject="x", message="m").as_dict()) is False
    assert "alert webhook" in caplog.text


def test_a_cost_anomaly_fires_once_per_episode(services, redis_client):
    user, _ = services.users.create("spender")
    hour = int(time.time() // 3600)
    services.usage.seed_hourly(user.id, {h: 0.01 for h in range(hour - 48, hour)})  # two days at $0.01 an hour
    key = services.users.user_key(user.id)
    least = services.settings.cost_anomaly_min_spend
    first = services.usage.settled(new_request_id(), user.id, "gpt-4", "simple", least * 2, 10, 10, True, key)
    assert first.anomaly and first.hour_average == pytest.approx(0.01)
    assert [a.kind for a in services.usage.alert(user.id, first)] == ["cost_anomaly"]
    again = services.usage.settled(new_request_id(), user.id, "gpt-4", "simple", least, 10, 10, True, key)
    assert not again.anomaly and services.usage.alert(user.id, again) == []
    assert len(services.alerts.recent(user.id, kind="cost_anomaly")) == 1


def test_the_cost_anomaly_thresholds_are_the_operators(services, redis_client):
    def usage(factor: float, least: float) -> Usage:
        return Usage(services.redis, services.settings.redis_prefix, services.budgets, services.learning,
                     services.alerts, services.settings.monthly_cost_limit, anomaly_factor=factor, anomaly_min_spend=least)

    def spends(amount: float, usage: Usage) -> bool:
        user, _ = services.users.create("steady spender")
        hour = int(time.time() // 3600)
        services.usage.seed_hourly(user.id, {h: 0.01 for h in range(hour - 48, hour)})  # $0.01 an hour
        return usage.settled(new_request_id(), user.id, "gpt-4", "simple", amount, 10, 10, True, services.users.user_key(user.id)).anomaly

    assert services.settings.cost_anomaly_min_spend > 0.6 and services.settings.cost_anomaly_factor < 200
    assert not spends(2.0, usage(factor=1000, least=0.5))  # 200 times the average, under the factor
    assert spends(0.6, usage(factor=10, least=0.5))  # 60 times, and over a minimum under the default
    assert not spends(0.6, services.usage)  # under the default minimum


# --- a circuit opening, and model analytics

def test_a_circuit_opening_fires_one_outage_alert_and_analytics_count_the_failures(
    app, services, worker, sandbox, client
):
    primary = "gpt-4o-mini"
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": primary, "fault": "unavailable"},
                  timeout=5).raise_for_status()
    served = [ask(client, model=primary) for _ in range(6)]
    assert all(status == 200 and body["model_used"] != primary for status, body in served)

    admin = admin_client(app, services.settings)
    outages = admin.get(f"{API}/alerts?kind=model_outage").get_json()["alerts"]
    model_alerts = [a for a in outages if a["subject"] == f"model:{primary}"]
    assert len(model_alerts) == 1, outages
    assert model_alerts[0]["details"]["last_error"] == "overloaded"
    assert len([a for a in outages if a["subject"] == "provider:openai"]) <= 1

    # Every attempt the sandbox saw on the primary is counted, with its failure class.
    seen = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": primary}, timeout=5).json()["attempts"]
    report = client.get(f"{API}/analytics/models?window=hour").get_json()
    row = next(m for m in report["models"] if m["model"] == primary)
    assert row["requests"] == len(seen) and row["successes"] == 0
    assert row["failures_by_class"] == {"overloaded": len(seen)}
    assert row["circuit"] in ("open", "probe", "half_open")
    answered = [m for m in report["models"] if m["successes"]]
    assert sum(m["successes"] for m in answered) == 6
    assert sum(m["fallbacks"] for m in report["models"]) >= 6
    for m in answered:
        assert m["latency"]["p50"] is not None and m["latency"]["p95"] >= m["latency"]["p50"]
        assert m["cost"] > 0 and m["cost_per_1k_tokens"] > 0 and m["tokens"]["output"] > 0


# --- analytics/user and its recommendations

def test_user_analytics_report_the_month_with_priced_recommendations(app, services, worker):
    user, client = new_client(app, services, budget=50.0)
    costs = []
    for _ in range(5):
        status, body = ask(client, model="gpt-4")
        assert status == 200, body
        assert body["routing_decision"]["analysis"]["complexity"] == "simple"
        costs.append(body["response"]["cost"])
    report = client.get(f"{API}/analytics/user").get_json()
    assert report["user_id"] == user.id
    metrics = report["metrics"]
    assert metrics["monthly_budget"] == 50.0
    assert metrics["current_spend"] == pytest.approx(sum(costs), abs=1e-5)
    assert metrics["budget_utilization"] == pytest.approx(100 * sum(costs) / 50.0, abs=0.01)
    assert metrics["cost_sensitivity"] == 0.5
    assert metrics["usage_by_complexity"]["simple"]["requests"] == 5
    assert metrics["usage_by_complexity"]["simple"]["models"]["gpt-4"]["requests"] == 5
    advice = next(r for r in report["recommendations"] if r["kind"] == "cheaper_model")
    assert advice["details"]["most_used_model"] == "gpt-4" and advice["details"]["most_used_share"] == 100
    assert advice["savings"] > 0.5 * sum(costs)  # gpt-4 costs far more than a model good enough for simple tasks
    assert "100% of your simple tasks went to gpt-4" in advice["message"] and "less this month" in advice["message"]
    assert advice["details"]["suggested_model"] in advice["message"]

    # The admin reads anyone's; another user gets 404 for it.
    other_user, other = new_client(app, services)
    assert other.get(f"{API}/analytics/user?user_id={user.id}").status_code == 404
    by_admin = admin_client(app, services.settings).get(f"{API}/analytics/user?user_id={user.id}")
    assert by_admin.status_code == 200 and by_admin.get_json()["metrics"]["current_spend"] == metrics["current_spend"]

    # Across users: spend per user and model per day, and the top cost drivers.
    across = admin_client(app, services.settings).get(f"{API}/admin/analytics?days=2").get_json()
    assert across["spend_by_user"][user.id] == pytest.approx(sum(costs), abs=1e-5)
    assert across["top_cost_drivers"][0]["model"] == "gpt-4"
    assert client.get(f"{API}/admin/analytics").status_code == 403


# --- feedback and learned preferences

def test_feedback_moves_the_learned_default(app, services, worker):
    user, client = new_client(app, services)
    favourite = "claude-3-5-haiku-20241022"
    status, rated = ask(client, model=favourite, strategy="user_preference")
    assert status == 200, rated
    status, routed = ask(client, strategy="user_preference")
    assert status == 200 and routed["model_used"] != favourite  # one good answer is not yet a preference

    reply = client.post(f"{API}/feedback", json={"request_id": rated["request_id"], "rating": 5, "comment": "great"})
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["learned_preferred_models"]["simple"][0] == favourite
    status, after = ask(client, strategy="user_preference")
    assert status == 200 and after["model_used"] == favourite
    # Balanced routing does not follow learned preferences.
    assert ask(client)[1]["model_used"] != favourite

    report = client.get(f"{API}/analytics/user").get_json()["metrics"]
    assert report["preferred_models"]["simple"][0] == favourite
    assert report["learned_preferred_models"]["simple"][0]["model"] == favourite
    task_type = rated["routing_decision"]["analysis"]["task_type"]
    quality = services.learning.qualities(services.redis.hgetall(services.learning.quality_key))
    assert quality[favourite][task_type].count == 1 and quality[favourite][task_type].mean == 1.0

    # An explicit preference wins over the learned one.
    client.post(f"{API}/preferences/update", json={"preferred_models": {"simple": ["gemini-2.5-flash"]}})
    assert ask(client, strategy="user_preference")[1]["model_used"] == "gemini-2.5-flash"


def test_feedback_is_for_your_own_answered_requests_once(app, services, worker, client):
    status, body = ask(client, model="gpt-4o-mini")
    assert status == 200
    _, stranger = new_client(app, services)
    assert stranger.post(f"{API}/feedback", json={"request_id": body["request_id"], "rating": 1}).status_code == 404
    assert client.post(f"{API}/feedback", json={"request_id": "req_nope", "rating": 1}).status_code == 404
    for bad in (0, 6, 4.5, True, "sideways", None):
        reply = client.post(f"{API}/feedback", json={"request_id": body["request_id"], "rating": bad})
        assert reply.status_code == 422, bad
    down = client.post(f"{API}/feedback", json={"request_id": body["request_id"], "rating": "down"})
    assert down.status_code == 200 and down.get_json()["thumbs"] == "down" and down.get_json()["rating"] is None
    again = client.post(f"{API}/feedback", json={"request_id": body["request_id"], "rating": 5})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_rated"
