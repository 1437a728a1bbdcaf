"""Streaming over real HTTP (gunicorn, SSE): event order, resume after a reconnect, fallbacks
before and after the first token, the clean error when an answer cannot be finished, a
stall, and a disconnect that stops the provider call."""

from __future__ import annotations

import json

import pytest
import requests

from tests.processes import wait_until

PRIMARY = "gpt-4o-mini"


@pytest.fixture(scope="module")
def web(served):
    return f"{served}/api/v1/orchestrator"


pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def fault(sandbox: str, kind: str, model: str = PRIMARY, **params) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": kind, **params},
                  timeout=5).raise_for_status()


def events(response: requests.Response, limit: int | None = None) -> list[dict]:
    """The SSE events of a response, as {"id", "event", "data"}; comments are skipped."""
    parsed, current = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if current:
                current["data"] = json.loads(current["data"])
                parsed.append(current)
                current = {}
                if limit and len(parsed) >= limit:
                    break
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return parsed


def stream(web: str, api_key: str, **body) -> requests.Response:
    body = {"message": "Tell me about the history of tea", "model": PRIMARY, **body}
    return requests.post(f"{web}/chat/stream", json=body, stream=True, timeout=30,
                         headers={"Authorization": f"Bearer {api_key}"})


def open_streams(web: str) -> int:
    return requests.get(f"{web}/health", timeout=10).json()["streams"]["open"]


def text_of(received: list[dict]) -> str:
    return "".join(e["data"]["text"] for e in received if e["event"] == "chunk")


def test_events_come_in_order_and_add_up_to_the_final_answer(web, api_key):
    with stream(web, api_key) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        received = events(response)
    kinds = [e["event"] for e in received]
    assert kinds[0] == "decision" and kinds[-1] == "final" and set(kinds[1:-1]) == {"chunk"} and len(kinds) > 3
    final = received[-1]["data"]
    assert text_of(received) == final["response"]["content"]
    assert final["model_used"] == PRIMARY and final["response"]["usage"]["output_tokens"] > 0
    assert final["response"]["cost"] > 0 and final["attempts"][-1]["error"] is None
    assert received[0]["data"]["request_id"] == response.headers["X-Request-ID"]
    ids = [e["id"] for e in received]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


def test_a_reconnect_with_last_event_id_gets_exactly_the_missed_events(web, api_key, sandbox):
    fault(sandbox, "stream_stall", after_tokens=5, seconds=1.0)
    with stream(web, api_key) as response:
        request_id = response.headers["X-Request-ID"]
        first = events(response, limit=3)
    with requests.get(f"{web}/chat/stream/{request_id}", stream=True, timeout=30,
                      headers={"Authorization": f"Bearer {api_key}", "Last-Event-ID": first[-1]["id"]}) as resumed:
        rest = events(resumed)
    with requests.get(f"{web}/chat/stream/{request_id}", stream=True, timeout=30,
                      headers={"Authorization": f"Bearer {api_key}"}) as replay:
        everything = events(replay)
    assert [e["id"] for e in first + rest] == [e["id"] for e in everything]
    assert rest[-1]["event"] == "final"


def test_a_fallback_before_the_first_token_is_invisible(web, api_key, sandbox):
    fault(sandbox, "server_error")
    with stream(web, api_key) as response:
        received = events(response)
    assert [e["event"] for e in received].count("error") == 0
    final = received[-1]["data"]
    assert final["model_used"] != PRIMARY
    assert text_of(received) == final["response"]["content"]


def test_a_cut_stream_is_continued_by_a_model_that_takes_a_prefill(web, api_key, sandbox):
    fault(sandbox, "stream_cut", after_tokens=5)
    with stream(web, api_key) as response:
        received = events(response)
    final = received[-1]
    assert final["event"] == "final", final
    continued_by = final["data"]["model_used"]
    assert continued_by != PRIMARY
    text = text_of(received)
    assert text == final["data"]["response"]["content"]
    (continuation,) = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": continued_by},
                                   timeout=5).json()["attempts"]
    prefill = continuation["messages"][-1]
    assert prefill["role"] == "assistant" and text.startswith(prefill["content"]) and len(text) > len(prefill["content"])


def test_an_answer_that_cannot_be_finished_ends_with_a_clear_error(web, api_key, sandbox):
    fault(sandbox, "stream_cut", model="*", after_tokens=3)
    with stream(web, api_key) as response:
        received = events(response)
    assert received[-1]["event"] == "error" and "final" not in [e["event"] for e in received]
    error = received[-1]["data"]
    assert error["code"] == "incomplete_answer" and "incomplete" in error["message"]


def test_a_stall_past_the_idle_timeout_falls_over_mid_stream(web, api_key, sandbox):
    fault(sandbox, "stream_stall", after_tokens=4, seconds=5)
    with stream(web, api_key, first_token_timeout=0.5) as response:
        received = events(response)
    final = received[-1]["data"]
    assert received[-1]["event"] == "final"
    assert final["attempts"][0]["error"] == "timeout"
    assert text_of(received) == final["response"]["content"]


def test_a_client_that_disconnects_stops_the_provider_call(web, api_key, sandbox):
    fault(sandbox, "slow_stream", tokens_per_second=3)
    with stream(web, api_key, max_tokens=1000) as response:
        request_id = response.headers["X-Request-ID"]
        events(response, limit=2)
        assert open_streams(web) == 1

    def provider_call_ended():
        (attempt,) = requests.get(f"{sandbox}/_sandbox/attempts", params={"model": PRIMARY},
                                  timeout=5).json()["attempts"]
        return attempt["ended"] == "client_closed"

    wait_until(provider_call_ended, 25, "the worker to close the upstream stream", interval=0.2)
    assert open_streams(web) == 0
    status = requests.get(f"{web}/chat/stream/{request_id}", stream=True, timeout=30,
                          headers={"Authorization": f"Bearer {api_key}"})
    error = events(status)[-1]
    assert error["event"] == "error" and error["data"]["code"] == "cancelled"


def test_another_user_cannot_resume_your_stream(web, api_key, services):
    with stream(web, api_key) as response:
        request_id = response.headers["X-Request-ID"]
        events(response)
    _, other = services.users.create("someone else")
    stranger = requests.get(f"{web}/chat/stream/{request_id}", timeout=30,
                            headers={"Authorization": f"Bearer {other.key}"})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"
    owner = requests.get(f"{web}/chat/stream/{request_id}", timeout=30, headers={"Authorization": f"Bearer {api_key}"})
    assert owner.status_code == 200 and "event: final" in owner.text
