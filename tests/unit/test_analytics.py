"""Analytics arithmetic, learned preferences and the once-per-episode rule, without services
(Redis is fakeredis)."""

import time

import fakeredis
import pytest

from orchestrator.core.catalog import Catalog
from orchestrator.core.job import new_request_id
from orchestrator.runtime.analytics import admin_report, cheaper_model_advice, model_summary, quantile
from orchestrator.store.alerts import Alert, Alerts
from orchestrator.store.budgets import Budgets
from orchestrator.store.learning import HALF_LIFE, Learning, decayed
from orchestrator.store.usage import Usage, UsageRow


@pytest.fixture
def redis_client():
    return fakeredis.FakeRedis(decode_responses=True)


def test_quantiles_interpolate_inside_the_bucket():
    histogram = {100: 50, 250: 50, float("inf"): 0}
    assert quantile(histogram, 0.5) == pytest.approx(0.1)
    assert quantile(histogram, 0.95) == pytest.approx((100 + 150 * 0.9) / 1000)
    assert quantile({100: 0, float("inf"): 4}, 0.5) == 0.1  # past the last bound: the last bound
    assert quantile({100: 0}, 0.5) is None


def test_model_summary_from_counters():
    summary = model_summary({"requests": 10, "ok": 8, "err:timeout": 2, "lat:500": 8, "latency_sum": 3.2,
                             "input_tokens": 1000, "output_tokens": 1000, "cost_micro": 4000, "fallbacks": 3})
    assert summary["success_rate"] == 0.8 and summary["failures_by_class"] == {"timeout": 2}
    assert summary["latency"]["mean"] == pytest.approx(0.4) and 0.25 < summary["latency"]["p95"] <= 0.5
    assert summary["cost"] == 0.004 and summary["cost_per_1k_tokens"] == pytest.approx(0.002)


def test_simple_tasks_on_gpt4_get_a_cheaper_model_with_the_money_at_stake():
    catalog = Catalog.load()
    rows = [UsageRow("simple", "gpt-4", 78, 78_000, 156_000, 78 * 0.03 + 156 * 0.06),
            UsageRow("simple", "gpt-4o-mini", 22, 22_000, 44_000, 22 * 0.00015 + 44 * 0.0006)]
    advice = cheaper_model_advice(rows, catalog)
    assert len(advice) == 1
    item = advice[0]
    assert item["details"]["suggested_model"] == "gpt-4o-mini"
    assert item["message"].startswith("78% of your simple tasks went to gpt-4; gpt-4o-mini would have cost $")
    paid = sum(r.cost for r in rows)
    expected = paid - (100 * 0.00015 + 200 * 0.0006)
    assert item["savings"] == pytest.approx(expected, rel=1e-6)


def test_no_advice_when_the_cheapest_suitable_model_is_already_used():
    rows = [UsageRow("simple", "gpt-4o-mini", 10, 1000, 1000, 0.00075)]
    assert cheaper_model_advice(rows, Catalog.load()) == []


def test_embeddings_get_no_chat_model_as_advice(tmp_path):
    """A chat model cheaper per token than the embedding model used is no alternative to it."""
    extra = tmp_path / "models.yaml"
    extra.write_text("models:\n  penny-chat: {provider: openai, quality: {default: 0.99}, "
                     "prices: {input: 0.001, output: 0.001}}\n")
    rows = [UsageRow("embedding", "text-embedding-3-large", 100, 1_000_000, 0, 0.13)]
    assert cheaper_model_advice(rows, Catalog.load(str(extra))) == []


def test_admin_report_ranks_cost_drivers():
    report = admin_report({"2026-11-24": [{"user_id": "u1", "model": "gpt-4", "requests": 2, "cost": 3.0}],
                           "2026-11-25": [{"user_id": "u2", "model": "gpt-4o", "requests": 5, "cost": 1.0},
                                          {"user_id": "u1", "model": "gpt-4", "requests": 1, "cost": 1.0}]})
    assert report["total_cost"] == 5.0 and report["spend_by_user"] == {"u1": 4.0, "u2": 1.0}
    assert report["top_cost_drivers"][0] == {"user_id": "u1", "model": "gpt-4", "cost": 4.0, "requests": 3,
                                             "share": 80.0}


def test_learned_scores_decay_and_ratings_move_them(redis_client):
    learning = Learning(redis_client, "t:")
    assert decayed(f"4:{time.time() - HALF_LIFE}", time.time()) == pytest.approx(2.0, rel=1e-3)
    assert learning.rate("r1", "u", "claude-3-5-haiku-20241022", "simple", "qa", 5, None, None)
    assert not learning.rate("r1", "u", "claude-3-5-haiku-20241022", "simple", "qa", 1, None, None)  # once
    assert learning.for_routing("u")[0] == {"simple": ("claude-3-5-haiku-20241022",)}
    learning.rate("r2", "u", "claude-3-5-haiku-20241022", "simple", "qa", None, "down", None)
    learned, quality = learning.for_routing("u")
    assert learned == {} and quality["claude-3-5-haiku-20241022"]["qa"].mean == 0.5


def test_an_episode_fires_once(redis_client):
    alerts = Alerts(redis_client, "t:")
    alert = Alert(kind="model_outage", severity="critical", subject="model:x", message="down")
    assert alerts.fire(alert, "circuit:model:x:1") and not alerts.fire(alert, "circuit:model:x:1")
    assert alerts.fire(alert, "circuit:model:x:2")
    assert len(alerts.recent()) == 2 and alerts.recent("someone") == []


def test_budget_thresholds_are_reported_once_each(redis_client):
    budgets, alerts = Budgets(redis_client, "t:"), Alerts(redis_client, "t:")
    usage = Usage(redis_client, "t:", budgets, Learning(redis_client, "t:"), alerts, default_limit=10.0,
                  anomaly_factor=5.0, anomaly_min_spend=1.0)
    redis_client.hset("t:user:u", mapping={"name": "ann", "monthly_budget": 1.0})

    def settle(cost):
        budgets.reserve("u", 1.0, f"r{cost}", cost, time.time() + 60)
        from orchestrator.store.ledger import Ledger
        from orchestrator.store.requests import RequestStore

        RequestStore(redis_client, "t:", 60).create(f"r{cost}", "u", "chat")
        Ledger(redis_client, "t:", 60).complete(f"r{cost}", {}, charge=budgets.charge("u", f"r{cost}", cost))
        settled = usage.settled(new_request_id(), "u", "gpt-4", "simple", cost, 1, 1, True, "t:user:u")
        return [a.details["threshold"] for a in usage.alert("u", settled)]

    assert settle(0.3) == []
    assert settle(0.55) == [50, 80]
    assert settle(0.05) == []
    assert settle(0.1) == [100]
    assert [r.requests for r in usage.month("u")] == [4]
