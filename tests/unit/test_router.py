"""The router on a fixed catalog: each strategy's choice, the filters, fallbacks, the brief's
table, determinism, extensibility and the refusals that say what would fit.

The strategies are tested on fixed predictions (EasyOrHard): an easy prompt, where a strong
model is predicted to add almost nothing, and a hard one, where it adds much. The shipped
model's own predictions are tested in test_routing_model.py."""

from __future__ import annotations

import pytest

from orchestrator.core.catalog import Catalog
from orchestrator.core.router import NoSuitableModel, Router
from orchestrator.core.routing_model import Prediction
from orchestrator.core.strategies import Preferences, RoutingStrategy, register_strategy
from orchestrator.core.types import ChatRequest, Message


def model(provider, price_in, price_out, quality, ttft, tps, context=128_000, capabilities=("code", "streaming")):
    return {"provider": provider, "context_window": context, "max_output_tokens": 4096,
            "capabilities": list(capabilities), "prices": {"input": price_in, "output": price_out},
            "latency": {"ttft": ttft, "tokens_per_second": tps}, "quality": {"default": quality}}


FIXED = Catalog.from_dict({
    "providers": {"a": {"kind": "openai"}, "b": {"kind": "anthropic"}, "c": {"kind": "google"}},
    "models": {
        "cheap": model("a", 0.1, 0.4, 0.70, 0.3, 200),
        "fast": model("c", 0.5, 1.5, 0.74, 0.1, 400),
        "strong": model("b", 3.0, 15.0, 0.95, 1.0, 60, capabilities=("code", "streaming", "vision")),
        "reasoner": model("a", 1.1, 4.4, 0.93, 2.5, 150, context=200_000),
        "tiny-context": model("c", 0.05, 0.1, 0.60, 0.2, 300, context=2_000),
    },
})


def ask(text: str, max_tokens: int = 500, **kwargs) -> ChatRequest:
    return ChatRequest(model="", messages=(Message("user", text),), max_tokens=max_tokens, **kwargs)


class EasyOrHard:
    """Predictions fixed by the old heuristic's band: the 5th percentile of strong-model gain
    for a simple or moderate prompt, the 95th for a complex or expert one."""

    reference_tiers: dict[str, float] = {}

    def predict(self, last, earlier, analysis):
        percentile = 0.95 if analysis.complexity_score >= 0.5 else 0.05
        return Prediction(weak=0.3, gap=percentile, percentile=percentile, strong_gain=0.4 * percentile, cluster=0)


@pytest.fixture
def router():
    return Router(FIXED, quality_model=EasyOrHard())


SIMPLE = "What is the weather like?"
EXPERT = "Analyze quantum computing's impact on cryptography"


def test_cost_optimal_takes_the_cheapest_suitable_model(router):
    assert router.route(ask(SIMPLE), "cost_optimal").chosen_model == "tiny-context"
    # An expert task rules out the cheap models that fall short of its quality.
    assert router.route(ask(EXPERT), "cost_optimal").chosen_model == "reasoner"


def test_performance_optimal_takes_the_fastest_suitable_model(router):
    assert router.route(ask(SIMPLE), "performance_optimal").chosen_model == "fast"
    # Expected time counts the answer too: the reasoner's faster decoding beats strong's first token.
    assert router.route(ask(EXPERT), "performance_optimal").chosen_model == "reasoner"


def test_quality_optimal_takes_the_best_model_whatever_it_costs(router):
    assert router.route(ask(SIMPLE), "quality_optimal").chosen_model == "strong"
    assert router.route(ask(EXPERT), "quality_optimal").chosen_model == "strong"


def test_balanced_sends_easy_tasks_to_cheap_models_and_hard_ones_to_strong_models(router):
    assert router.route(ask(SIMPLE)).chosen_model in ("cheap", "fast", "tiny-context")
    assert router.route(ask(EXPERT)).chosen_model in ("reasoner", "strong")


