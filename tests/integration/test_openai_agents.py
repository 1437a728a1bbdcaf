"""What agents use, through the official openai SDK against the running stack (gunicorn, the
session's worker, the sandbox playing each provider through its real SDK): tool round trips,
streamed tool calls, structured outputs checked before they are returned (and falling over
when a model breaks the schema), images, log probabilities, and a tool conversation that
falls over from one provider to another mid-conversation."""

from __future__ import annotations

import base64
import json

import jsonschema_rs
import openai
import pytest
from pydantic import BaseModel

from tests.integration.test_openai_compat import attempts, catalog, fault, web  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("fresh_sandbox")

OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL = "gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]
# A 1x1 PNG.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000105f7f2b5e40000000049454e44ae426082")).decode()


class Verdict(BaseModel):
    answer: str
    confidence: float
    sources: list[str]


@pytest.fixture
def client(web, api_key):  # noqa: F811
    with openai.OpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
        yield client


def valid(arguments: str, schema: dict) -> bool:
    return jsonschema_rs.validator_for(schema).is_valid(json.loads(arguments))


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL])
def test_a_tool_round_trip_on_each_provider(client, model):
    first = client.chat.completions.create(model=model, messages=ASK_WEATHER, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and first.model == model
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and valid(call.function.arguments, WEATHER["function"]["parameters"])

    history = [*ASK_WEATHER, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'}]
    second = client.chat.completions.create(model=model, messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    # The sandbox quotes the results it was given: the tool result reached the provider in its own format.
    assert '"temperature":21' in second.choices[0].message.content


def test_streamed_tool_calls_come_in_openai_shape_and_name_the_model_from_the_first_chunk(client):
    with client.chat.completions.stream(model=ANTHROPIC_MODEL, messages=ASK_WEATHER, tools=[WEATHER]) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    assert {chunk.model for chunk in chunks} == {ANTHROPIC_MODEL} and final.model == ANTHROPIC_MODEL
    (call,) = final.choices[0].message.tool_calls
    assert call.id and call.function.name == "get_weather"
    assert valid(call.function.arguments, WEATHER["function"]["parameters"])
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL, GEMINI_MODEL])
def test_parse_with_a_pydantic_model(client, model):
    completion = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Is tea older than coffee?"}], response_format=Verdict)
    verdict = completion.choices[0].message.parsed
    assert isinstance(verdict, Verdict) and completion.model == model


def test_an_answer_that_breaks_the_schema_falls_over_to_the_next_model(client, sandbox):
    fault(sandbox, "invalid_output", OPENAI_MODEL)
    raw = client.chat.completions.with_raw_response.parse(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "Is tea older than coffee?"}],
        response_format=Verdict)
    completion = raw.parse()
    assert isinstance(completion.choices[0].message.parsed, Verdict)
    assert completion.model != OPENAI_MODEL and raw.headers["x-orchestrator-attempts"] == "2"
    assert len(attempts(sandbox, OPENAI_MODEL)) == 1  # it answered, wrongly, once


def test_a_streamed_answer_that_breaks_the_schema_ends_with_an_in_band_error(client, sandbox):
    fault(sandbox, "invalid_output", OPENAI_MODEL)
    stream = client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "Is tea older than coffee?"}], stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": Verdict.model_json_schema()}})
    with pytest.raises(openai.APIError) as raised:
        for _ in stream:
            pass
    assert "not the JSON asked for" in str(raised.value)


@pytest.mark.parametrize("model", [OPENAI_MODEL, "claude-sonnet-4-20250514", GEMINI_MODEL])
def test_an_image_reaches_a_vision_model_in_its_providers_format(client, model):
    content = [{"type": "text", "text": "What is in this picture?"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}]
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert "I see 1 image" in completion.choices[0].message.content and "image/png" in completion.choices[0].message.content


def test_routing_sends_images_only_to_vision_models(client, catalog):  # noqa: F811
    content = [{"type": "text", "text": "Describe it."},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}]
    for strategy in ("auto:cost_optimal", "auto:quality_optimal", "auto"):
        completion = client.chat.completions.create(model=strategy, messages=[{"role": "user", "content": content}])
        assert catalog.get(completion.model).supports_vision


