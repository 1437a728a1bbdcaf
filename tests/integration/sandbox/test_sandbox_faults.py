"""Every sandbox fault, asked for with the x-sandbox-fault header, as each real SDK sees it,
and for stream faults what the raw stream looks like.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import time
from urllib.parse import urlsplit

import anthropic
import httpx2
import openai
import pytest
import requests
from google.genai import errors as genai_errors
from google.genai import types

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox
from sandbox.conversation import Conversation
from sandbox.faults import FAULT_HEADER
from sandbox.reply import reply_to
from sandbox.streaming import MALFORMED_DATA

GPT, CLAUDE, GEMINI, TINY = "gpt-4o", "claude-3-5-haiku-20241022", "gemini-2.5-flash", "tiny-context"
HI = [{"role": "user", "content": "Hi"}]
ANSWER = reply_to(Conversation.of([], [("user", "Hi")]), 1000).text
GIVE_UP = 0.3  # seconds a client waits for a no_response


def catalog_with_a_tiny_context_window() -> Catalog:
    catalog = Catalog.load()
    tiny = dataclasses.replace(catalog.get("gpt-4o-mini"), model_name=TINY, context_window=20)
    return Catalog({**catalog.models, TINY: tiny}, catalog.providers)


@pytest.fixture(scope="module")
def sandbox():
    with BackgroundSandbox(catalog_with_a_tiny_context_window(), latency_scale=0) as server:
        yield server


def ask_openai(oai, fault: str, model: str = GPT, **options):
    return oai.chat.completions.create(model=model, messages=HI, max_tokens=1000, extra_headers={FAULT_HEADER: fault},
                                       **options)


def ask_claude(claude, fault: str, messages=HI, **options):
    return claude.messages.create(model=CLAUDE, messages=messages, max_tokens=1000, extra_headers={FAULT_HEADER: fault},
                                  **options)


def gemini_config(fault: str, timeout_ms: int = 5000) -> types.GenerateContentConfig:
    options = types.HttpOptions(headers={FAULT_HEADER: fault}, timeout=timeout_ms)
    return types.GenerateContentConfig(http_options=options)


def ask_gemini(gemini, fault: str, timeout_ms: int = 5000):
    return gemini.models.generate_content(model=GEMINI, contents="Hi", config=gemini_config(fault, timeout_ms))


def attempts(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.url}/_sandbox/attempts", timeout=5).json()["attempts"]


def raw_stream(sandbox, path: str, body: dict, fault: str) -> tuple[str, bool]:
    """The stream's body as sent, and whether it ended properly (False: the connection was cut)."""
    url = urlsplit(sandbox.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        connection.request("POST", path, json.dumps(body), {"content-type": "application/json", FAULT_HEADER: fault})
        response = connection.getresponse()
        assert response.status == 200
        try:
            return response.read().decode(), True
        except http.client.IncompleteRead as exc:
            return exc.partial.decode(), False
    finally:
        connection.close()


RAW = {  # api -> (path, body)
    "openai": ("/v1/chat/completions", {"model": GPT, "messages": HI, "stream": True}),
    "anthropic": ("/v1/messages", {"model": CLAUDE, "messages": HI, "max_tokens": 1000, "stream": True}),
    "gemini": (f"/v1beta/models/{GEMINI}:streamGenerateContent?alt=sse", {"contents": [{"parts": [{"text": "Hi"}]}]}),
}
FINAL_EVENT = {"openai": "data: [DONE]", "anthropic": "event: message_stop", "gemini": '"finishReason"'}


def data_lines(raw: str) -> list[str]:
    return [line.removeprefix("data: ") for line in raw.splitlines() if line.startswith("data: ")]


def streamed_text(api: str, raw: str) -> str:
    texts = []
    for data in data_lines(raw):
        if data == "[DONE]" or data == MALFORMED_DATA:
            continue
        event = json.loads(data)
        if api == "openai":
            texts.append(event["choices"][0]["delta"].get("content") or "")
        elif api == "anthropic" and event["type"] == "content_block_delta":
            texts.append(event["delta"]["text"])
        elif api == "gemini":
            texts.append(event["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(texts)


def test_rate_limit_with_and_without_retry_after(oai, claude, gemini, sandbox):
    with pytest.raises(openai.RateLimitError) as caught:
        ask_openai(oai, "rate_limit; retry_after=2")
    assert caught.value.code == "rate_limit_exceeded" and caught.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.RateLimitError) as caught:
        ask_openai(oai, "rate_limit")
    assert "retry-after" not in caught.value.response.headers
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask_claude(claude, "rate_limit; retry_after=1.5")
    assert caught.value.type == "rate_limit_error" and caught.value.response.headers["retry-after"] == "1.5"
    with pytest.raises(genai_errors.ClientError) as caught:
        ask_gemini(gemini, "rate_limit; retry_after=3")
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert caught.value.response.headers["retry-after"] == "3"
    assert [(a["fault"], a["status"]) for a in attempts(sandbox)] == [("rate_limit", 429)] * 4
    assert attempts(sandbox)[0]["fault_params"] == {"retry_after": 2.0}


def test_server_error(oai, claude, gemini):
    with pytest.raises(openai.InternalServerError) as caught:
        ask_openai(oai, "server_error")
    assert caught.value.status_code == 500
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask_claude(claude, "server_error")
    assert (caught.value.status_code, caught.value.type) == (500, "api_error")
    with pytest.raises(genai_errors.ServerError) as caught:
        ask_gemini(gemini, "server_error")
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")


def test_unavailable_is_503_and_529_for_anthropic(oai, claude, gemini):
    with pytest.raises(openai.InternalServerError) as caught:
        ask_openai(oai, "unavailable")
    assert caught.value.status_code == 503
    with pytest.raises(anthropic.OverloadedError) as caught:
        ask_claude(claude, "unavailable")
    assert (caught.value.status_code, caught.value.type) == (529, "overloaded_error")
    with pytest.raises(genai_errors.ServerError) as caught:
        ask_gemini(gemini, "unavailable")
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")


def test_reset_drops_the_connection_before_any_response(oai, claude, gemini, sandbox):
    with pytest.raises(openai.APIConnectionError) as caught:
        ask_openai(oai, "reset")
    assert not isinstance(caught.value, openai.APITimeoutError)
    with pytest.raises(anthropic.APIConnectionError):
        ask_claude(claude, "reset")
    with pytest.raises(httpx2.TransportError):
        ask_gemini(gemini, "reset")
    assert [(a["fault"], a["status"]) for a in attempts(sandbox)] == [("reset", None)] * 3


def test_no_response_leaves_the_client_waiting_until_it_gives_up(oai, claude, gemini, sandbox):
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask_openai(oai, "no_response", timeout=GIVE_UP)
    with pytest.raises(anthropic.APITimeoutError):
        ask_claude(claude, "no_response", timeout=GIVE_UP)
    with pytest.raises(httpx2.TimeoutException):
        ask_gemini(gemini, "no_response", timeout_ms=int(GIVE_UP * 1000))
    assert time.monotonic() - started >= 3 * GIVE_UP
    assert [(a["fault"], a["status"]) for a in attempts(sandbox)] == [("no_response", None)] * 3


def test_context_length_in_each_providers_words(oai, claude, gemini):
    with pytest.raises(openai.BadRequestError) as caught:
        ask_openai(oai, "context_length")
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "messages"
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask_claude(claude, "context_length")
    assert caught.value.type == "invalid_request_error"
    assert re.fullmatch(r"prompt is too long: \d+ tokens > 200000 maximum", caught.value.api_message)
    with pytest.raises(genai_errors.ClientError) as caught:
        ask_gemini(gemini, "context_length")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert re.fullmatch(r"The input token count \(\d+\) exceeds the maximum number of tokens allowed \(1048576\)\.",
                        caught.value.message)


def test_a_prompt_beyond_the_catalog_context_window_is_refused_without_a_fault(oai, sandbox):
    oai.chat.completions.create(model=TINY, messages=HI)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=TINY, messages=[{"role": "user", "content": "word " * 100}])
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 20 tokens" in caught.value.message
    assert [(a["fault"], a["status"]) for a in attempts(sandbox)] == [(None, 200), (None, 400)]


def test_content_filter(oai, claude, gemini):
    with pytest.raises(openai.BadRequestError) as caught:
        ask_openai(oai, "content_filter")
    assert (caught.value.code, caught.value.type) == ("content_filter", "invalid_request_error")
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask_claude(claude, "content_filter")
    assert caught.value.type == "invalid_request_error" and "Usage Policy" in caught.value.api_message
    blocked_answer = ask_gemini(gemini, "content_filter")
    assert blocked_answer.candidates[0].finish_reason == types.FinishReason.SAFETY and blocked_answer.text is None
    blocked_prompt = ask_gemini(gemini, "content_filter; block=prompt")
    assert blocked_prompt.prompt_feedback.block_reason == types.BlockedReason.SAFETY and not blocked_prompt.candidates
    streamed = list(
        gemini.models.generate_content_stream(model=GEMINI, contents="Hi", config=gemini_config("content_filter"))
    )
    assert [c.candidates[0].finish_reason for c in streamed] == [types.FinishReason.SAFETY]


def test_reject_prefill_refuses_only_a_conversation_ending_with_the_assistant(claude, sandbox):
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask_claude(claude, "reject_prefill", messages=HI + [{"role": "assistant", "content": "Sure,"}])
    assert caught.value.type == "invalid_request_error" and "prefill" in caught.value.api_message
    assert ask_claude(claude, "reject_prefill").content[0].text == ANSWER
    assert [(a["fault"], a["status"]) for a in attempts(sandbox)] == [("reject_prefill", 400), (None, 200)]


def test_slow_first_token_delays_the_first_byte(oai):
    started = time.monotonic()
    stream = ask_openai(oai, "slow_first_token; seconds=0.3", stream=True)
    first = next(iter(stream))
    assert time.monotonic() - started >= 0.3 and first.choices[0].delta.role == "assistant"
    started = time.monotonic()
    assert ask_openai(oai, "slow_first_token; seconds=0.2").choices[0].message.content == ANSWER
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("api", RAW)
def test_stream_cut_closes_the_connection_after_that_many_tokens(api, sandbox):
    raw, complete = raw_stream(sandbox, *RAW[api], "stream_cut; after_tokens=4")
    assert not complete
    assert streamed_text(api, raw).split() == ANSWER.split()[:4]
    assert FINAL_EVENT[api] not in raw and '"finish_reason":"stop"' not in raw and "message_delta" not in raw


@pytest.mark.parametrize("api", RAW)
def test_no_done_ends_the_stream_without_its_final_event(api, sandbox):
    raw, complete = raw_stream(sandbox, *RAW[api], "no_done")
    assert complete and streamed_text(api, raw) == ANSWER
    assert FINAL_EVENT[api] not in raw


@pytest.mark.parametrize("api", RAW)
def test_malformed_chunk_is_one_bad_data_line_in_a_sound_stream(api, sandbox):
    raw, complete = raw_stream(sandbox, *RAW[api], "malformed_chunk; after_tokens=2")
    lines = data_lines(raw)
    assert complete and FINAL_EVENT[api] in raw
    assert lines.count(MALFORMED_DATA) == 1 and streamed_text(api, raw) == ANSWER
    with pytest.raises(ValueError):
        json.loads(MALFORMED_DATA)


def test_what_the_sdks_make_of_stream_faults(oai, claude, gemini):
    def gemini_stream(fault):
        return list(gemini.models.generate_content_stream(model=GEMINI, contents="Hi", config=gemini_config(fault)))

    with pytest.raises(openai.APIConnectionError):
        list(ask_openai(oai, "stream_cut; after_tokens=4", stream=True))
    with pytest.raises(httpx2.RemoteProtocolError):
        list(ask_claude(claude, "stream_cut; after_tokens=4", stream=True))
    with pytest.raises(httpx2.RemoteProtocolError):
        gemini_stream("stream_cut; after_tokens=4")
    with pytest.raises(json.JSONDecodeError):
        list(ask_openai(oai, "malformed_chunk; after_tokens=2", stream=True))
    with pytest.raises(json.JSONDecodeError):
        list(ask_claude(claude, "malformed_chunk; after_tokens=2", stream=True))
    with pytest.raises(genai_errors.UnknownApiResponseError):
        gemini_stream("malformed_chunk; after_tokens=2")
    # Without the final event the SDKs end quietly: only the missing end tells.
    assert [c.choices[0].finish_reason for c in ask_openai(oai, "no_done", stream=True)][-1] == "stop"
    assert [e.type for e in ask_claude(claude, "no_done", stream=True)][-1] == "message_delta"
    assert gemini_stream("no_done")[-1].candidates[0].finish_reason is None


def test_stream_stall_pauses_after_that_many_tokens_then_finishes(oai):
    started = time.monotonic()
    stream = ask_openai(oai, "stream_stall; after_tokens=3; seconds=0.3", stream=True)
    arrivals = [(time.monotonic() - started, chunk.choices[0].delta.content or "") for chunk in stream]
    words = [len("".join(text for _, text in arrivals[: i + 1]).split()) for i in range(len(arrivals))]
    resumed = next(i for i, count in enumerate(words) if count > 3)  # the first chunk after the stall
    assert words[resumed - 1] == 3
    # Client-side times carry the SDK's parsing delays: leave them a margin.
    assert arrivals[resumed][0] >= 0.3 and arrivals[resumed][0] - arrivals[resumed - 1][0] >= 0.2
    assert "".join(text for _, text in arrivals) == ANSWER


def test_stream_faults_leave_plain_requests_alone(oai, sandbox):
    assert ask_openai(oai, "stream_cut").choices[0].message.content == ANSWER
    assert attempts(sandbox)[-1]["fault"] is None


def test_a_malformed_fault_header_is_a_bad_request_that_says_why(oai):
    with pytest.raises(openai.BadRequestError, match="sandbox: unknown fault 'explode'"):
        ask_openai(oai, "explode")
    with pytest.raises(openai.BadRequestError, match="POST /_sandbox/faults"):
        ask_openai(oai, "down_for; seconds=1")
