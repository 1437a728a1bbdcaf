"""The OpenAI-compatible endpoint (/v1) driven by the official openai SDK over real HTTP
(gunicorn, the session's worker and sandbox): answers, streams, errors as the SDK's
exception classes, routing headers, strategies, fallbacks and explicit model orders."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx2
import openai
import pytest
import requests

from api import create_app
from orchestrator.runtime.services import Services
from sandbox.conversation import Conversation
from sandbox.reply import Reply, reply_to
from tests.processes import wait_until

PRIMARY = "gpt-4o-mini"
QUESTION = [{"role": "user", "content": "Tell me about the history of tea"}]


@pytest.fixture(scope="module")
def web(served):
    """The base URL an OpenAI client is given."""
    return f"{served}/v1"


pytestmark = pytest.mark.usefixtures("fresh_sandbox")


@pytest.fixture
def client(web, api_key):
    # No SDK retries: each test sees the first answer (and a 429 is not waited out).
    with openai.OpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
        yield client


@pytest.fixture
def catalog(app):
    return app.extensions["orchestrator"].catalog


def fault(sandbox: str, kind: str, model: str = PRIMARY, **params) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": kind, **params},
                  timeout=5).raise_for_status()


def attempts(sandbox: str, model: str) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": model}, timeout=5).json()["attempts"]


def sandbox_reply(attempt: dict, max_tokens: int, stop: tuple[str, ...] = (), reasoning: bool = False) -> Reply:
    """What the sandbox answers to the conversation an attempt carried."""
    return reply_to(conversation(attempt), max_tokens, stop, reasoning)


def conversation(attempt: dict) -> Conversation:
    return Conversation.of([attempt["system"]] if attempt["system"] else [],
                           [(m["role"], m["content"]) for m in attempt["messages"]])


def raw_stream(web: str, api_key: str, **body) -> list[str]:
    """The `data:` payloads of a streamed answer, as sent."""
    response = requests.post(f"{web}/chat/completions", json={"stream": True, **body}, stream=True, timeout=30,
                             headers={"Authorization": f"Bearer {api_key}"})
    with response:
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        return [line[len("data: "):] for line in response.iter_lines(decode_unicode=True) if line.startswith("data: ")]


def test_the_sync_client_gets_the_answer_to_the_whole_conversation(client, sandbox, app):
    turns = [
        {"role": "user", "content": "Name a tea."},
        {"role": "assistant", "content": "Green tea."},
        {"role": "user", "content": "And another one?"},
    ]
    messages = [{"role": "system", "content": "You are terse."}, turns[0],
                {"role": "developer", "content": "Answer in English."}, *turns[1:]]
    completion = client.chat.completions.create(model=PRIMARY, messages=messages, temperature=0.2, top_p=0.9,
                                                max_tokens=300, user="end-user-7")

    (attempt,) = attempts(sandbox, PRIMARY)
    assert attempt["system"] == "You are terse.\nAnswer in English." and attempt["messages"] == turns
    reply = sandbox_reply(attempt, 300)
    choice = completion.choices[0]
    assert choice.message.content == reply.text and choice.message.role == "assistant" and choice.index == 0
    assert choice.finish_reason == reply.finish == "stop"
    assert completion.model == PRIMARY and completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-req_") and completion.created > 0
    assert completion.usage.completion_tokens == reply.tokens
    assert completion.usage.prompt_tokens == conversation(attempt).input_tokens()
    assert completion.usage.total_tokens == reply.tokens + completion.usage.prompt_tokens
    record = app.extensions["orchestrator"].requests.get(completion.id.removeprefix("chatcmpl-"))
    assert record["status"] == "completed" and record["user"] == "end-user-7"


def test_max_completion_tokens_cuts_the_answer_with_finish_reason_length(client, sandbox):
    completion = client.chat.completions.create(model=PRIMARY, messages=QUESTION, max_completion_tokens=5)
    reply = sandbox_reply(attempts(sandbox, PRIMARY)[0], 5)
    assert reply.finish == "length" and completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == reply.text and completion.usage.completion_tokens == 5


def test_the_async_client_with_text_parts_stop_sequences_and_a_stream(web, api_key, sandbox):
    parts = [{"type": "text", "text": "Tell me about tea."}, {"type": "text", "text": "Keep it short."}]

    async def ask():
        async with openai.AsyncOpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
            whole = await client.chat.completions.create(model=PRIMARY, messages=[{"role": "user", "content": parts}])
            stop = whole.choices[0].message.content.split()[3]
            cut = await client.chat.completions.create(model=PRIMARY, messages=[{"role": "user", "content": parts}],
                                                       stop=[stop])
            stream = await client.chat.completions.create(model=PRIMARY, messages=[{"role": "user", "content": parts}],
                                                          stream=True)
            streamed = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
            return whole, stop, cut, streamed

    whole, stop, cut, streamed = asyncio.run(ask())
    first, second, _ = attempts(sandbox, PRIMARY)
    assert first["messages"] == [{"role": "user", "content": "Tell me about tea.\nKeep it short."}]
    assert whole.choices[0].message.content == sandbox_reply(first, 2048).text == streamed
    expected = sandbox_reply(second, 2048, (stop,))
    assert expected.finish == "stop_sequence" and cut.choices[0].message.content == expected.text
    assert cut.choices[0].finish_reason == "stop" and stop not in expected.text


def test_a_stream_adds_up_to_the_answer_and_ends_with_usage(client, sandbox, web, api_key):
    chunks = list(client.chat.completions.create(model=PRIMARY, messages=QUESTION, max_tokens=400, stream=True,
                                                 stream_options={"include_usage": True}))
    reply = sandbox_reply(attempts(sandbox, PRIMARY)[0], 400)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.text and sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    finishing, usage = chunks[-2], chunks[-1]
    assert finishing.choices[0].finish_reason == "stop" and finishing.model == PRIMARY
    assert usage.choices == [] and usage.usage.completion_tokens == reply.tokens
    assert usage.usage.prompt_tokens > 0 and all(c.usage is None for c in chunks[:-1])

    sent = raw_stream(web, api_key, model=PRIMARY, messages=QUESTION, max_tokens=400)
    assert sent[-1] == "[DONE]" and "".join(
        json.loads(d)["choices"][0]["delta"].get("content") or "" for d in sent[:-1]) == reply.text

    # The SDK's own accumulator rebuilds the same completion from the chunks.
    with client.chat.completions.stream(model=PRIMARY, messages=QUESTION, max_tokens=400) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == reply.text and final.choices[0].finish_reason == "stop"


def test_the_routing_headers_report_who_answered_at_what_cost(client, catalog):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=QUESTION)
    completion = raw.parse()
    headers = raw.headers
    assert headers["x-orchestrator-model"] == completion.model
    assert headers["x-orchestrator-provider"] == catalog.get(completion.model).provider
    assert float(headers["x-orchestrator-cost"]) > 0
    assert headers["x-orchestrator-attempts"] == "1" and headers["x-orchestrator-strategy"] == "balanced"
    assert completion.id == f"chatcmpl-{headers['x-request-id']}"


def test_auto_cost_optimal_picks_the_cheapest_suitable_model(client, catalog):
    # A plain question: every model is good enough, so the cheapest one in the catalog must answer.
    cheapest = min(catalog, key=lambda m: (m.cost_per_1k_input + m.cost_per_1k_output, m.model_name))
    raw = client.chat.completions.with_raw_response.create(model="auto:cost_optimal",
                                                           messages=[{"role": "user", "content": "Hello there"}])
    assert raw.parse().model == cheapest.model_name and raw.headers["x-orchestrator-strategy"] == "cost_optimal"
    best = client.chat.completions.create(model="auto:quality_optimal", messages=[{"role": "user", "content": "Hi"}])
    assert catalog.get(best.model).cost_per_1k_output > cheapest.cost_per_1k_output


def test_a_failing_pinned_model_falls_back_and_the_model_field_says_so(client, sandbox, catalog):
    fault(sandbox, "server_error")
    raw = client.chat.completions.with_raw_response.create(model=PRIMARY, messages=QUESTION, max_tokens=300)
    completion = raw.parse()
    assert completion.model != PRIMARY and raw.headers["x-orchestrator-model"] == completion.model
    failed = attempts(sandbox, PRIMARY)
    assert failed and all(a["fault"] == "server_error" for a in failed)
    assert int(raw.headers["x-orchestrator-attempts"]) == len(failed) + 1
    (answered,) = attempts(sandbox, completion.model)
    reasoning = catalog.get(completion.model).reasoning_model
    assert completion.choices[0].message.content == sandbox_reply(answered, 300, reasoning=reasoning).text


def test_an_explicit_models_list_is_the_order_of_fallbacks(client, sandbox):
    first, second = "claude-3-5-haiku-20241022", "gemini-2.5-flash"
    fault(sandbox, "server_error", model=first)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, extra_body={"models": [first, second]})
    assert raw.parse().model == second
    assert attempts(sandbox, first) and not attempts(sandbox, PRIMARY)


def test_an_answer_that_cannot_be_finished_raises_in_the_sdk_and_never_ends_cleanly(client, sandbox, web, api_key):
    fault(sandbox, "stream_cut", model="*", after_tokens=3)
    received = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in client.chat.completions.create(model=PRIMARY, messages=QUESTION, stream=True):
            received.append(chunk)
    assert received and "incomplete" in raised.value.message
    assert raised.value.body["code"] == "incomplete_answer" and raised.value.body["type"] == "api_error"
    assert all(c.choices[0].finish_reason is None for c in received)

    sent = raw_stream(web, api_key, model=PRIMARY, messages=QUESTION)
    assert "[DONE]" not in sent and json.loads(sent[-1])["error"]["code"] == "incomplete_answer"


def test_an_error_before_the_first_token_of_a_stream_is_an_http_status(client, sandbox):
    fault(sandbox, "content_filter")
    with pytest.raises(openai.BadRequestError) as raised:  # OpenAI's answer to a filtered prompt
        client.chat.completions.create(model=PRIMARY, messages=QUESTION, stream=True)
    assert raised.value.type == "invalid_request_error" and raised.value.code == "content_filter"
    assert raised.value.response.headers["x-request-id"].startswith("req_")


def test_a_client_that_leaves_a_stream_stops_the_provider_call(client, sandbox):
    fault(sandbox, "slow_stream", tokens_per_second=3)
    stream = client.chat.completions.create(model=PRIMARY, messages=QUESTION, max_tokens=1000, stream=True)
    next(stream), next(stream)
    stream.close()

    def provider_call_ended():
        (attempt,) = attempts(sandbox, PRIMARY)
        return attempt["ended"] == "client_closed"

    wait_until(provider_call_ended, 25, "the worker to close the upstream stream", interval=0.2)


def test_errors_surface_as_the_sdk_exception_classes(client, web):
    with pytest.raises(openai.AuthenticationError) as raised:
        openai.OpenAI(base_url=web, api_key="orch-not-a-key", max_retries=0).models.list()
    assert raised.value.code == "invalid_api_key" and raised.value.type == "authentication_error"

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=PRIMARY, messages=QUESTION,
                                       tools=[{"type": "function", "function": {"name": "look it up"}}])
    assert raised.value.param == "tools[0].function.name" and raised.value.code == "invalid_value"

    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-17-ultra", messages=QUESTION)
    assert raised.value.code == "model_not_found" and raised.value.param == "model"


def test_a_spent_budget_is_insufficient_quota(web, app, redis_client):
    _, issued = app.extensions["orchestrator"].users.create("thrifty", monthly_budget=0.000001)
    with openai.OpenAI(base_url=web, api_key=issued.key, max_retries=0) as client:
        for stream in (False, True):  # a streamed request is refused before its stream starts
            with pytest.raises(openai.RateLimitError) as raised:  # as OpenAI answers an exhausted quota
                client.chat.completions.create(model=PRIMARY, messages=QUESTION, stream=stream)
            assert raised.value.status_code == 429 and raised.value.response.headers["x-should-retry"] == "false"
            assert raised.value.type == raised.value.code == "insufficient_quota"


def test_the_rate_limit_reaches_the_sdk_as_a_rate_limit_error(settings, api_key):
    limited = create_app(Services.from_settings(dataclasses.replace(settings, rate_limit_requests=2)))
    transport = httpx2.WSGITransport(app=limited)
    with openai.OpenAI(base_url="http://orchestrator/v1", api_key=api_key, max_retries=0,
                       http_client=httpx2.Client(transport=transport)) as client:
        client.models.list()
        client.models.list()
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=PRIMARY, messages=QUESTION)
    assert raised.value.code == "rate_limit_exceeded"
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= settings.rate_limit_window


def test_models_lists_auto_the_strategies_and_the_catalog(client, catalog):
    ids = [m.id for m in client.models.list()]
    strategies = ["auto:cost_optimal", "auto:quality_optimal", "auto:performance_optimal", "auto:balanced",
                  "auto:user_preference"]
    assert ids[0] == "auto" and set(strategies) <= set(ids)
    assert set(ids) == {"auto", *strategies, *(m.model_name for m in catalog), *catalog.embeddings}
    assert client.models.retrieve(PRIMARY).owned_by == "openai"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17-ultra")


USER = {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(
    "body, status, param, code",
    [
        ({"model": "auto", "messages": [USER], "seed": "seven"}, 400, "seed", "invalid_type"),
        ({"model": "auto", "messages": [USER], "response_format": {"type": "xml"}}, 400, "response_format.type",
         "invalid_value"),
        ({"model": "auto", "messages": [USER], "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "nope"}}}}, 400, "response_format.json_schema.schema",
         "invalid_json_schema"),
        ({"model": "auto", "messages": [USER], "presence_penalty": 3}, 400, "presence_penalty", "invalid_value"),
        ({"model": "auto", "messages": [USER], "functions": [{"name": "f"}]}, 400, "functions",
         "unsupported_parameter"),
        ({"model": "auto", "messages": [USER], "tool_choice": "required"}, 400, "tool_choice", "invalid_value"),
        ({"model": "auto", "messages": [USER], "tool_choice": {"type": "function", "function": "f"}}, 400,
         "tool_choice.function.name", "invalid_value"),
        ({"model": "auto", "messages": [USER], "tools": [{"type": "function", "function": {
            "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "nope"}}}}}]}, 400,
         "tools[0].function.parameters", "invalid_function_parameters"),
        ({"model": "auto", "messages": [USER], "top_logprobs": 3}, 400, "top_logprobs", "invalid_value"),
        ({"model": "auto", "messages": [USER], "modalities": ["text", "audio"]}, 400, "modalities",
         "unsupported_value"),
        ({"model": "auto", "messages": [USER], "n": 2, "stream": True}, 400, "n", "unsupported_value"),
        ({"model": "auto", "messages": [USER], "n": 9}, 400, "n", "invalid_value"),
        ({"model": "auto", "messages": [USER], "temperature": "warm"}, 400, "temperature", "invalid_type"),
        ({"model": "auto", "messages": [USER], "temperature": 2.5}, 400, "temperature", "invalid_value"),
        ({"model": "auto", "messages": [USER], "max_tokens": True}, 400, "max_tokens", "invalid_type"),
        ({"model": "auto", "messages": [USER], "stop": ["a", 1]}, 400, "stop", "invalid_type"),
        ({"model": "auto", "messages": [USER], "stream_options": {"include_usage": True}}, 400, "stream_options",
         "invalid_value"),
        ({"model": "auto", "messages": []}, 400, "messages", "invalid_value"),
        ({"model": "auto", "messages": [USER, {"role": "assistant", "content": "Hello"}]}, 400, "messages",
         "invalid_value"),
        ({"model": "auto", "messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}]}, 400,
         "messages", "invalid_value"),
        ({"model": "auto", "messages": [USER, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]},
            {"role": "tool", "content": "42", "tool_call_id": "c1"}]}, 400,
         "messages[1].tool_calls[0].function.arguments", "invalid_value"),
        ({"model": "auto", "messages": [{"role": "user", "content": "Hi", "name": "ann smith"}]}, 400,
         "messages[0].name", "invalid_value"),
        ({"model": "auto", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}, 400,
         "messages[0].content[0].type", "unsupported_content"),
        ({"model": "auto", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}, 400,
         "messages[0].content[0].image_url.url", "invalid_image_format"),
        ({"model": "auto", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]}]}, 400,
         "messages[0].content[0].image_url.url", "invalid_image_url"),
        ({"model": "auto", "messages": [{"role": "user", "content": "  "}]}, 400, "messages[0].content",
         "invalid_value"),
        ({"messages": [USER]}, 400, "model", "missing_required_parameter"),
        ({"model": "auto:cheapest", "messages": [USER]}, 404, "model", "model_not_found"),
        ({"model": "auto", "models": [PRIMARY, "gpt-17-ultra"], "messages": [USER]}, 404, "models",
         "model_not_found"),
    ],
)
def test_what_is_not_supported_is_refused_in_openai_shape(client_in_process, body, status, param, code):
    response = client_in_process.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert (error["param"], error["code"]) == (param, code) and error["message"]
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_neutral_values_of_unsupported_parameters_are_accepted(client_in_process):
    body = {"model": PRIMARY, "messages": [USER], "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": False,
            "tools": None, "n": 1}
    response = client_in_process.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.get_json()["model"] == PRIMARY


@pytest.fixture
def client_in_process(app, worker, api_key):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client


def test_an_unknown_v1_path_is_a_404_naming_the_endpoint(client_in_process):
    response = client_in_process.post("/v1/completions", json={"model": "auto", "prompt": "Hi"})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "unknown_url" and error["type"] == "not_found_error"
    assert "POST /v1/completions" in error["message"] and "/v1/chat/completions" in error["message"]


def test_a_browser_preflight_is_answered_without_a_key_from_an_allowed_origin(settings):
    browser = create_app(Services.from_settings(dataclasses.replace(settings, cors_origins=("https://app.example",))))
    client = browser.test_client()
    preflight = client.options("/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    elsewhere = client.options("/v1/chat/completions", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    # Only the preflight goes without a key.
    assert client.post("/v1/chat/completions", json={}, headers={"Origin": "https://app.example"}).status_code == 401
