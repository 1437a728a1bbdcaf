"""Only errors that say something of a model move its circuit: what the request caused
(bad, filtered, too long, unencodable) never does."""

from __future__ import annotations

import fakeredis
import pytest

from orchestrator.core.catalog import Catalog
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.execution.attempt import Observer
from orchestrator.providers.errors import interrupted
from orchestrator.store.circuits import CircuitPolicy, Circuits
from orchestrator.store.stats import Stats

MODEL = "claude-3-5-haiku-20241022"


class NoAccounting:
    def circuits_opened(self, *args):
        pass


class NoNeighbourhoods:
    def record_failure(self, *args):
        raise AssertionError("a request's own fault teaches nothing of the model")


@pytest.fixture
def observer():
    client = fakeredis.FakeRedis(decode_responses=True)
    circuits = Circuits(client, "t:", CircuitPolicy(min_calls=2, failure_rate=0.5, open_seconds=30))
    return Observer(redis_client=client, stats=Stats(client, "t:"), circuits=circuits, accounting=NoAccounting(),
                    neighbourhoods=NoNeighbourhoods())


def test_text_that_cannot_be_encoded_is_the_requests_fault():
    error = interrupted(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), "anthropic", MODEL)
    assert error.kind is ErrorKind.BAD_REQUEST and not error.kind.policy.blames_model


@pytest.mark.parametrize("kind", [ErrorKind.BAD_REQUEST, ErrorKind.CONTENT_FILTERED,
                                  ErrorKind.CONTEXT_LENGTH_EXCEEDED])
def test_errors_the_request_caused_leave_the_circuits_closed(observer, kind):
    model = Catalog.load(None).get(MODEL)
    for _ in range(5):
        error = ProviderError(kind, "x", provider=model.provider, model=MODEL)
        observer.observe(model, error, 0.1)
        observer.learn_failure({}, model, error)
    states = observer.circuits.snapshot([(MODEL, model.provider)])
    assert set(states.values()) == {"closed"}


def test_a_server_error_does_open_them(observer):
    model = Catalog.load(None).get(MODEL)
    for _ in range(3):
        observer.observe(model, ProviderError(ErrorKind.SERVER_ERROR, "x", provider=model.provider, model=MODEL), 0.1)
    assert observer.circuits.snapshot([(MODEL, model.provider)])[("model", MODEL)] == "open"


@pytest.mark.parametrize("upstream", [
    "Incorrect API key provided: Bearer sk-proj-abcdefghijklmnop1234. You can find your API key at ...",
    "invalid x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv",
    "API key not valid: AIzaSyA1234567890abcdefghijklmnopqrstu",
    "authentication failed for orch-0123456789abcdefghijklmnopqrstuv",
])
def test_a_provider_error_never_carries_a_credential(upstream):
    error = ProviderError(ErrorKind.AUTH, upstream, provider="openai", model="gpt-4o-mini")
    assert "[redacted]" in error.message and str(error) == error.message
    for secret in ("sk-proj-abcdefghijklmnop1234", "sk-ant-api03", "AIzaSyA1234567890", "orch-0123456789"):
        assert secret not in error.message and secret not in repr(error.as_dict())


def test_a_circuit_probes_soon_after_opening_then_backs_off_to_the_cap():
    client = fakeredis.FakeRedis(decode_responses=True)
    circuits = Circuits(client, "t:", CircuitPolicy(min_calls=2, failure_rate=0.5, open_seconds=30,
                                                    first_probe_seconds=2))
    key = circuits.keyspace.circuit("model", "flaky")

    def open_for() -> float:
        state = client.hgetall(key)
        assert state["state"] == "open"
        return round(float(state["until"]) - float(state["opened_at"]), 3)

    for _ in range(2):
        circuits.record("flaky", "p", success=False)
    waits = [open_for()]
    for _ in range(5):  # each probe fails
        client.hset(key, "state", "half_open")
        circuits.record("flaky", "p", success=False)
        waits.append(open_for())
    assert waits == [2, 4, 8, 16, 30, 30]
    client.hset(key, "state", "half_open")
    circuits.record("flaky", "p", success=True)  # the model is back: the doubling starts over
    for _ in range(5):
        circuits.record("flaky", "p", success=False)
    assert open_for() == 2


def test_a_key_at_the_cut_is_scrubbed_before_the_message_is_shortened():
    upstream = "x" * 490 + " Incorrect API key provided: sk-proj-abcdefghijklmnop1234"
    error = ProviderError(ErrorKind.AUTH, upstream, provider="openai", model="gpt-4o-mini")
    assert "sk-" not in error.message and len(error.message) <= 500


def test_a_configured_key_of_any_shape_is_scrubbed_once_a_client_is_built_with_it():
    import dataclasses

    from orchestrator.config import load_settings
    from orchestrator.providers.registry import ProviderRegistry

    key = "corp-gateway-7f3a9c1e55b2"  # no pattern knows this shape
    settings = dataclasses.replace(load_settings(read_dotenv=False), openai_api_key=key)
    registry = ProviderRegistry(settings, Catalog.load(None))
    registry.for_model(registry.catalog.get("gpt-4o-mini"))
    error = ProviderError(ErrorKind.AUTH, f"key {key} was rejected", provider="openai", model="gpt-4o-mini")
    assert key not in error.message and "[redacted]" in error.message
