"""The sandbox's control endpoints: fault rules (counted, for any model, outages) and the attempt log."""

from __future__ import annotations

import anthropic
import openai
import pytest
import requests
from google.genai import errors as genai_errors
from google.genai import types

from sandbox.faults import FAULT_HEADER
from tests.processes import wait_until

GPT, CLAUDE, GEMINI = "gpt-4o", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
HI = [{"role": "user", "content": "Hi"}]


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


def add_rule(sandbox, **rule) -> dict:
    reply = control(sandbox, "POST", "faults", json=rule)
    assert reply.status_code == 201, reply.text
    return reply.json()


def attempts(sandbox, model: str | None = None) -> list[dict]:
    return control(sandbox, "GET", "attempts", params={"model": model} if model else {}).json()["attempts"]


def ask(oai, model: str = GPT, **options):
    return oai.chat.completions.create(model=model, messages=HI, **options)


def test_500_once_then_healthy(oai, sandbox):
    rule = add_rule(sandbox, model=GPT, fault="server_error", count=1)
    assert rule == {"id": rule["id"], "model": GPT, "fault": "server_error", "params": {}, "count": 1}
    assert control(sandbox, "GET", "faults").json() == {"rules": [rule]}
    with pytest.raises(openai.InternalServerError):
        ask(oai)
    assert ask(oai).choices[0].message.content
    assert control(sandbox, "GET", "faults").json() == {"rules": []}
    assert [(a["fault"], a["status"]) for a in attempts(sandbox, GPT)] == [("server_error", 500), (None, 200)]


def test_a_rule_for_one_model_leaves_the_others_alone(oai, sandbox):
    add_rule(sandbox, model="gpt-4o-mini", fault="unavailable")
    assert ask(oai).choices[0].message.content
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(oai, "gpt-4o-mini")
    assert [a["status"] for a in attempts(sandbox, "gpt-4o-mini")] == [503, 503]
    assert [a["status"] for a in attempts(sandbox, GPT)] == [200]


def test_a_rule_for_any_model_reaches_every_format(oai, claude, gemini, sandbox):
    add_rule(sandbox, model="*", fault="rate_limit", retry_after=4)
    with pytest.raises(openai.RateLimitError):
        ask(oai)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=CLAUDE, messages=HI, max_tokens=10)
    assert caught.value.response.headers["retry-after"] == "4"
    with pytest.raises(genai_errors.ClientError):
        gemini.models.generate_content(model=GEMINI, contents="Hi")
    assert [(a["api"], a["fault"], a["fault_params"]) for a in attempts(sandbox)] == [
        ("openai", "rate_limit", {"retry_after": 4.0}),
        ("anthropic", "rate_limit", {"retry_after": 4.0}),
        ("gemini", "rate_limit", {"retry_after": 4.0}),
    ]


def test_the_header_wins_over_a_rule(oai, sandbox):
    add_rule(sandbox, model=GPT, fault="server_error", count=1)
    with pytest.raises(openai.RateLimitError):
        ask(oai, extra_headers={FAULT_HEADER: "rate_limit"})
    assert control(sandbox, "GET", "faults").json()["rules"][0]["count"] == 1


def test_a_stream_fault_rule_waits_for_a_stream(oai, sandbox):
    add_rule(sandbox, model=GPT, fault="stream_cut", after_tokens=2, count=1)
    assert ask(oai).choices[0].message.content
    with pytest.raises(openai.APIConnectionError):
        list(ask(oai, stream=True))
    assert [(a["stream"], a["fault"]) for a in attempts(sandbox)] == [(False, None), (True, "stream_cut")]
    assert control(sandbox, "GET", "faults").json() == {"rules": []}


def test_down_for_answers_503_from_its_first_request_until_the_time_is_up(oai, sandbox):
    add_rule(sandbox, model=GPT, fault="down_for", seconds=0.4)

    def healthy():
        try:
            return ask(oai)
        except openai.InternalServerError as exc:
            assert exc.status_code == 503
            return None

    wait_until(healthy, timeout=5, what="the outage to end", interval=0.05)
    log = attempts(sandbox, GPT)
    assert [a["fault"] for a in log] == ["down_for"] * (len(log) - 1) + [None]
    assert {a["status"] for a in log[:-1]} == {503} and log[-1]["status"] == 200
    assert 0.4 <= log[-1]["time"] - log[0]["time"] < 1.5
    assert control(sandbox, "GET", "faults").json() == {"rules": []}


def test_down_for_is_529_for_anthropic(claude, sandbox):
    add_rule(sandbox, model=CLAUDE, fault="down_for", seconds=30)
    with pytest.raises(anthropic.OverloadedError):
        claude.messages.create(model=CLAUDE, messages=HI, max_tokens=10)


def test_clearing_the_rules(oai, sandbox):
    add_rule(sandbox, fault="server_error")
    add_rule(sandbox, model=GPT, fault="unavailable")
    assert control(sandbox, "DELETE", "faults").json() == {"cleared": 2}
    assert ask(oai).choices[0].message.content


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"model": GPT}, '"fault"'),
        ({"fault": "explode"}, "unknown fault"),
        ({"fault": "rate_limit", "wait": 3}, "takes ['retry_after']"),
        ({"fault": "server_error", "count": 0}, '"count"'),
    ],
)
def test_a_bad_rule_is_refused_with_the_reason(sandbox, rule, message):
    reply = control(sandbox, "POST", "faults", json=rule)
    assert reply.status_code == 400 and message in reply.json()["error"]


def test_the_attempt_log_keeps_each_normalised_conversation_in_order(oai, claude, gemini, sandbox):
    oai.chat.completions.create(model=GPT, messages=[{"role": "system", "content": "Be brief"}] + HI)
    claude.messages.create(model=CLAUDE, system="Be brief", messages=HI, max_tokens=10, stream=True).close()
    gemini.models.generate_content(
        model=GEMINI, contents=[types.Content(role="user", parts=[types.Part(text="Hi")]),
                                types.Content(role="model", parts=[types.Part(text="Hello")])],
        config=types.GenerateContentConfig(system_instruction="Be brief"),
    )
    log = attempts(sandbox)
    assert [(a["api"], a["model"], a["stream"], a["status"]) for a in log] == [
        ("openai", GPT, False, 200), ("anthropic", CLAUDE, True, 200), ("gemini", GEMINI, False, 200),
    ]
    assert {a["system"] for a in log} == {"Be brief"}
    assert log[0]["messages"] == log[1]["messages"] == HI
    assert log[2]["messages"] == HI + [{"role": "assistant", "content": "Hello"}]
    assert log[0]["time"] <= log[1]["time"] <= log[2]["time"] and all(a["request_id"] for a in log)
    assert [a["api"] for a in attempts(sandbox, CLAUDE)] == ["anthropic"]
    assert control(sandbox, "DELETE", "attempts").json() == {"cleared": 3}
    assert attempts(sandbox) == []


def test_a_request_that_cannot_be_read_is_logged_too(sandbox):
    requests.post(f"{sandbox.url}/v1/models/{GEMINI}:generateContent", data=b"not json", timeout=5)
    [attempt] = attempts(sandbox)
    assert (attempt["api"], attempt["model"], attempt["status"], attempt["messages"]) == ("gemini", GEMINI, 400, [])