def test_a_model_that_cannot_honour_a_parameter_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=ANTHROPIC_MODEL, messages=ASK_WEATHER, logprobs=True)
    assert raised.value.param == "logprobs" and "lacks logprobs" in raised.value.message


def test_logprobs_come_back_from_a_model_that_gives_them(client):
    completion = client.chat.completions.create(model="auto", messages=ASK_WEATHER, logprobs=True, top_logprobs=2)
    content = completion.choices[0].logprobs.content
    assert content and all(len(entry.top_logprobs) == 2 for entry in content)
    assert completion.model.startswith("gpt-")


def test_a_tool_conversation_falls_over_from_one_provider_to_another(client, sandbox):
    first = client.chat.completions.create(model=ANTHROPIC_MODEL, messages=ASK_WEATHER, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert call.id.startswith("toolu_")
    history = [*ASK_WEATHER, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 degrees"}]
    fault(sandbox, "server_error", ANTHROPIC_MODEL)
    raw = client.chat.completions.with_raw_response.create(
        model=ANTHROPIC_MODEL, messages=history, tools=[WEATHER], extra_body={"models": [GEMINI_MODEL]})
    second = raw.parse()
    assert second.model == GEMINI_MODEL and int(raw.headers["x-orchestrator-attempts"]) >= 2
    # Gemini read the call Anthropic made and its result, sent as its own function parts.
    assert "Tool get_weather returned: Sunny, 24 degrees" in second.choices[0].message.content
    (sent,) = attempts(sandbox, GEMINI_MODEL)
    assistant, result = sent["messages"][1], sent["messages"][2]
    assert assistant["tool_calls"][0]["name"] == "get_weather" and assistant["tool_calls"][0]["arguments"] == json.loads(
        call.function.arguments)
    assert result["tool_results"][0]["name"] == "get_weather"  # Gemini's results name their function


def test_n_answers_come_as_n_choices_each_routed_and_billed(client):
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "Name a colour"}], n=3)
    completion = raw.parse()
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(choice.message.content for choice in completion.choices)
    assert raw.headers["x-orchestrator-attempts"] == "3"
    one = client.chat.completions.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": "Name a colour"}])
    assert completion.usage.prompt_tokens == 3 * one.usage.prompt_tokens


def test_extensions_through_extra_body(client, sandbox):
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}],
        extra_body={"strategy": "cost_optimal", "budget_limit": 0.5, "conversation_id": "agents-ext-1"})
    assert completion.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="auto", messages=ASK_WEATHER, extra_body={"strategy": "fastest"})
    assert raised.value.param == "strategy"


def test_neutral_values_are_accepted(client):
    completion = client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "Hi", "name": "ann"}], tools=[], store=False,
        metadata={}, service_tier="auto", seed=3, presence_penalty=0, frequency_penalty=0,
        response_format={"type": "text"}, parallel_tool_calls=True)
    assert completion.choices[0].message.content



def test_langchain_bind_tools_and_with_structured_output(web, api_key):  # noqa: F811
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"Sunny in {city}"

    chat = ChatOpenAI(base_url=web, api_key=api_key, model="auto", max_retries=0, timeout=30)
    message = chat.bind_tools([get_weather]).invoke("What is the weather in Paris? Use get_weather.")
    (call,) = message.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    prompt = "Is tea older than coffee? Answer in JSON with answer, confidence and sources."
    for method in ("json_schema", "function_calling"):
        verdict = chat.with_structured_output(Verdict, method=method).invoke(prompt)
        assert isinstance(verdict, Verdict), method
    # JSON mode holds the answer to no schema (the prompt describes it): any JSON object.
    assert isinstance(chat.with_structured_output(Verdict.model_json_schema(), method="json_mode").invoke(prompt), dict)


def test_a_routed_stream_names_the_chosen_model_from_its_first_chunk(client):
    with client.chat.completions.stream(model="auto:cost_optimal",
                                        messages=[{"role": "user", "content": "Tell me about tea"}]) as stream:
        models = [event.chunk.model for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    assert models[0] != "auto:cost_optimal" and set(models) == {final.model}
