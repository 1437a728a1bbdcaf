"""Sandbox latency over HTTP: the model's time to first token and speed, and the fixed override."""

from __future__ import annotations

import dataclasses
import time

import openai
import pytest

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox
from sandbox.latency import JITTER, LATENCY_HEADER

QUICK = "quick-model"
TTFT, TOKENS_PER_SECOND, TOKENS = 0.2, 100.0, 30
SLOWEST, FASTEST = 1 + JITTER, 1 - JITTER
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def oai():
    catalog = Catalog.load()
    quick = dataclasses.replace(catalog.get("gpt-4o"), model_name=QUICK, ttft=TTFT, tokens_per_second=TOKENS_PER_SECOND)
    with BackgroundSandbox(Catalog({**catalog.models, QUICK: quick}, catalog.providers), latency_scale=1.0) as sandbox:
        yield openai.OpenAI(base_url=f"{sandbox.url}/v1", api_key="sandbox", max_retries=0, timeout=10)


def timed(function):
    started = time.monotonic()
    result = function()
    return result, time.monotonic() - started


def test_a_plain_answer_takes_the_first_token_time_plus_the_tokens_at_the_model_speed(oai):
    completion, elapsed = timed(lambda: oai.chat.completions.create(model=QUICK, messages=HI, max_tokens=TOKENS))
    assert completion.usage.completion_tokens == TOKENS
    ideal = TTFT + TOKENS / TOKENS_PER_SECOND
    assert FASTEST * ideal <= elapsed < SLOWEST * ideal + 0.5


def test_a_stream_starts_after_the_first_token_time_and_spreads_the_rest(oai):
    started = time.monotonic()
    stream = oai.chat.completions.create(model=QUICK, messages=HI, max_tokens=TOKENS, stream=True)
    arrivals = [time.monotonic() - started for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert arrivals[0] >= FASTEST * TTFT
    assert arrivals[-1] >= FASTEST * (TTFT + TOKENS / TOKENS_PER_SECOND)
    # The last 27 tokens take 0.27 s; client-side times carry the SDK's parsing delays, hence the margin.
    assert arrivals[-1] - arrivals[0] >= 0.5 * (TOKENS - 3) / TOKENS_PER_SECOND


def test_the_latency_header_fixes_the_delay_for_any_model(oai):
    _, elapsed = timed(lambda: oai.chat.completions.create(
        model="not-in-the-catalog", messages=HI, extra_headers={LATENCY_HEADER: "0.3"}
    ))
    assert 0.3 <= elapsed < 0.8


def test_a_model_outside_the_catalog_answers_at_once(oai):
    _, elapsed = timed(lambda: oai.chat.completions.create(model="not-in-the-catalog", messages=HI))
    assert elapsed < 0.5  # far below the catalog default of 1 s to the first token
