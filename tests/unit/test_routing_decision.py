"""The routing decision's candidate list and prediction, built when read, say what the ranking said."""

from __future__ import annotations

from orchestrator.core.catalog import Catalog
from orchestrator.core.router import Router
from orchestrator.core.types import ChatRequest, Message


def test_the_decision_lists_every_ranked_candidate_and_the_prediction_when_read():
    router = Router(Catalog.load())
    decision = router.route(ChatRequest(model="", messages=(Message("user", "Prove Fermat's little theorem."),),
                                        max_tokens=200))
    listed = decision.as_dict()
    assert [c["model"] for c in listed["candidates"]] == [c.model.model_name for _, c in decision.ranked]
    assert listed["candidates"][0]["model"] == decision.chosen_model
    assert listed["prediction"] == {**decision.predicted.as_dict(),
                                    "tiers": {m: router.tiers[m] for m in decision.models}}
    assert listed["prediction"]["cluster"] >= 0
    assert {"ranked", "predicted", "tiers"}.isdisjoint(listed)
    assert all(c["tier"] == router.tiers[c["model"]] for c in listed["candidates"])


def test_an_executed_request_keeps_only_what_its_outcomes_are_measured_against():
    router = Router(Catalog.load())
    decision = router.route(ChatRequest(model="", messages=(Message("user", "Hello"),), max_tokens=200))
    kept = decision.as_dict(every_candidate=False)
    assert "candidates" not in kept and set(kept["prediction"]["tiers"]) == set(decision.models)
