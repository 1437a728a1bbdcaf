"""Input a client controls never breaks a model for others: text that cannot be encoded is
refused at the door, naming the field, and reaches no worker, provider or circuit."""

from __future__ import annotations

import json

import pytest
import requests

CHAT = "/api/v1/orchestrator/chat/execute"
LONE = "\ud800"  # an unpaired surrogate: JSON's \ud800 escape parses to it


def post(client, path: str, body: dict):
    # json.dumps escapes the surrogate as \ud800, as a hostile client would send it
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("path", "body", "field"), [
    (CHAT, {"message": f"hi {LONE}"}, "message"),
    (CHAT, {"message": "hi", "history": [{"role": "user", "content": LONE}]}, "history.0.content"),
    (CHAT, {"message": "hi", "system_prompt": LONE}, "system_prompt"),
    ("/api/v1/orchestrator/batch/submit", {"requests": [{"task": "fine"}, {"task": LONE}]}, "requests.1.task"),
])
def test_unencodable_text_is_refused_naming_the_field(client, path, body, field):
    reply = post(client, path, body)
    assert reply.status_code in (400, 422), reply.get_json()
    error = reply.get_json()["error"]
    assert field in error["message"] and "surrogate" in error["message"]


def test_the_openai_door_refuses_it_too(client):
    reply = post(client, "/v1/chat/completions", {"model": "auto", "messages": [{"role": "user", "content": LONE}]})
    assert reply.status_code == 400
    error = reply.get_json()["error"]
    assert error["param"] == "messages.0.content" and "surrogate" in error["message"]


def test_refused_text_moves_no_circuit_and_reaches_no_provider(client, services, fresh_sandbox):
    for _ in range(4):
        post(client, CHAT, {"message": LONE, "model": "claude-3-5-haiku-20241022"})
        post(client, "/v1/chat/completions",
             {"model": "claude-3-5-haiku-20241022", "messages": [{"role": "user", "content": LONE}]})
    pairs = [(m.model_name, m.provider) for m in services.catalog]
    assert set(services.circuits.snapshot(pairs).values()) == {"closed"}
    assert requests.get(f"{fresh_sandbox}/_sandbox/attempts", timeout=5).json()["attempts"] == []
