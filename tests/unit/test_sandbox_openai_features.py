"""Tools, structured outputs, images, logprobs and n through the openai SDK against a running sandbox."""

from __future__ import annotations

import base64
import json

import jsonschema_rs
import openai
import pytest
import requests
from pydantic import BaseModel

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox

GPT = "gpt-4o"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                      "parameters": WEATHER, "strict": True}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time in a timezone",
                                      "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}},
]
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63600000"
                    "0200015d0b2a3b0000000049454e44ae426082")


class Step(BaseModel):
    explanation: str
    output: int | None


class Solution(BaseModel):
    steps: list[Step]
    final_answer: str


@pytest.fixture(scope="module")
def sandbox():
    with BackgroundSandbox(Catalog.load(), latency_scale=0) as server:
        yield server


@pytest.fixture(scope="module")
def oai(sandbox):
    return openai.OpenAI(base_url=f"{sandbox.url}/v1", api_key="sandbox", max_retries=0, timeout=10)


def invalid_output_once(sandbox) -> None:
    rule = {"model": GPT, "fault": "invalid_output", "count": 1}
    requests.post(f"{sandbox.url}/_sandbox/faults", json=rule, timeout=5).raise_for_status()


def test_a_tool_call_whose_arguments_validate(oai):
    completion = oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS)
    choice = completion.choices[0]
    (call,) = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    jsonschema_rs.validate(WEATHER, json.loads(call.function.arguments))
    assert oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS).choices[0].message == choice.message


def test_tool_choice_named_none_and_parallel_calls(oai):
    both = [{"role": "user", "content": "get_time and get_weather please"}]
    calls = oai.chat.completions.create(model=GPT, messages=both, tools=TOOLS).choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"] and calls[0].id != calls[1].id
    one = oai.chat.completions.create(model=GPT, messages=both, tools=TOOLS, parallel_tool_calls=False)
    assert [c.function.name for c in one.choices[0].message.tool_calls] == ["get_weather"]
    named = oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS,
                                        tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    text = oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS, tool_choice="none")
    assert text.choices[0].finish_reason == "stop" and text.choices[0].message.tool_calls is None


def test_a_tool_round_trip_quotes_the_result(oai):
    message = oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS).choices[0].message
    history = [*ASK, message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": '{"temp": 3}'}]
    answer = oai.chat.completions.create(model=GPT, messages=history, tools=TOOLS).choices[0]
    assert answer.finish_reason == "stop" and answer.message.content.startswith('Tool get_weather returned: {"temp":3}.')


def test_streamed_tool_calls_come_in_openais_delta_shape(oai):
    chunks = list(oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS, stream=True))
    deltas = [c.choices[0].delta.model_dump(exclude_none=True) for c in chunks]
    first, *pieces, last = deltas
    assert first["role"] == "assistant" and first["tool_calls"][0]["function"] == {"name": "get_weather",
                                                                                    "arguments": ""}
    assert first["tool_calls"][0]["id"].startswith("call_") and first["tool_calls"][0]["type"] == "function"
    assert pieces and all(list(p["tool_calls"][0]) == ["index", "function"] for p in pieces)
    arguments = "".join(p["tool_calls"][0]["function"]["arguments"] for p in pieces)
    jsonschema_rs.validate(WEATHER, json.loads(arguments))
    assert last == {} and chunks[-1].choices[0].finish_reason == "tool_calls"
    with oai.chat.completions.stream(model=GPT, messages=ASK, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.arguments == arguments


def test_parse_with_a_pydantic_model(oai):
    messages = [{"role": "user", "content": "Solve 8x + 7 = -23"}]
    parsed = oai.chat.completions.parse(model=GPT, messages=messages, response_format=Solution)
    solution = parsed.choices[0].message.parsed
    assert isinstance(solution, Solution) and solution.steps
    with oai.chat.completions.stream(model=GPT, messages=messages, response_format=Solution) as stream:
        assert stream.get_final_completion().choices[0].message.parsed == solution


def test_json_object_answers_a_json_object(oai):
    messages = [{"role": "user", "content": "Answer in JSON"}]
    completion = oai.chat.completions.create(model=GPT, messages=messages, response_format={"type": "json_object"})
    assert list(json.loads(completion.choices[0].message.content)) == ["answer"]
    plain = oai.chat.completions.create(model=GPT, messages=messages, response_format={"type": "text"})
    assert not plain.choices[0].message.content.startswith("{")


def test_invalid_output_makes_json_and_tool_arguments_fail_their_schema(oai, sandbox):
    schema = openai.lib._pydantic.to_strict_json_schema(Solution)
    response_format = {"type": "json_schema", "json_schema": {"name": "solution", "schema": schema, "strict": True}}
    messages = [{"role": "user", "content": "Solve it"}]
    invalid_output_once(sandbox)
    bad = oai.chat.completions.create(model=GPT, messages=messages, response_format=response_format)
    good = oai.chat.completions.create(model=GPT, messages=messages, response_format=response_format)
    assert not jsonschema_rs.is_valid(schema, json.loads(bad.choices[0].message.content))
    jsonschema_rs.validate(schema, json.loads(good.choices[0].message.content))
    invalid_output_once(sandbox)
    call = oai.chat.completions.create(model=GPT, messages=ASK, tools=TOOLS, stream=True)
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or "" for c in call
                        if c.choices and c.choices[0].delta.tool_calls)
    assert not jsonschema_rs.is_valid(WEATHER, json.loads(arguments))


