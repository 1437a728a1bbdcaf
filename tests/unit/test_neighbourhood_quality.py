"""Online learning: outcomes in one neighbourhood move the router there and nowhere else."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator.core.catalog import Catalog
from orchestrator.core.decision import PredictedQuality
from orchestrator.core.router import Router
from orchestrator.core.routing_model import Prediction
from orchestrator.core.types import ChatRequest, Message
from orchestrator.store.neighbourhood_quality import NeighbourhoodQuality


class TwoClusters:
    """The same middling prediction everywhere; "alpha" prompts in cluster 0, others in 1."""

    reference_tiers: dict[str, float] = {}

    def predict(self, last, earlier, analysis):
        return Prediction(weak=0.5, gap=0.1, percentile=0.5, strong_gain=0.15, cluster=0 if "alpha" in last else 1)


def entry(price, tier):
    return {"provider": "p", "prices": {"input": price, "output": price}, "comparable_to": tier}


CATALOG = Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": {
    "budget": entry(0.1, 0.3), "middle": entry(1.0, 0.8), "premium": entry(10.0, 1.0)}})


def ask(text):
    return ChatRequest(model="", messages=(Message("user", text),), max_tokens=100)


@pytest.fixture
def store():
    return NeighbourhoodQuality(fakeredis.FakeRedis(), "test:", clusters=2)


def test_a_model_rated_down_in_a_cluster_stops_being_chosen_there_only(store):
    router = Router(CATALOG, quality_model=TwoClusters())
    decision = router.route(ask("alpha question"), "cost_optimal")
    assert decision.chosen_model == "budget"
    for _ in range(20):
        assert store.record_rating(decision.written().prediction, "budget", rating=1, thumbs=None)
    learned = store.snapshot()
    assert learned.correction(0, "budget") < -0.2 and learned.correction(1, "budget") == 0.0
    assert router.route(ask("alpha again"), "cost_optimal", neighbourhoods=learned).chosen_model != "budget"
    assert router.route(ask("beta question"), "cost_optimal", neighbourhoods=learned).chosen_model == "budget"


def test_failures_count_less_than_ratings_and_everything_decays(store):
    decision = Router(CATALOG, quality_model=TwoClusters()).route(ask("alpha"), "cost_optimal").written().prediction
    store.record_failure(decision, "budget", now=1000.0)
    failed = store.snapshot(now=1000.0).correction(0, "budget")
    other = NeighbourhoodQuality(fakeredis.FakeRedis(), "test:", clusters=2)
    other.record_rating(decision, "budget", rating=1, thumbs=None, now=1000.0)
    assert other.snapshot(now=1000.0).correction(0, "budget") < failed < 0
    later = store.snapshot(now=1000.0 + 20 * store.half_life).correction(0, "budget")
    assert failed < later <= 0 and abs(later) < 1e-3


def test_decisions_without_a_prediction_are_ignored(store):
    assert not store.record(None, "budget", 0.0)
    assert not store.record(PredictedQuality(weak=0.5, strong=0.6, gap=0.1, percentile=0.5, strong_gain=0.1, cluster=7,
                                             tiers={"budget": 0.3}), "budget", 0.0)
    assert store.snapshot().corrections == {}
