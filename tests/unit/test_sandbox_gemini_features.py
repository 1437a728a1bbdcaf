"""Function calling, JSON answers, images and candidateCount through google-genai against a running sandbox."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
import requests
from google import genai
from google.genai import types
from pydantic import BaseModel

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox

GEMINI = "gemini-2.5-flash"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
           "required": ["city", "unit"]}
DECLARATIONS = [
    types.FunctionDeclaration(name="get_weather", description="Weather for a city", parameters_json_schema=WEATHER),
    types.FunctionDeclaration(name="get_time", description="Local time in a timezone",
                              parameters=types.Schema(type="OBJECT", properties={"tz": types.Schema(type="STRING")},
                                                      required=["tz"])),
]
ASK = "What is the weather in Oslo?"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffc0001108") + (300).to_bytes(2, "big") + \
    (200).to_bytes(2, "big") + bytes.fromhex("03012200021101031101ffd9")


class City(BaseModel):
    name: str
    population: int
    landmarks: list[str]


@pytest.fixture(scope="module")
def sandbox():
    with BackgroundSandbox(Catalog.load(), latency_scale=0) as server:
        yield server


@pytest.fixture(scope="module")
def gemini(sandbox):
    return genai.Client(api_key="sandbox", http_options=types.HttpOptions(base_url=sandbox.url, timeout=10_000))


def config(mode: str = "AUTO", allowed: list[str] | None = None, **options) -> types.GenerateContentConfig:
    calling = types.FunctionCallingConfig(mode=mode, allowed_function_names=allowed)
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=DECLARATIONS)], tool_config=types.ToolConfig(
            function_calling_config=calling),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True), **options)


def test_function_calls_whose_args_validate_plain_and_streamed(gemini):
    response = gemini.models.generate_content(model=GEMINI, contents=ASK, config=config())
    (call,) = response.function_calls
    assert call.name == "get_weather" and response.candidates[0].finish_reason == types.FinishReason.STOP
    jsonschema_rs.validate(WEATHER, call.args)
    chunks = list(gemini.models.generate_content_stream(model=GEMINI, contents=ASK, config=config()))
    streamed = [c for chunk in chunks for c in chunk.function_calls or []]
    assert streamed == [call] and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_modes_and_allowed_function_names(gemini):
    weather_only = gemini.models.generate_content(model=GEMINI, contents="What time is it in the Tokyo timezone?",
                                                  config=config("ANY", ["get_weather"]))
    assert [c.name for c in weather_only.function_calls] == ["get_weather"]
    time = gemini.models.generate_content(model=GEMINI, contents="get_time", config=config("ANY"))
    assert set(time.function_calls[0].args) == {"tz"}
    none = gemini.models.generate_content(model=GEMINI, contents=ASK, config=config("NONE"))
    assert none.function_calls is None and none.text


def test_a_function_response_is_quoted(gemini):
    call = gemini.models.generate_content(model=GEMINI, contents=ASK, config=config()).function_calls[0]
    contents = [
        types.Content(role="user", parts=[types.Part(text=ASK)]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[types.Part.from_function_response(name=call.name,
                                                                             response={"output": {"temp": 3}})]),
    ]
    response = gemini.models.generate_content(model=GEMINI, contents=contents, config=config())
    assert response.function_calls is None and response.text.startswith('Tool get_weather returned: {"temp":3}. ')


def test_json_answers_valid_against_the_schema_in_either_form(gemini):
    by_openapi = gemini.models.generate_content(model=GEMINI, contents="A city", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=City))
    assert isinstance(by_openapi.parsed, City)
    schema = City.model_json_schema()
    streamed = "".join(c.text for c in gemini.models.generate_content_stream(
        model=GEMINI, contents="A city", config=types.GenerateContentConfig(response_mime_type="application/json",
                                                                          response_json_schema=schema)))
    jsonschema_rs.validate(schema, json.loads(streamed))
    free = gemini.models.generate_content(model=GEMINI, contents="A city", config=types.GenerateContentConfig(
        response_mime_type="application/json"))
    assert list(json.loads(free.text)) == ["answer"]


def test_invalid_output_gives_json_and_args_that_fail_validation(gemini, sandbox):
    schema = City.model_json_schema()
    for _ in range(2):
        requests.post(f"{sandbox.url}/_sandbox/faults", json={"model": GEMINI, "fault": "invalid_output", "count": 1},
                      timeout=5).raise_for_status()
    answer = gemini.models.generate_content(model=GEMINI, contents="A city", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema))
    assert not jsonschema_rs.is_valid(schema, json.loads(answer.text))
    call = gemini.models.generate_content(model=GEMINI, contents=ASK, config=config()).function_calls[0]
    assert not jsonschema_rs.is_valid(WEATHER, call.args)


def test_inline_and_file_images_are_seen(gemini):
    contents = [types.Part.from_bytes(data=JPEG, mime_type="image/jpeg"),
                types.Part.from_uri(file_uri="https://storage.example.net/x.png", mime_type="image/png"), "What?"]
    response = gemini.models.generate_content(model=GEMINI, contents=contents)
    assert response.text.startswith(f"I see 2 images: image/jpeg, {len(JPEG)} bytes; an image from storage.example.net")
    text_only = gemini.models.generate_content(model=GEMINI, contents="What?")
    assert response.usage_metadata.prompt_token_count - text_only.usage_metadata.prompt_token_count > 85 + 170 + 765


def test_candidate_count_and_other_options_are_accepted(gemini):
    response = gemini.models.generate_content(model=GEMINI, contents=ASK, config=types.GenerateContentConfig(
        candidate_count=2, seed=3, presence_penalty=0.1, frequency_penalty=0.1, response_logprobs=True, logprobs=2))
    texts = [c.content.parts[0].text for c in response.candidates]
    assert [c.index for c in response.candidates] == [0, 1] and texts[0] != texts[1]
