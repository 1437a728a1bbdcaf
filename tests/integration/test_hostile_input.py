"""Input a client controls never breaks a model for others: text that cannot be encoded is
refused at the door, naming the field, and reaches no worker, provider or circuit."""

from __future__ import annotations

import io
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


DEEP = '{"message": "hi", "history": ' + "[" * 50_000 + "]" * 50_000 + "}"
HUGE = '{"message": "hi", "max_tokens": ' + "9" * 5_000 + "}"


@pytest.mark.parametrize("path", [CHAT, "/api/v1/orchestrator/batch/submit", "/v1/chat/completions"])
@pytest.mark.parametrize("body", [DEEP, HUGE], ids=["nested-50000-deep", "integer-5000-digits"])
def test_bodies_json_cannot_hold_get_a_400_not_a_500(client, path, body):
    reply = client.post(path, data=body, content_type="application/json")
    assert reply.status_code == 400, reply.get_data(as_text=True)[:300]
    error = reply.get_json()["error"]
    assert error["code"] == "invalid_json"
    assert client.get("/api/v1/orchestrator/health/live").status_code == 200


def test_a_chunked_body_over_the_limit_is_too_large_not_invalid(client, settings):
    body = json.dumps({"message": "x" * (settings.max_body_bytes + 10)}).encode()
    reply = client.post(CHAT, input_stream=io.BytesIO(body), content_type="application/json",
                        headers={"Transfer-Encoding": "chunked"}, environ_base={"wsgi.input_terminated": True})
    assert reply.status_code == 413, reply.get_data(as_text=True)[:300]
    assert reply.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("path, shape", [("/api/v1/orchestrator/chat/execute", "code"), ("/v1/chat/completions", "type")])
def test_oversized_headers_and_urls_get_the_json_error_shape_not_gunicorns_page(served, path, shape):
    for size in (20_000, 60_000):  # over the API's limit; the second near gunicorn's own
        answer = requests.post(f"{served}{path}", json={}, headers={"X-Padding": "a" * size}, timeout=10)
        assert answer.status_code == 431 and answer.headers["Content-Type"].startswith("application/json")
        assert shape in answer.json()["error"] and "headers" in answer.json()["error"]["message"]
    long_url = requests.post(f"{served}{path}?q={'b' * 5000}", json={}, timeout=10)
    assert long_url.status_code == 414 and "URL" in long_url.json()["error"]["message"]
