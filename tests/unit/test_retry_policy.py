"""What follows a failed attempt (orchestrator/core/retry_policy.py), one row per rule, and the
wait a provider asks for (orchestrator/providers/errors.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from orchestrator.core.catalog import Catalog
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.retry_policy import MAX_TRIES_PER_MODEL, Chain, next_step
from orchestrator.providers.errors import retry_after

SMALL, LARGE = "gpt-4o-mini", "claude-3-5-haiku-20241022"  # 128k and 200k tokens of context
RETRY_AFTER_LIMIT = 5.0
SAME, NEXT, GIVE_UP = "same model", "next model", "give up"


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load(None)


# (error kind, Retry-After, earlier tries of the model, seconds left, expected, wait bounds)
RULES = [
    (ErrorKind.RATE_LIMITED, 2.0, 0, 100, SAME, (2.0, 2.0)),
    (ErrorKind.RATE_LIMITED, 30.0, 0, 100, NEXT, (0, 0)),  # longer than RETRY_AFTER_LIMIT: no wait
    (ErrorKind.RATE_LIMITED, 2.0, 0, 1, NEXT, (0, 0)),  # the wait would pass the deadline
    (ErrorKind.RATE_LIMITED, None, 0, 100, SAME, (0.5, 1.5)),
    (ErrorKind.OVERLOADED, None, 0, 100, SAME, (0.25, 0.75)),
    (ErrorKind.SERVER_ERROR, None, 0, 100, SAME, (0.25, 0.75)),
    (ErrorKind.CONNECTION, None, 0, 100, SAME, (0.25, 0.75)),
    (ErrorKind.SERVER_ERROR, None, MAX_TRIES_PER_MODEL - 1, 100, NEXT, (0, 0)),  # its last try
    (ErrorKind.TIMEOUT, None, 0, 100, NEXT, (0, 0)),  # a silent model is not asked again
    (ErrorKind.AUTH, None, 0, 100, NEXT, (0, 0)),
    (ErrorKind.NOT_FOUND, None, 0, 100, NEXT, (0, 0)),
    (ErrorKind.CONTEXT_LENGTH_EXCEEDED, None, 0, 100, NEXT, (0, 0)),
    (ErrorKind.BAD_REQUEST, None, 0, 100, GIVE_UP, None),
    (ErrorKind.CONTENT_FILTERED, None, 0, 100, GIVE_UP, None),
]


@pytest.mark.parametrize(("kind", "wait", "tries", "left", "expected", "bounds"), RULES,
                         ids=[f"{r[0].value}-{r[1]}-{r[2]}-{r[3]}" for r in RULES])
def test_each_rule(catalog, kind, wait, tries, left, expected, bounds):
    chain = Chain(models=[SMALL, LARGE], deadline=time.time() + left)
    error = ProviderError(kind, "x", provider="openai", model=SMALL, retry_after=wait)
    for _ in range(tries + 1):  # the earlier tries, then this one
        chain.record(SMALL, "openai", error, 0.1)
    step = next_step(chain, error, catalog, time.time(), RETRY_AFTER_LIMIT)
    if expected == GIVE_UP:
        assert step.give_up
        return
    assert not step.give_up and chain.current == (SMALL if expected == SAME else LARGE)
    assert bounds[0] <= step.delay <= bounds[1]


def test_the_last_model_out_of_tries_gives_up(catalog):
    chain = Chain(models=[SMALL], deadline=time.time() + 100)
    error = ProviderError(ErrorKind.SERVER_ERROR, "x", provider="openai", model=SMALL)
    for _ in range(MAX_TRIES_PER_MODEL):
        chain.record(SMALL, "openai", error, 0.1)
    assert next_step(chain, error, catalog, time.time(), RETRY_AFTER_LIMIT).give_up


def test_a_context_overflow_goes_to_a_larger_context_from_the_catalog_when_the_chain_has_none(catalog):
    chain = Chain(models=[LARGE, SMALL], deadline=time.time() + 100)
    error = ProviderError(ErrorKind.CONTEXT_LENGTH_EXCEEDED, "x", provider="anthropic", model=LARGE)
    chain.record(LARGE, "anthropic", error, 0.1)
    step = next_step(chain, error, catalog, time.time(), RETRY_AFTER_LIMIT)
    assert not step.give_up
    assert catalog.get(chain.current).context_window > catalog.get(LARGE).context_window


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "250", "retry-after": "7"}, 0.25),  # the finer one wins
    ({"retry-after": "-3"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
    (None, None),
])
def test_retry_after_in_seconds_and_milliseconds(headers, seconds):
    assert retry_after(headers) == seconds


def test_retry_after_as_an_http_date():
    now = time.time()
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=UTC), usegmt=True)
    assert retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    past = format_datetime(datetime.fromtimestamp(now - 30, tz=UTC), usegmt=True)
    assert retry_after({"retry-after": past}, now=now) == 0.0


def test_a_closed_chain_never_brings_in_a_model_from_outside(catalog):
    """The caller named the models: a cut answer nobody on the list can continue, or a context
    nobody on the list can hold, ends the request instead of going to another model."""
    no_prefill = [m.model_name for m in catalog if not m.supports_assistant_prefill]
    assert no_prefill, "the bundled catalog has a model that takes no prefill"
    cut = Chain(models=[SMALL, no_prefill[0]], deadline=time.time() + 100, partial="Once upon", closed=True)
    error = ProviderError(ErrorKind.CONNECTION, "x", provider="openai", model=SMALL)
    cut.record(SMALL, "openai", error, 0.1)
    cut.record(SMALL, "openai", error, 0.1)
    assert next_step(cut, error, catalog, time.time(), RETRY_AFTER_LIMIT).give_up
    assert cut.models == [SMALL, no_prefill[0]]

    overflow = Chain(models=[LARGE, SMALL], deadline=time.time() + 100, closed=True)
    error = ProviderError(ErrorKind.CONTEXT_LENGTH_EXCEEDED, "x", provider="anthropic", model=LARGE)
    overflow.record(LARGE, "anthropic", error, 0.1)
    assert next_step(overflow, error, catalog, time.time(), RETRY_AFTER_LIMIT).give_up


def test_an_open_chain_may_still_continue_on_a_model_of_the_catalog(catalog):
    no_prefill = [m.model_name for m in catalog if not m.supports_assistant_prefill]
    cut = Chain(models=[SMALL, no_prefill[0]], deadline=time.time() + 100, partial="Once upon")
    error = ProviderError(ErrorKind.CONNECTION, "x", provider="openai", model=SMALL)
    cut.record(SMALL, "openai", error, 0.1)
    cut.record(SMALL, "openai", error, 0.1)
    step = next_step(cut, error, catalog, time.time(), RETRY_AFTER_LIMIT)
    assert not step.give_up and catalog.get(cut.current).supports_assistant_prefill


def test_under_a_budget_no_model_joins_the_chain_that_costs_more_than_was_reserved(catalog):
    """An overflow or a cut answer brings in a model from the catalog only if its worst case
    fits the reservation (Chain.affordable, set at admission)."""
    cut = Chain(models=[SMALL], deadline=time.time() + 100, partial="Once upon", affordable=[SMALL])
    error = ProviderError(ErrorKind.CONNECTION, "x", provider="openai", model=SMALL)
    cut.record(SMALL, "openai", error, 0.1)
    cut.record(SMALL, "openai", error, 0.1)
    assert next_step(cut, error, catalog, time.time(), RETRY_AFTER_LIMIT).give_up  # no prefill model fits

    overflow = Chain(models=[SMALL], deadline=time.time() + 100, affordable=[SMALL, LARGE])
    error = ProviderError(ErrorKind.CONTEXT_LENGTH_EXCEEDED, "x", provider="openai", model=SMALL)
    overflow.record(SMALL, "openai", error, 0.1)
    assert not next_step(overflow, error, catalog, time.time(), RETRY_AFTER_LIMIT).give_up
    assert overflow.current == LARGE  # the only larger context the reservation covers
