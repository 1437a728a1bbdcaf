"""A request's reservation is a true upper bound of what settlement can bill it: for every model
of the catalog, at every price tier, whatever the provider reports of cached and reasoning
tokens, and however many tokens its tokenizer makes of the prompt's text."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orchestrator.core.analysis import analyze, estimate_tokens
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.router import NoSuitableModel, Router
from orchestrator.core.routing_model import Prediction
from orchestrator.core.types import ChatRequest, Message, Usage
from sandbox.conversation import Conversation

CATALOG = Catalog.load()
TIER_BOUNDARY = 200_000  # gemini-2.5-pro's rates rise above it (genai-prices)


@st.composite
def calls(draw, model: ModelCapabilities):
    """(the input bound reserved on, max_tokens, a usage the provider may report for that call)."""
    bound = draw(st.one_of(st.integers(1, 2 * model.context_window),
                           st.integers(TIER_BOUNDARY - 2_000, TIER_BOUNDARY + 2_000)))
    max_tokens = draw(st.integers(1, model.max_tokens))
    input_tokens = draw(st.integers(0, min(bound, model.context_window)))
    output_tokens = draw(st.integers(0, max_tokens))  # reasoning tokens are among them
    usage = Usage(input_tokens, output_tokens, cached_tokens=draw(st.integers(0, input_tokens)),
                  reasoning_tokens=draw(st.integers(0, output_tokens)))
    return bound, max_tokens, usage


@pytest.mark.parametrize("name", sorted(CATALOG.models))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_reservation_covers_whatever_a_call_of_any_catalog_model_is_billed(name, data):
    model = CATALOG.get(name)
    bound, max_tokens, usage = data.draw(calls(model))
    assert model.worst_case_cost(bound, max_tokens) >= model.cost(usage), (bound, max_tokens, usage)


@given(st.integers(TIER_BOUNDARY + 1, 1_000_000), st.integers(1, 65_536))
@example(250_005, 1)  # issue #18: billed $0.6265, reserved $0.3128
def test_gemini_25_pro_is_reserved_at_its_long_context_rate(input_tokens, max_tokens):
    model = CATALOG.get("gemini-2.5-pro")
    assert model.worst_case_cost(input_tokens, max_tokens) >= model.cost(Usage(input_tokens, max_tokens))


def test_a_cached_token_dearer_than_an_uncached_one_is_reserved_at_the_dearer_rate():
    catalog = Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": {
        "odd": {"provider": "p", "context_window": 10_000,
                "prices": {"input": 1.0, "output": 2.0, "cached_input": 3.0}}}})
    model = catalog.get("odd")
    assert model.worst_case_cost(1000, 10) >= model.cost(Usage(1000, 10, cached_tokens=1000)) > model.cost(Usage(1000, 10))


def test_a_provider_refuses_a_prompt_beyond_the_context_window_so_none_is_reserved():
    model = CATALOG.get("gpt-4o")
    assert model.worst_case_cost(10 * model.context_window, 100) == model.worst_case_cost(model.context_window, 100)


# --- The input bound: the most tokens a provider's tokenizer can make of the text ----------


def bound_of(text: str, system: str = "") -> int:
    return analyze((Message("user", text),), system, 100).max_input_tokens


@pytest.mark.parametrize("text, billed_at_least", [
    ("1234567890" * 100, 1000),  # Gemini's tokenizer reads a digit a token
    ("🦜" * 100, 400),  # a rare character is a token a UTF-8 byte
    ("\ufdfa" * 10, 330),  # NFKC, applied by some tokenizers, makes 18 characters (33 bytes) of it
], ids=["digits", "emoji", "nfkc-expansion"])
def test_the_input_bound_covers_text_that_tokenizes_far_above_four_characters_a_token(text, billed_at_least):
    assert estimate_tokens(text) < billed_at_least <= bound_of(text)


def test_a_lone_surrogate_does_not_break_the_bound():
    assert bound_of("a\ud800b") >= 5


@given(st.text(), st.text(), st.sampled_from(["user", "assistant"]))
def test_the_input_bound_covers_the_sandboxs_count(text, system, role):
    counted = Conversation.of([system], [("user", "hi"), (role, text)]).input_tokens()
    assert analyze((Message("user", "hi"), Message(role, text)), system, 100).max_input_tokens >= counted


# --- The router: budget_limit and unpriced models ------------------------------------------


class Fixed:
    reference_tiers: dict[str, float] = {}

    def predict(self, last, earlier, analysis):
        return Prediction(weak=0.5, gap=0.5, percentile=0.5, strong_gain=0.2, cluster=0)


def long_request(tokens: int) -> ChatRequest:
    return ChatRequest(model="", messages=(Message("user", "x" * (4 * tokens)),), max_tokens=100)


def test_a_budget_limit_under_the_long_context_price_refuses_the_model():
    router = Router(CATALOG)
    settled = CATALOG.get("gemini-2.5-pro").cost(Usage(250_005, 100))
    assert settled > 0.35
    with pytest.raises(NoSuitableModel) as caught:
        router.route(long_request(250_000), pinned="gemini-2.5-pro", budget_limit=0.35)
    assert caught.value.http_status == 402


UNPRICED = ModelCapabilities(provider="openai", model_name="no-such-model-anywhere", max_tokens=1000,
                             cost_per_1k_input=0.001, cost_per_1k_output=0.002)


def router_of(*models: ModelCapabilities) -> Router:
    return Router(Catalog({m.model_name: m for m in models}, CATALOG.providers), quality_model=Fixed())


def test_a_model_without_a_full_price_is_not_eligible_under_a_budget():
    assert not UNPRICED.fully_priced
    router = router_of(UNPRICED, CATALOG.get("gpt-4o-mini"))
    assert router.route(long_request(10), budget_remaining=100.0).chosen_model == "gpt-4o-mini"
    with pytest.raises(NoSuitableModel, match="cannot be used under a budget: it lacks an input or output price"):
        router.route(long_request(10), pinned=UNPRICED.model_name, budget_limit=100.0)
    with pytest.raises(NoSuitableModel, match="nothing bounds its cost") as caught:
        router_of(UNPRICED).route(long_request(10), budget_remaining=100.0)
    assert caught.value.http_status == 402


def test_a_model_without_a_full_price_serves_where_no_budget_applies():
    assert router_of(UNPRICED).route(long_request(10)).chosen_model == UNPRICED.model_name


def test_a_reservation_is_raised_only_as_far_as_the_budget_covers_and_its_expiry_moves():
    import time

    import fakeredis

    from orchestrator.store.budgets import Budgets, month_of

    budgets = Budgets(fakeredis.FakeRedis(decode_responses=True), "t:")
    now = time.time()
    assert budgets.reserve("u", 1.0, "r1", 0.30, now + 60)
    assert budgets.reserve("u", 1.0, "r2", 0.50, now + 60)
    assert not budgets.raise_to("u", 1.0, "r1", 0.60, now + 60)  # 0.60 + 0.50 > 1.00: left as it was
    assert budgets.usage("u") == (0.0, pytest.approx(0.80))
    assert budgets.raise_to("u", 1.0, "r1", 0.50, now + 600)
    assert budgets.usage("u") == (0.0, pytest.approx(1.00))
    until = budgets.redis.zscore(budgets.keys("u", month_of(now))[2], "r1")
    assert until == pytest.approx(now + 600)
    assert not budgets.raise_to("u", 1.0, "gone", 0.10, now + 60)  # no reservation to raise