def test_balanced_follows_the_users_weights(router):
    frugal = Preferences(cost_sensitivity=1.0, speed_preference=0.0, quality_preference=0.1)
    picky = Preferences(cost_sensitivity=0.0, speed_preference=0.0, quality_preference=1.0)
    assert router.route(ask("Explain the advantages of renewable energy"), preferences=frugal).chosen_model in (
        "cheap", "tiny-context")
    assert router.route(ask("Explain the advantages of renewable energy"), preferences=picky).chosen_model == "strong"


def test_user_preference_puts_the_users_models_first(router):
    prefs = Preferences(preferred_models={"simple": ("reasoner",)})
    decision = router.route(ask(SIMPLE), "user_preference", preferences=prefs)
    assert decision.chosen_model == "reasoner"
    assert router.route(ask(EXPERT), "user_preference", preferences=prefs).chosen_model != "cheap"


def test_reasoning_string_estimates_and_analysis(router):
    decision = router.route(ask(EXPERT), "balanced")
    assert decision.reasoning.startswith("balanced strategy: cost: $")
    chosen = next(c for c in decision.candidates if c["model"] == decision.chosen_model)
    assert f"quality: {chosen['predicted_quality']:.2f}" in decision.reasoning
    assert decision.why in decision.reasoning and "predicted quality" in decision.why
    assert decision.prediction["percentile"] == 0.95 and len(decision.candidates) == len(FIXED.models)
    assert decision.estimated_cost > 0 and decision.estimated_time > 0 and 0 < decision.confidence <= 1
    assert decision.analysis.complexity == "expert"


def test_context_filter_drops_models_that_cannot_hold_the_prompt(router):
    long_prompt = "Summarise this report. " + "data " * 3000  # ~4,000 tokens
    models = router.route(ask(long_prompt), "cost_optimal").models
    assert "tiny-context" not in models


def test_vision_needs_a_vision_model(router):
    decision = router.route(ask("What is in this picture? ![photo](data:image/png;base64,iVBORw0KGgo=)"))
    assert decision.chosen_model == "strong" and decision.fallback_models == []


def test_budget_limit_keeps_only_models_whose_worst_case_fits(router):
    decision = router.route(ask(EXPERT, max_tokens=4000), "quality_optimal", budget_limit=0.02)
    assert decision.chosen_model == "reasoner"  # strong's worst case is 4000 * $15/M = $0.06
    assert all(name != "strong" for _, name in decision.fallback_models)


def test_no_model_fits_the_budget_says_what_would(router):
    with pytest.raises(NoSuitableModel) as caught:
        router.route(ask(SIMPLE, max_tokens=4000), budget_limit=1e-7)
    assert caught.value.http_status == 402
    assert "tiny-context" in str(caught.value) and "Raise budget_limit or lower max_tokens" in str(caught.value)


def test_no_context_large_enough_says_how_large_the_largest_is(router):
    with pytest.raises(NoSuitableModel) as caught:
        router.route(ask("word " * 1_000_000))
    assert caught.value.http_status == 413
    assert "200000 tokens (reasoner)" in str(caught.value)


def test_fallbacks_are_ranked_other_providers_first(router):
    decision = router.route(ask(EXPERT), "quality_optimal")
    assert decision.chosen_model == "strong"
    providers = [p for p, _ in decision.fallback_models]
    assert len(providers) == 3 and providers[0] != "b"
    cheap_first = router.route(ask(SIMPLE), "cost_optimal")
    first_fallback_provider = cheap_first.fallback_models[0][0]
    assert first_fallback_provider != FIXED.get(cheap_first.chosen_model).provider


def test_the_operators_default_model_is_always_a_fallback():
    decision = Router(FIXED, default_model="cheap", quality_model=EasyOrHard()).route(ask(EXPERT), "quality_optimal")
    assert decision.fallback_models[-1] == ("a", "cheap")


def test_pinned_model_is_chosen_and_others_follow(router):
    decision = router.route(ask(EXPERT), pinned="cheap")
    assert decision.chosen_model == "cheap" and "cheap" not in [m for _, m in decision.fallback_models]
    with pytest.raises(NoSuitableModel) as caught:
        router.route(ask(EXPERT), pinned="gpt-99")
    assert caught.value.http_status == 404


