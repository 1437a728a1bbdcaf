"""The provider rate-limit schedule (orchestrator/store/provider_limits.py) on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator.core.catalog import ModelCapabilities, ModelLimits
from orchestrator.store.provider_limits import BATCH, CHAT, MARGIN, ProviderLimits, allowances


def model(rpm=None, tpm=None) -> ModelCapabilities:
    return ModelCapabilities(provider="openai", model_name="m", max_tokens=100, cost_per_1k_input=0.0,
                             cost_per_1k_output=0.0, limits=ModelLimits(rpm=rpm, tpm=tpm))


@pytest.fixture
def limits():
    return ProviderLimits(fakeredis.FakeRedis(decode_responses=True), "t:", window=2.0, batch_share=0.8)


def test_allowances_split_the_limit_between_batch_and_chat():
    lanes = allowances(ModelLimits(rpm=120, tpm=6000), window=2.0, batch_share=0.8)
    assert lanes[BATCH].requests == 3 and lanes[CHAT].requests == 1  # 4 calls per 2 s window
    assert lanes[BATCH].tokens + lanes[CHAT].tokens == 200
    assert lanes[BATCH].window == lanes[CHAT].window == 2.0


def test_a_tiny_rpm_stretches_the_window_to_one_call():
    lanes = allowances(ModelLimits(rpm=3), window=2.0, batch_share=0.8)
    assert lanes[BATCH].requests == 1 and lanes[BATCH].window == 20.0
    assert CHAT not in lanes  # nothing left for a chat lane: chat uses the batch lane's schedule


def test_calls_over_the_limit_are_booked_one_window_later(limits):
    limited = model(rpm=120)
    grants = [limits.acquire(limited, BATCH, 10, horizon=5.0, owner=f"r{i}") for i in range(7)]
    assert [g.booked for g in grants] == [True] * 7
    assert [g.delay for g in grants[:3]] == [0.0, 0.0, 0.0]
    window = 2.0 + MARGIN
    for grant in grants[3:6]:
        assert window - 0.1 <= grant.delay <= window
    assert 2 * window - 0.1 <= grants[6].delay <= 2 * window


def test_nothing_is_booked_beyond_the_horizon(limits):
    limited = model(rpm=120)
    for i in range(3):
        assert limits.acquire(limited, BATCH, 10, horizon=0.0, owner=f"r{i}").booked
    late = limits.acquire(limited, BATCH, 10, horizon=1.0, owner="late")
    assert not late.booked and late.delay > 1.0
    after = limits.acquire(limited, BATCH, 10, horizon=5.0, owner="after")
    assert after.booked and after.delay <= late.delay  # `late` took no slot


def test_the_chat_lane_is_not_taken_by_batches(limits):
    limited = model(rpm=120)
    for i in range(3):
        limits.acquire(limited, BATCH, 10, horizon=0.0, owner=f"b{i}")
    assert not limits.acquire(limited, BATCH, 10, horizon=0.0, owner="b3").booked
    chat = limits.acquire(limited, CHAT, 10, horizon=0.0, owner="c0")
    assert chat.booked and chat.delay == 0.0


def test_tokens_per_minute_make_a_large_call_wait(limits):
    limited = model(tpm=3000)  # 100 tokens per 2 s window, 80 for batches
    assert limits.acquire(limited, BATCH, 50, horizon=10.0, owner="a").delay == 0.0
    second = limits.acquire(limited, BATCH, 50, horizon=10.0, owner="b")
    assert second.booked and second.delay > 2.0  # 50 + 50 > 80: after the first leaves the window
    alone = limits.acquire(limited, BATCH, 500, horizon=10.0, owner="c")  # larger than a window: alone
    assert alone.booked and alone.delay >= second.delay + 2.0


def test_a_booking_is_claimed_once(limits):
    limited = model(rpm=120)
    for i in range(3):
        limits.acquire(limited, BATCH, 10, horizon=0.0, owner=f"r{i}")
    grant = limits.acquire(limited, BATCH, 10, horizon=5.0, owner="w")
    assert grant.booked and grant.delay > 0
    assert limits.claim("m", BATCH, grant.booking) is True
    assert limits.claim("m", BATCH, grant.booking) is False  # a redelivered task books again
    assert limits.claim("m", BATCH, "unknown") is False


def test_a_model_without_limits_has_no_lanes(limits):
    assert limits.lanes(ModelCapabilities(provider="openai", model_name="free", max_tokens=1,
                                          cost_per_1k_input=0, cost_per_1k_output=0)) == {}
