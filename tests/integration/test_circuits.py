"""A circuit opens on an outage, routes around the model while open with sparing probes,
and closes again when the model recovers; every worker shares it through Redis."""

from __future__ import annotations

import time

import requests

from orchestrator.store.circuits import CircuitPolicy, Circuits
from tests.processes import wait_until

EXECUTE = "/api/v1/orchestrator/chat/execute"
PRIMARY = "gpt-4o-mini"


def primary_attempts(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": PRIMARY}, timeout=5).json()["attempts"]


def ask(client) -> dict:
    reply = client.post(EXECUTE, json={"message": "What is the weather like?", "model": PRIMARY})
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def test_outage_opens_the_circuit_and_recovery_closes_it(client, sandbox, settings):
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    outage = 4.0  # CIRCUIT_OPEN_SECONDS is 2 in the tests
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": PRIMARY, "fault": "down_for", "seconds": outage},
                  timeout=5).raise_for_status()
    started = time.time()

    # The first requests fail on the primary (tried twice each) and are served by a fallback.
    served_during_outage, answers = [], []  # a bounded number: the key's rate limit is 100 a minute
    while time.time() - started < outage and len(served_during_outage) < 30:
        answers.append(ask(client))
        served_during_outage.append(answers[-1]["model_used"])
    assert PRIMARY not in served_during_outage
    # The executor itself skipped the primary for its open circuit (not merely timing).
    assert any(a["error"] == "circuit_open" for answer in answers for a in answer["attempts"])
    outage_attempts = [a for a in primary_attempts(sandbox) if a["time"] < started + outage]
    skipped = len(served_during_outage) * 2 - len(outage_attempts)
    assert skipped > 0, "the open circuit should have spared the primary some attempts"

    # After the outage the probe succeeds and the primary serves again.
    answer = wait_until(lambda: ask(client)["model_used"] == PRIMARY, 20, "the primary to serve again", 0.2)
    assert answer
    assert ask(client)["model_used"] == PRIMARY


def test_auth_and_not_found_mark_a_model_unavailable_at_once(redis_client, settings):
    circuits = Circuits(redis_client, settings.redis_prefix, CircuitPolicy(unavailable_seconds=60))
    circuits.record("some-model", "some-provider", success=False, force_open=True)
    states = circuits.states([("some-model", "some-provider"), ("other-model", "some-provider")])
    assert states == {"some-model": "open", "other-model": "closed"}


def test_only_one_worker_gets_the_probe(redis_client, settings):
    circuits = Circuits(redis_client, settings.redis_prefix, CircuitPolicy(min_calls=2, open_seconds=0.1))
    for _ in range(2):
        circuits.record("flaky", "p", success=False)
    assert circuits.states([("flaky", "p")])["flaky"] == "open"
    wait_until(lambda: circuits.states([("flaky", "p")])["flaky"] == "probe", 5, "the cool-down")
    assert circuits.try_probe("flaky", "p") is True
    assert circuits.try_probe("flaky", "p") is False
    assert circuits.states([("flaky", "p")])["flaky"] == "half_open"
    circuits.record("flaky", "p", success=True)
    assert circuits.states([("flaky", "p")])["flaky"] == "closed"