def test_a_pinned_model_that_cannot_take_the_request_says_why(router):
    with pytest.raises(NoSuitableModel) as caught:
        router.route(ask("What is in this picture? ![photo](data:image/png;base64,iVBORw0KGgo=)"), pinned="cheap")
    assert caught.value.http_status == 400 and caught.value.missing == ("vision",)
    assert "cannot take this request" in str(caught.value) and "vision" in str(caught.value)
    with pytest.raises(NoSuitableModel) as caught:
        router.route(ask(EXPERT, max_tokens=4000), pinned="strong", budget_limit=0.02)
    assert caught.value.http_status == 402 and "could cost more than the budget left" in str(caught.value)


def test_unavailable_models_are_routed_around_unless_nothing_else_is_left(router):
    assert router.route(ask(EXPERT), "quality_optimal", unavailable={"strong"}).chosen_model == "reasoner"
    vision = router.route(ask("Describe ![x](data:image/png;base64,AAAA)"), unavailable={"strong"})
    assert vision.chosen_model == "strong"  # the only capable model is still tried


def test_observed_failures_and_slowness_move_traffic_and_fade_with_time(router):
    import time

    from orchestrator.core.evidence import Observation

    now = time.time()
    failing = {"reasoner": Observation(samples=50, success_rate=0.2, ttft=2.5, latency=5, updated_at=now)}
    assert router.route(ask(EXPERT), "quality_optimal").chosen_model == "strong"
    assert router.route(ask(EXPERT), "cost_optimal").chosen_model == "reasoner"
    assert router.route(ask(EXPERT), "cost_optimal", observations=failing).chosen_model != "reasoner"
    stale = {"reasoner": Observation(samples=50, success_rate=0.2, ttft=2.5, latency=5, updated_at=now - 86400)}
    assert router.route(ask(EXPERT), "cost_optimal", observations=stale).chosen_model == "reasoner"
    slow = {"fast": Observation(samples=50, success_rate=1.0, ttft=9.0, latency=10, updated_at=now)}
    assert router.route(ask(SIMPLE), "performance_optimal", observations=slow).chosen_model != "fast"


def test_users_ratings_move_a_models_quality_for_the_task_type(router):
    from orchestrator.core.evidence import RatedQuality

    decision = router.route(ask(EXPERT), "cost_optimal")
    assert decision.chosen_model == "reasoner"
    task_type = decision.analysis.task_type
    panned = {"reasoner": {task_type: RatedQuality(mean=0.1, count=40)}}
    assert router.route(ask(EXPERT), "cost_optimal", feedback_quality=panned).chosen_model != "reasoner"
    other_task = {"reasoner": {"not-this-task": RatedQuality(mean=0.1, count=40)}}
    assert router.route(ask(EXPERT), "cost_optimal", feedback_quality=other_task).chosen_model == "reasoner"
    few = {"reasoner": {task_type: RatedQuality(mean=0.1, count=1)}}  # one rating barely counts
    assert router.route(ask(EXPERT), "cost_optimal", feedback_quality=few).chosen_model == "reasoner"


def test_routing_is_deterministic(router):
    decisions = {router.route(ask("Write a Python function for binary search")).as_dict().__repr__() for _ in range(20)}
    assert len(decisions) == 1


def test_a_registered_strategy_is_used_by_name(router):
    def slowest_first(candidates, context):
        return sorted(((c.seconds, c) for c in candidates), key=lambda pair: -pair[0])

    register_strategy("slowest_first", slowest_first)
    assert router.route(ask(SIMPLE), "slowest_first").chosen_model == "reasoner"
    with pytest.raises(KeyError, match="unknown routing strategy"):
        router.route(ask(SIMPLE), "no_such_strategy")


def test_the_router_can_be_subclassed_for_domain_routing():
    class DomainRouter(Router):
        def route(self, request, strategy=RoutingStrategy.BALANCED, **kwargs):
            if "diagnosis" in request.messages[-1].content:
                kwargs["pinned"] = "strong"
            return super().route(request, strategy, **kwargs)

    assert DomainRouter(FIXED, quality_model=EasyOrHard()).route(ask("Suggest a diagnosis for these symptoms")).chosen_model == "strong"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02", "💥" * 10_000])
def test_odd_input_never_crashes(router, text):
    assert router.route(ask(text)).chosen_model in FIXED