def test_images_by_data_uri_and_url_are_seen_and_counted(oai):
    data_uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [{"type": "text", "text": "What is in these?"},
               {"type": "image_url", "image_url": {"url": data_uri, "detail": "high"}},
               {"type": "image_url", "image_url": {"url": "https://images.example.org/cat.jpg", "detail": "low"}}]
    completion = oai.chat.completions.create(model=GPT, messages=[{"role": "user", "content": content}])
    text = completion.choices[0].message.content
    assert text.startswith(f"I see 2 images: image/png, {len(PNG)} bytes; an image from images.example.org. ")
    text_only = oai.chat.completions.create(model=GPT, messages=[{"role": "user", "content": content[:1]}])
    assert completion.usage.prompt_tokens - text_only.usage.prompt_tokens >= 255 + 85


def test_logprobs_plain_and_streamed(oai):
    completion = oai.chat.completions.create(model=GPT, messages=ASK, logprobs=True, top_logprobs=3)
    content = completion.choices[0].logprobs.content
    assert "".join(t.token for t in content) == completion.choices[0].message.content
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token and t.logprob <= 0 for t in content)
    assert bytes(content[1].bytes).decode() == content[1].token
    chunks = list(oai.chat.completions.create(model=GPT, messages=ASK, logprobs=True, top_logprobs=3, stream=True))
    streamed = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert streamed == content


def test_n_choices_differ_plain_and_streamed(oai):
    completion = oai.chat.completions.create(model=GPT, messages=ASK, n=3, seed=7)
    texts = [c.message.content for c in completion.choices]
    assert [c.index for c in completion.choices] == [0, 1, 2] and len(set(texts)) == 3
    assert texts[0] == oai.chat.completions.create(model=GPT, messages=ASK).choices[0].message.content
    streamed = {0: "", 1: "", 2: ""}
    for chunk in oai.chat.completions.create(model=GPT, messages=ASK, n=3, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert list(streamed.values()) == texts


def test_the_other_parameters_are_accepted(oai):
    completion = oai.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "Hi", "name": "ada"}], seed=1, presence_penalty=0.5,
        frequency_penalty=0.5, logit_bias={"50256": -100}, user="u-1", metadata={"k": "v"}, store=False,
        service_tier="auto", reasoning_effort="low", modalities=["text"],
        prediction={"type": "content", "content": "Hello"},
    )
    assert completion.choices[0].finish_reason == "stop"
