"""Sandbox latency: catalog speed times the scale, jittered, or a fixed override."""

import pytest

from orchestrator.core.catalog import Catalog
from sandbox.latency import IMMEDIATE, JITTER, Latency, Pacing, parse_latency_header

CATALOG = Catalog.load()


def test_pacing_follows_the_catalog_within_the_jitter():
    spec = CATALOG.get("gpt-4o")
    latency = Latency(CATALOG, scale=2.0, seed=1)
    for _ in range(50):
        pacing = latency.pacing("gpt-4o", reasoning_tokens=0)
        factor = pacing.first_token / (2.0 * spec.ttft)
        assert 1 - JITTER <= factor <= 1 + JITTER
        assert pacing.per_token == pytest.approx(factor * 2.0 / spec.tokens_per_second)


def test_jitter_is_reproducible_from_the_seed():
    first = [Latency(CATALOG, 1.0, seed=7).pacing("gpt-4o", 0) for _ in range(3)]
    assert first == [Latency(CATALOG, 1.0, seed=7).pacing("gpt-4o", 0) for _ in range(3)]


def test_reasoning_tokens_come_before_the_first_visible_token():
    plain = Latency(CATALOG, 1.0, seed=3).pacing("o3-mini", 0)
    reasoning = Latency(CATALOG, 1.0, seed=3).pacing("o3-mini", 150)
    assert reasoning.first_token == pytest.approx(plain.first_token + 150 * plain.per_token)


def test_scale_zero_and_unknown_models_answer_at_once():
    assert Latency(CATALOG, 0.0).pacing("gpt-4o", 100) == IMMEDIATE
    assert Latency(CATALOG, 1.0).pacing("not-in-catalog", 0) == IMMEDIATE


def test_a_fixed_latency_replaces_the_model_speed():
    assert Latency(CATALOG, 1.0).pacing("gpt-4o", 10, fixed=1.5) == Pacing(1.5, 0.0)
    assert Pacing(1.0, 0.1).total(10) == pytest.approx(2.0)


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_bad_latency_headers_are_refused(value):
    with pytest.raises(ValueError):
        parse_latency_header(value)

