"""Tools (and structured output through a forced tool) and images through the anthropic SDK
against a running sandbox."""

from __future__ import annotations

import base64

import anthropic
import jsonschema_rs
import pytest
import requests
from pydantic import BaseModel

from orchestrator.core.catalog import Catalog
from sandbox.background import BackgroundSandbox

CLAUDE = "claude-3-5-haiku-20241022"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
           "required": ["city", "days"]}
TOOLS = [{"name": "get_weather", "description": "Weather forecast for a city", "input_schema": WEATHER},
         {"name": "get_time", "description": "Local time", "input_schema": {"type": "object", "properties": {}}}]
ASK = [{"role": "user", "content": "Will it rain in Oslo?"}]
GIF = b"GIF89a" + (640).to_bytes(2, "little") + (480).to_bytes(2, "little") + bytes(20)


class Invoice(BaseModel):
    number: str
    total: float
    paid: bool


@pytest.fixture(scope="module")
def sandbox():
    with BackgroundSandbox(Catalog.load(), latency_scale=0) as server:
        yield server


@pytest.fixture(scope="module")
def claude(sandbox):
    return anthropic.Anthropic(base_url=sandbox.url, api_key="sandbox", max_retries=0, timeout=10)


def test_tool_use_blocks_whose_input_validates(claude):
    message = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ASK, tools=TOOLS)
    (block,) = message.content
    assert message.stop_reason == "tool_use" and block.type == "tool_use" and block.name == "get_weather"
    assert block.id.startswith("toolu_")
    jsonschema_rs.validate(WEATHER, block.input)


def test_streamed_tool_use_events(claude):
    events = list(claude.messages.create(model=CLAUDE, max_tokens=200, messages=ASK, tools=TOOLS, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]  # the SDK passes no ping on
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[1].content_block
    assert (start.type, start.name, start.input) == ("tool_use", "get_weather", {})
    pieces = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert len(pieces) > 1 and all(e.delta.type == "input_json_delta" for e in events if e.type == "content_block_delta")
    assert events[-2].delta.stop_reason == "tool_use"
    with claude.messages.stream(model=CLAUDE, max_tokens=200, messages=ASK, tools=TOOLS) as stream:
        final = stream.get_final_message()
    jsonschema_rs.validate(WEATHER, final.content[0].input)


def test_a_tool_round_trip_quotes_the_results_and_errors(claude):
    both = [{"role": "user", "content": "get_weather and get_time"}]
    message = claude.messages.create(model=CLAUDE, max_tokens=200, messages=both, tools=TOOLS)
    weather, time = message.content
    results = [{"type": "tool_result", "tool_use_id": weather.id, "content": [{"type": "text", "text": "rain"}]},
               {"type": "tool_result", "tool_use_id": time.id, "content": "no clock", "is_error": True}]
    history = [*both, {"role": "assistant", "content": [b.model_dump() for b in message.content]},
               {"role": "user", "content": results}]
    answer = claude.messages.create(model=CLAUDE, max_tokens=200, messages=history, tools=TOOLS)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text.startswith("Tool get_weather returned: rain. Tool get_time failed: no clock. ")


def test_tool_choice_any_tool_none_and_no_parallel_calls(claude):
    both = [{"role": "user", "content": "get_weather and get_time"}]
    single = claude.messages.create(model=CLAUDE, max_tokens=200, messages=both, tools=TOOLS,
                                    tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [b.name for b in single.content] == ["get_weather"]
    forced = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ASK, tools=TOOLS,
                                    tool_choice={"type": "tool", "name": "get_time"})
    assert [b.name for b in forced.content] == ["get_time"]
    text = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ASK, tools=TOOLS, tool_choice={"type": "none"})
    assert text.content[0].type == "text"


def test_structured_output_by_a_forced_tool_and_the_invalid_output_fault(claude, sandbox):
    schema = Invoice.model_json_schema()
    tools = [{"name": "invoice", "description": "Record the invoice", "input_schema": schema}]
    ask = [{"role": "user", "content": "Invoice 12 for 30 euros, paid"}]
    forced = {"type": "tool", "name": "invoice"}
    good = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ask, tools=tools, tool_choice=forced)
    assert Invoice.model_validate(good.content[0].input)
    rule = {"model": CLAUDE, "fault": "invalid_output", "count": 1}
    requests.post(f"{sandbox.url}/_sandbox/faults", json=rule, timeout=5).raise_for_status()
    bad = claude.messages.create(model=CLAUDE, max_tokens=200, messages=ask, tools=tools, tool_choice=forced)
    assert not jsonschema_rs.is_valid(schema, bad.content[0].input)


def test_images_by_base64_and_url(claude):
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/gif",
                                            "data": base64.b64encode(GIF).decode()}},
               {"type": "image", "source": {"type": "url", "url": "https://cdn.example.com/a.png"}},
               {"type": "text", "text": "Describe"}]
    message = claude.messages.create(model=CLAUDE, max_tokens=300, messages=[{"role": "user", "content": content}])
    assert message.content[0].text.startswith(
        f"I see 2 images: image/gif, {len(GIF)} bytes; an image from cdn.example.com. ")
    text_only = claude.messages.create(model=CLAUDE, max_tokens=300, messages=[{"role": "user", "content": "Describe"}])
    assert message.usage.input_tokens - text_only.usage.input_tokens > 85 + 170 * 4  # 640 x 480: 4 tiles, and 1024^2


def test_an_unmatched_tool_result_is_refused(claude):
    stray = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        claude.messages.create(model=CLAUDE, max_tokens=50, messages=stray)


def test_metadata_stop_sequences_and_top_k_are_accepted(claude):
    message = claude.messages.create(model=CLAUDE, max_tokens=50, messages=ASK, metadata={"user_id": "u-1"},
                                     stop_sequences=["zzz"], extra_body={"top_k": 5})
    assert message.stop_reason in ("end_turn", "max_tokens")
