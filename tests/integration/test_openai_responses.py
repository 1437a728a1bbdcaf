"""The Responses door (POST /v1/responses, GET /v1/responses/{id}) driven by the official openai
SDK over real HTTP (gunicorn, the session's worker, the sandbox playing each provider): plain,
streamed, chained with previous_response_id, function tool round trips, structured answers,
a fallback to another provider, a budget refusal, and refusals in OpenAI's shape."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
import requests

from tests.integration.test_openai_agents import PIXEL, Verdict, valid
from tests.integration.test_openai_agents import WEATHER as CHAT_WEATHER
from tests.integration.test_openai_compat import (  # noqa: F401 (fixtures)
    attempts,
    catalog,
    client_in_process,
    fault,
    sandbox_reply,
    web,
)

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

PRIMARY, ANTHROPIC_MODEL, GEMINI_MODEL = "gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
WEATHER = {"type": "function", **CHAT_WEATHER["function"]}  # the flat shape of Responses tools
ASK_WEATHER = "What is the weather in Paris? Use get_weather."


@pytest.fixture
def client(web, api_key):  # noqa: F811
    with openai.OpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
        yield client


def test_a_plain_response_answers_the_input_under_the_instructions_and_can_be_read_back(client, sandbox):
    response = client.responses.create(model=PRIMARY, input="Tell me about the history of tea",
                                       instructions="You are terse.", max_output_tokens=300, temperature=0.2,
                                       metadata={"run": "7"})
    (attempt,) = attempts(sandbox, PRIMARY)
    assert attempt["system"] == "You are terse."
    assert attempt["messages"] == [{"role": "user", "content": "Tell me about the history of tea"}]
    reply = sandbox_reply(attempt, 300)
    assert response.output_text == reply.text and response.status == "completed"
    assert response.id.startswith("resp_") and response.object == "response" and response.model == PRIMARY
    assert response.usage.output_tokens == reply.tokens and response.usage.input_tokens > 0
    assert response.instructions == "You are terse." and response.metadata == {"run": "7"}
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.content[0].type == "output_text"

    again = client.responses.retrieve(response.id)
    assert again.output_text == reply.text and again.id == response.id and again.status == "completed"
    assert again.instructions == "You are terse." and again.usage.output_tokens == reply.tokens


def test_a_streamed_response_sends_the_responses_events_in_order(client, sandbox):
    events = list(client.responses.create(model=PRIMARY, input="Tell me about the history of tea",
                                          max_output_tokens=400, stream=True))
    reply = sandbox_reply(attempts(sandbox, PRIMARY)[0], 400)
    kinds = [event.type for event in events]
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert len(deltas) > 1 and "".join(d.delta for d in deltas) == reply.text
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[-1].response.output_text == reply.text and events[-1].response.usage.output_tokens == reply.tokens
    assert events[0].response.id == events[-1].response.id and events[0].response.status == "in_progress"

    # The SDK's own accumulator rebuilds the same response from the events.
    with client.responses.stream(model=PRIMARY, input="Tell me about the history of tea",
                                 max_output_tokens=400) as stream:
        final = stream.get_final_response()
    assert final.output_text == reply.text


def test_previous_response_id_continues_the_stored_conversation(client, sandbox):
    first = client.responses.create(model=PRIMARY, input="Name a tea.", instructions="Be brief.")
    second = client.responses.create(model=GEMINI_MODEL, input="And another one?", previous_response_id=first.id)
    (sent,) = attempts(sandbox, GEMINI_MODEL)
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("user", "Name a tea."), ("assistant", first.output_text), ("user", "And another one?")]
    assert not sent["system"]  # instructions are not carried over, as OpenAI's
    assert second.previous_response_id == first.id

    # A fork: two responses continue the first one, each its own conversation.
    client.responses.create(model=PRIMARY, input="Which is the strongest?", previous_response_id=first.id)
    forked = attempts(sandbox, PRIMARY)[-1]
    assert [m["content"] for m in forked["messages"]] == ["Name a tea.", first.output_text, "Which is the strongest?"]


def test_an_unknown_or_unstored_response_cannot_be_continued_or_read(client, api_key, web, app):  # noqa: F811
    unstored = client.responses.create(model=PRIMARY, input="Name a tea.", store=False)
    for previous in ("resp_0123", unstored.id):
        with pytest.raises(openai.NotFoundError) as raised:
            client.responses.create(model=PRIMARY, input="More?", previous_response_id=previous)
        assert raised.value.param == "previous_response_id"
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(previous)
    # Another user's response is not found either.
    stored = client.responses.create(model=PRIMARY, input="Name a tea.")
    _, other = app.extensions["orchestrator"].users.create("someone else")
    with openai.OpenAI(base_url=web, api_key=other.key, max_retries=0) as stranger:
        with pytest.raises(openai.NotFoundError):
            stranger.responses.retrieve(stored.id)
        with pytest.raises(openai.NotFoundError):
            stranger.responses.create(model=PRIMARY, input="More?", previous_response_id=stored.id)


@pytest.mark.parametrize("model", [PRIMARY, ANTHROPIC_MODEL, GEMINI_MODEL])
def test_a_function_tool_round_trip_chained_on_each_provider(client, model):
    first = client.responses.create(model=model, input=ASK_WEATHER, tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and valid(call.arguments, WEATHER["parameters"])
    second = client.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": 21}'}])
    assert not [item for item in second.output if item.type == "function_call"]
    # The sandbox quotes the results it was given: the tool result reached the provider in its own format.
    assert '"temperature":21' in second.output_text


def test_a_stateless_tool_round_trip_replays_the_items_and_streams_the_call(client):
    with client.responses.stream(model=ANTHROPIC_MODEL, input=ASK_WEATHER, tools=[WEATHER], store=False) as stream:
        kinds = [event.type for event in stream]
        first = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    (call,) = first.output
    assert call.type == "function_call" and valid(call.arguments, WEATHER["parameters"])
    replay = [{"role": "user", "content": [{"type": "input_text", "text": ASK_WEATHER}]},
              call.model_dump(exclude_none=True, exclude={"parsed_arguments"}),  # the SDK's own field
              {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24 degrees"}]
    second = client.responses.create(model=GEMINI_MODEL, input=replay, tools=[WEATHER], store=False)
    assert "Tool get_weather returned: Sunny, 24 degrees" in second.output_text


@pytest.mark.parametrize("model", [PRIMARY, ANTHROPIC_MODEL, GEMINI_MODEL])
def test_text_format_json_schema_is_parsed_by_the_sdk(client, model):
    response = client.responses.parse(model=model, input="Is tea older than coffee?", text_format=Verdict)
    assert isinstance(response.output_parsed, Verdict) and response.model == model
    raw = client.responses.create(model=model, input="Is tea older than coffee?", text={"format": {
        "type": "json_schema", "name": "verdict", "schema": Verdict.model_json_schema(), "strict": False}})
    assert Verdict.model_validate(json.loads(raw.output_text))
    assert raw.text.format.type == "json_schema"


def test_an_image_reaches_a_vision_model(client):
    content = [{"type": "input_text", "text": "What is in this picture?"},
               {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}"}]
    response = client.responses.create(model=PRIMARY, input=[{"role": "user", "content": content}])
    assert "I see 1 image" in response.output_text


def test_a_failing_provider_falls_over_to_another_provider(client, sandbox, catalog):  # noqa: F811
    fault(sandbox, "server_error")
    raw = client.responses.with_raw_response.create(model=PRIMARY, input="Tell me about the history of tea")
    response = raw.parse()
    assert response.model != PRIMARY and catalog.get(response.model).provider != "openai"
    assert attempts(sandbox, PRIMARY) and int(raw.headers["x-orchestrator-attempts"]) >= 2
    (answered,) = attempts(sandbox, response.model)
    assert response.output_text == sandbox_reply(answered, 2048,
                                                 reasoning=catalog.get(response.model).reasoning_model).text


def test_a_stream_cut_for_good_ends_with_response_failed(client, sandbox):
    fault(sandbox, "stream_cut", model="*", after_tokens=3)
    events = list(client.responses.create(model=PRIMARY, input="Tell me about the history of tea", stream=True))
    assert events[-1].type == "response.failed" and events[-1].response.error.code == "incomplete_answer"
    assert any(event.type == "response.output_text.delta" for event in events)
    assert not any(event.type == "response.completed" for event in events)


def test_a_spent_budget_is_insufficient_quota(web, app):  # noqa: F811
    _, issued = app.extensions["orchestrator"].users.create("thrifty", monthly_budget=0.000001)
    with openai.OpenAI(base_url=web, api_key=issued.key, max_retries=0) as client:
        for stream in (False, True):
            with pytest.raises(openai.RateLimitError) as raised:  # as OpenAI answers an exhausted quota
                client.responses.create(model=PRIMARY, input="Tell me about the history of tea", stream=stream)
            assert raised.value.response.headers["x-should-retry"] == "false"
            assert raised.value.type == raised.value.code == "insufficient_quota"


def test_extensions_and_auto_models(client, catalog):  # noqa: F811
    cheapest = min(catalog, key=lambda m: (m.cost_per_1k_input + m.cost_per_1k_output, m.model_name))
    response = client.responses.create(model="auto:cost_optimal", input="Hello there")
    assert response.model == cheapest.model_name
    ordered = client.responses.create(model="auto", input="Hello there", extra_body={"models": [GEMINI_MODEL]})
    assert ordered.model == GEMINI_MODEL
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="auto", input="Hello", extra_body={"strategy": "fastest"})
    assert raised.value.param == "strategy"


USER = {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"model": "auto"}, "input", "missing_required_parameter"),
        ({"model": "auto", "input": "  "}, "input", "invalid_value"),
        ({"model": "auto", "input": "Hi", "conversation": "c1"}, "conversation", "unsupported_parameter"),
        ({"model": "auto", "input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_value"),
        ({"model": "auto", "input": "Hi", "tools": [{"type": "function", "name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "nope"}}}}]}, "tools[0].parameters",
         "invalid_function_parameters"),
        ({"model": "auto", "input": "Hi", "tool_choice": {"type": "function", "name": "g"}}, "tool_choice",
         "invalid_value"),
        ({"model": "auto", "input": "Hi", "text": {"format": {"type": "xml"}}}, "text.format.type", "invalid_value"),
        ({"model": "auto", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", "unsupported_value"),
        ({"model": "auto", "input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}]}, "input",
         "invalid_value"),
        ({"model": "auto", "input": [USER, {"role": "assistant", "content": "Hello"}]}, "input", "invalid_value"),
        ({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
         "input[0].content[0].type", "unsupported_content"),
        ({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://a.png"}]}]},
         "input[0].content[0].image_url", "invalid_image_url"),
        ({"model": "auto", "input": "Hi", "tool_choice": {"type": "function", "name": 7}}, "tool_choice.name",
         "invalid_value"),
        ({"model": "auto", "input": [USER, {"type": "function_call", "call_id": "c1", "name": "f",
                                            "arguments": "[1]"}]}, "input[1].arguments", "invalid_value"),
        ({"model": "auto", "input": "Hi", "max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"model": "auto", "input": "Hi", "metadata": {"k": 1}}, "metadata", "invalid_value"),
    ],
)
def test_what_is_not_supported_is_refused_in_openai_shape(client_in_process, body, param, code):  # noqa: F811
    response = client_in_process.post("/v1/responses", json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert (error["param"], error["code"]) == (param, code) and error["message"]
    assert error["type"] == "invalid_request_error"


def test_neutral_values_are_accepted(client_in_process):  # noqa: F811
    body = {"model": PRIMARY, "input": [USER], "include": [], "truncation": "disabled", "tools": [],
            "reasoning": None, "text": {"format": {"type": "text"}}, "parallel_tool_calls": True}
    response = client_in_process.post("/v1/responses", json=body)
    assert response.status_code == 200 and response.get_json()["output"][0]["content"][0]["text"]


def test_a_raw_stream_is_server_sent_events_with_event_names(web, api_key):  # noqa: F811
    response = requests.post(f"{web}/responses", json={"model": PRIMARY, "input": "Hi", "stream": True}, stream=True,
                             timeout=30, headers={"Authorization": f"Bearer {api_key}"})
    with response:
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [p["type"] for p in payloads] and names[-1] == "response.completed"


@pytest.mark.parametrize("model", [ANTHROPIC_MODEL, GEMINI_MODEL])
def test_an_openai_agents_sdk_agent_runs_its_tool_loop_through_the_door(web, api_key, model):  # noqa: F811
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    called = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        called.append(city)
        return f"Sunny, 24 degrees in {city}"

    set_tracing_disabled(True)  # no traces sent to OpenAI's platform

    async def run(streamed: bool):
        async with openai.AsyncOpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
            agent = Agent(name="weather", instructions="Answer with the tool.", tools=[get_weather],
                          model=OpenAIResponsesModel(model=model, openai_client=client))
            if not streamed:
                return await Runner.run(agent, ASK_WEATHER)
            result = Runner.run_streamed(agent, ASK_WEATHER)
            async for _ in result.stream_events():
                pass
            return result

    for streamed in (False, True):
        called.clear()
        result = asyncio.run(run(streamed))
        assert len(called) == 1, called  # the agent called its tool once, then answered
        assert "Tool get_weather returned: Sunny, 24 degrees" in result.final_output
