"""Anthropic's door (/v1/messages) driven by the official anthropic SDK over real HTTP
(gunicorn, the session's worker, the sandbox playing each provider through its real SDK):
answers, streams, tool round trips, images, routing to any provider, fallbacks, a budget
refusal and errors as the SDK's exception classes, count_tokens and the model list."""

from __future__ import annotations

import dataclasses
import json

import anthropic
import httpx2
import pytest
import requests

from api import create_app
from orchestrator.core.analysis import analyze_request
from orchestrator.core.types import USER, ChatRequest, Message, Tool
from orchestrator.runtime.services import Services
from tests.integration.test_openai_agents import PIXEL
from tests.integration.test_openai_compat import attempts, catalog, fault, sandbox_reply, web  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL = "gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
QUESTION = [{"role": "user", "content": "Tell me about the history of tea"}]
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]


@pytest.fixture
def root(web):  # noqa: F811
    return web.removesuffix("/v1")


@pytest.fixture
def client(root, api_key):
    # No SDK retries: each test sees the first answer.
    with anthropic.Anthropic(base_url=root, api_key=api_key, max_retries=0, timeout=30) as client:
        yield client


def raw_events(root: str, headers: dict, **body) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a streamed answer, as sent."""
    response = requests.post(f"{root}/v1/messages", json={"stream": True, **body}, headers=headers, stream=True,
                             timeout=30)
    with response:
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    return [(kind.removeprefix("event: "), json.loads(data.removeprefix("data: ")))
            for kind, data in zip(lines[::2], lines[1::2], strict=True)]


def test_a_message_answers_the_whole_conversation(client, sandbox, app):
    turns = [{"role": "user", "content": "Name a tea."}, {"role": "assistant", "content": "Green tea."},
             {"role": "user", "content": [{"type": "text", "text": "And another one?"}]}]
    raw = client.messages.with_raw_response.create(
        model=OPENAI_MODEL, max_tokens=300, messages=turns, metadata={"user_id": "end-user-7"},
        extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},  # this SDK's create() no longer names them
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}])
    message = raw.parse()

    (attempt,) = attempts(sandbox, OPENAI_MODEL)
    assert attempt["system"] == "You are terse."
    assert attempt["messages"] == [{"role": "user", "content": "Name a tea."},
                                   {"role": "assistant", "content": "Green tea."},
                                   {"role": "user", "content": "And another one?"}]
    reply = sandbox_reply(attempt, 300)
    assert [block.type for block in message.content] == ["text"] and message.content[0].text == reply.text
    assert message.stop_reason == "end_turn" and message.model == OPENAI_MODEL and message.role == "assistant"
    assert message.usage.output_tokens == reply.tokens and message.usage.input_tokens > 0
    assert message.id == f"msg_{raw.headers['request-id']}" and raw.headers["x-orchestrator-model"] == OPENAI_MODEL
    record = app.extensions["orchestrator"].requests.get(raw.headers["request-id"])
    assert record["status"] == "completed" and record["user"] == "end-user-7"

    cut = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=5, messages=QUESTION)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 5


def test_a_streamed_message_adds_up_to_the_answer_in_anthropics_event_order(client, sandbox, root, api_key):
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=400, messages=QUESTION) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    reply = sandbox_reply(attempts(sandbox, ANTHROPIC_MODEL)[0], 400)
    assert streamed == reply.text == final.content[0].text and final.model == ANTHROPIC_MODEL
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == reply.tokens
    whole = client.messages.create(model=ANTHROPIC_MODEL, max_tokens=400, messages=QUESTION)
    assert final.usage.input_tokens == whole.usage.input_tokens  # the real count replaces message_start's estimate

    # Anthropic's header for the key, as Claude Code sends it.
    events = raw_events(root, {"x-api-key": api_key, "anthropic-version": "2023-06-01"},
                        model=ANTHROPIC_MODEL, max_tokens=400, messages=QUESTION)
    kinds = [kind for kind, _ in events if kind != "ping"]
    assert kinds[:2] == ["message_start", "content_block_start"] and kinds[-3:] == [
        "content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"} and len(kinds[2:-3]) > 1
    assert all(data["type"] == kind for kind, data in events)
    assert events[0][1]["message"]["model"] == ANTHROPIC_MODEL and events[0][1]["message"]["content"] == []
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("model", [ANTHROPIC_MODEL, OPENAI_MODEL, GEMINI_MODEL])
def test_a_tool_round_trip(client, model):
    first = client.messages.create(model=model, max_tokens=500, messages=ASK_WEATHER, tools=[WEATHER])
    assert first.stop_reason == "tool_use" and first.model == model
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str) and use.id

    history = [*ASK_WEATHER, {"role": "assistant", "content": [block.model_dump() for block in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                             "content": [{"type": "text", "text": "Sunny, 24 degrees"}]}]}]
    second = client.messages.create(model=model, max_tokens=500, messages=history, tools=[WEATHER])
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]
    # The sandbox quotes the results it was given: the tool result reached the provider in its own format.
    assert "Tool get_weather returned: Sunny, 24 degrees" in second.content[0].text

    history[-1]["content"][0] |= {"is_error": True, "content": "the weather service is down"}
    failed = client.messages.create(model=model, max_tokens=500, messages=history, tools=[WEATHER])
    if model == OPENAI_MODEL:  # Chat Completions has no error flag on a tool result: only its text says it
        assert "Tool get_weather returned: the weather service is down" in failed.content[0].text
    else:
        assert "Tool get_weather failed: the weather service is down" in failed.content[0].text


def test_streamed_tool_use_comes_whole_as_input_json(client, root, api_key):
    with client.messages.stream(model=GEMINI_MODEL, max_tokens=500, messages=ASK_WEATHER, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather",
                                             "disable_parallel_tool_use": True}) as stream:
        final = stream.get_final_message()
    (use,) = [block for block in final.content if block.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str) and final.stop_reason == "tool_use"

    events = raw_events(root, {"Authorization": f"Bearer {api_key}"}, model=GEMINI_MODEL, max_tokens=500,
                        messages=ASK_WEATHER, tools=[WEATHER], tool_choice={"type": "any"})
    starts = [data["content_block"] for kind, data in events if kind == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["input"] == {}
    deltas = [data["delta"] for kind, data in events if kind == "content_block_delta"]
    assert deltas[-1]["type"] == "input_json_delta" and "city" in json.loads(deltas[-1]["partial_json"])


def test_an_image_reaches_a_vision_model(client, catalog):  # noqa: F811
    content = [{"type": "text", "text": "What is in this picture?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}]
    message = client.messages.create(model="auto", max_tokens=300, messages=[{"role": "user", "content": content}])
    assert catalog.get(message.model).supports_vision
    assert "I see 1 image" in message.content[0].text and "image/png" in message.content[0].text


def test_auto_routes_an_anthropic_client_to_any_provider(client, catalog):  # noqa: F811
    cheapest = min(catalog, key=lambda m: (m.cost_per_1k_input + m.cost_per_1k_output, m.model_name))
    assert cheapest.provider != "anthropic"
    raw = client.messages.with_raw_response.create(model="auto:cost_optimal", max_tokens=200,
                                                   messages=[{"role": "user", "content": "Hello there"}])
    assert raw.parse().model == cheapest.model_name and raw.headers["x-orchestrator-strategy"] == "cost_optimal"


def test_a_failing_provider_falls_over_to_another(client, sandbox, catalog):  # noqa: F811
    fault(sandbox, "server_error", ANTHROPIC_MODEL)
    raw = client.messages.with_raw_response.create(model=ANTHROPIC_MODEL, max_tokens=300, messages=QUESTION)
    message = raw.parse()
    assert catalog.get(message.model).provider != "anthropic" and attempts(sandbox, ANTHROPIC_MODEL)
    assert int(raw.headers["x-orchestrator-attempts"]) == len(attempts(sandbox, ANTHROPIC_MODEL)) + 1
    (answered,) = attempts(sandbox, message.model)
    reasoning = catalog.get(message.model).reasoning_model
    assert message.content[0].text == sandbox_reply(answered, 300, reasoning=reasoning).text

    # Streamed, the model that took over before the first token is the one message_start names.
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=300, messages=QUESTION,
                                extra_body={"models": [GEMINI_MODEL]}) as stream:
        final = stream.get_final_message()
    assert final.model == GEMINI_MODEL and final.content[0].text


def test_a_spent_budget_is_a_low_credit_balance(root, app):
    _, issued = app.extensions["orchestrator"].users.create("thrifty", monthly_budget=0.000001)
    with anthropic.Anthropic(base_url=root, api_key=issued.key, max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as raised:
            client.messages.create(model=OPENAI_MODEL, max_tokens=100, messages=QUESTION)
        error = raised.value.body["error"]
        assert error["type"] == "invalid_request_error" and raised.value.status_code == 400
        assert error["message"].startswith("Your credit balance is too low") and "budget" in error["message"]
        with pytest.raises(anthropic.BadRequestError) as streamed:  # before the first token: an HTTP status
            with client.messages.stream(model=OPENAI_MODEL, max_tokens=100, messages=QUESTION) as stream:
                stream.get_final_message()
        assert streamed.value.body["error"]["message"].startswith("Your credit balance is too low")


def test_errors_surface_as_the_sdk_exception_classes(client, root):
    with pytest.raises(anthropic.AuthenticationError) as raised:
        anthropic.Anthropic(base_url=root, api_key="orch-not-a-key", max_retries=0).messages.create(
            model="auto", max_tokens=10, messages=QUESTION)
    assert raised.value.body == {"type": "error", "error": {
        "type": "authentication_error", "message": raised.value.body["error"]["message"]}}

    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="claude-17-ultra", max_tokens=10, messages=QUESTION)
    assert raised.value.body["error"]["type"] == "not_found_error" and "claude-17-ultra" in raised.value.message

    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="auto", max_tokens=10, messages=QUESTION, extra_body={"temprature": 0.3})
    assert raised.value.body["error"]["message"] == "temprature: Extra inputs are not permitted"

    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="auto", max_tokens=10, messages=QUESTION,
                               tools=[{**WEATHER, "input_schema": {"type": "object", "properties": {
                                   "city": {"type": "nope"}}}}])
    assert "tools.0.input_schema" in raised.value.message


def test_an_answer_cut_after_its_first_token_ends_with_an_in_band_error(client, sandbox, root, api_key):
    fault(sandbox, "stream_cut", model="*", after_tokens=3)
    received = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=300, messages=QUESTION) as stream:
            received.extend(stream.text_stream)
    assert received and "incomplete" in str(raised.value.body)

    events = raw_events(root, {"x-api-key": api_key}, model=ANTHROPIC_MODEL, max_tokens=300, messages=QUESTION)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "error" and "message_stop" not in kinds and events[-1][1]["error"]["type"] == "api_error"


def test_the_rate_limit_reaches_the_sdk_as_a_rate_limit_error(settings, api_key):
    limited = create_app(Services.from_settings(dataclasses.replace(settings, rate_limit_requests=1)))
    with anthropic.Anthropic(base_url="http://orchestrator", api_key=api_key, max_retries=0,
                             http_client=httpx2.Client(transport=httpx2.WSGITransport(app=limited))) as client:
        client.models.list()
        with pytest.raises(anthropic.RateLimitError) as raised:
            client.messages.create(model=OPENAI_MODEL, max_tokens=10, messages=QUESTION)
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= settings.rate_limit_window


def test_count_tokens_is_the_offline_estimate(client):
    counted = client.messages.count_tokens(model="auto", system="Be brief.", messages=ASK_WEATHER, tools=[WEATHER])
    tool = Tool(WEATHER["name"], WEATHER["input_schema"], WEATHER["description"])
    request = ChatRequest("", (Message(USER, ASK_WEATHER[0]["content"]),), "Be brief.", tools=(tool,))
    assert counted.input_tokens == analyze_request(request).input_tokens
    assert client.messages.count_tokens(model="auto", messages=ASK_WEATHER).input_tokens < counted.input_tokens


def test_models_are_listed_in_anthropics_shape(client, catalog, root, api_key):  # noqa: F811
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert ids[:2] == ["auto", "auto:cost_optimal"] and set(ids) >= {m.model_name for m in catalog}
    assert all(model.type == "model" and model.display_name and model.created_at for model in page.data)
    assert client.models.retrieve(ANTHROPIC_MODEL).id == ANTHROPIC_MODEL
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-17-ultra")
    # Without Anthropic's headers, the same path answers in OpenAI's shape.
    openai_shape = requests.get(f"{root}/v1/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=5).json()
    assert openai_shape["object"] == "list" and openai_shape["data"][0]["object"] == "model"


USER_TURN = {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": "auto", "messages": [USER_TURN]}, "max_tokens"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN], "top_k": -1}, "top_k"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN], "temperature": 1.5}, "temperature"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN, {"role": "assistant", "content": "Hel"}]},
         "messages"),
        ({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}]}, "messages"),
        ({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {}}]}]}, "messages.0.content.0.type"),
        ({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/tiff", "data": "AAAA"}}]}]},
         "messages.0.content.0.source"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN],
          "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN], "tools": [WEATHER],
          "tool_choice": {"type": "tool", "name": "get_time"}}, "tool_choice.name"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN], "metadata": {"user_id": 7}}, "metadata.user_id"),
        ({"model": "auto", "max_tokens": 10, "messages": [USER_TURN], "strategy": "fastest"}, "strategy"),
        ({"model": "auto", "max_tokens": 10, "messages": [{"role": "system", "content": "Hi"}]},
         "messages.0.role"),
    ],
)
def test_what_is_not_supported_is_refused_in_anthropics_shape(client_in_process, body, field):
    response = client_in_process.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert field in body["error"]["message"]


def test_a_claude_code_shaped_request_is_accepted(client_in_process):
    body = {
        "model": ANTHROPIC_MODEL, "max_tokens": 200, "temperature": 1, "stream": False,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "List the files.", "cache_control": {"type": "ephemeral"}}]}],
        "tools": [{**WEATHER, "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user_abc_account_def_session_ghi"}, "thinking": {"type": "disabled"},
    }
    response = client_in_process.post("/v1/messages", json=body, headers={
        "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"})
    assert response.status_code == 200 and response.get_json()["type"] == "message"


@pytest.fixture
def client_in_process(app, worker, api_key):
    client = app.test_client()
    client.environ_base["HTTP_X_API_KEY"] = api_key
    return client
