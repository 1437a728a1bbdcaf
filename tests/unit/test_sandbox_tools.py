"""Which tools the sandbox's model calls, and tool conversations read the same in every wire format."""

from __future__ import annotations

import base64

import pytest

from sandbox.anthropic_wire import AnthropicWire
from sandbox.conversation import Conversation, Message, ToolCall, ToolResult
from sandbox.gemini_wire import GeminiWire
from sandbox.openai_wire import OpenAIWire
from sandbox.reply import reply_to
from sandbox.tools import AUTO, NONE, REQUIRED, Tool, ToolOptions, tools_to_call
from sandbox.wire import UpstreamError

WEATHER = Tool("get_weather", "Current weather for a city", {"type": "object"})
TIME = Tool("get_time", "The local time in a timezone", {"type": "object"})
TOOLS = (WEATHER, TIME)
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8) + (3).to_bytes(4, "big") + (2).to_bytes(4, "big")).decode()


def asking(text: str) -> Conversation:
    return Conversation.of([], [("user", text)])


def called(conversation: Conversation, **options) -> list[str]:
    return [tool.name for tool in tools_to_call(conversation, ToolOptions(TOOLS, **options))]


def test_every_tool_named_in_the_last_user_message_is_called_in_the_order_offered():
    assert called(asking("Call get_time and get_weather")) == ["get_weather", "get_time"]
    assert called(asking("Call get_time and get_weather"), parallel=False) == ["get_weather"]


def test_without_a_name_the_tool_sharing_most_words_is_called_the_first_on_a_tie():
    assert called(asking("What time is it in the Tokyo timezone?")) == ["get_time"]
    assert called(asking("Hello there")) == ["get_weather"]


def test_none_never_calls_and_a_named_choice_always_calls_its_tool():
    assert called(asking("get_weather please"), choice=NONE) == []
    assert called(asking("get_weather please"), choice=REQUIRED, forced="get_time") == ["get_time"]


def test_after_tool_results_auto_answers_in_text_and_required_calls_again():
    results = Conversation.of([], [
        ("user", "get_weather"), Message("assistant", "", (ToolCall("1", "get_weather", {}),)),
        Message("user", "", tool_results=(ToolResult("1", "get_weather", "sunny"),)),
    ])
    assert called(results, choice=AUTO) == []
    assert called(results, choice=REQUIRED) == ["get_weather"]
    assert reply_to(results, 100).text.startswith("Tool get_weather returned: sunny. ")


OPENAI = [
    {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                 {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3, "sky": "grey"}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "09:00"},
    {"role": "user", "content": "Thanks"},
]
ANTHROPIC = [
    {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                              "data": PIXEL}}, {"type": "text", "text": "Weather?"}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                       "input": {"city": "Oslo"}},
                                      {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": '{"sky":"grey","temp":3}'}]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "09:00"}, {"type": "text", "text": "Thanks"}]},
]
GEMINI = [
    {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": PIXEL}}]},
    {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                                {"function_call": {"name": "get_time", "args": {}}}]},
    {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 3, "sky": "grey"}}},
                               {"functionResponse": {"name": "get_time", "response": {"output": "09:00"}}},
                               {"text": "Thanks"}]},
]


def test_a_tool_conversation_with_an_image_reads_the_same_in_every_wire_format():
    texts = {
        OpenAIWire().parse({"model": "m", "messages": OPENAI}, {}).conversation.canonical_text(),
        AnthropicWire().parse({"model": "m", "max_tokens": 9, "messages": ANTHROPIC}, {}).conversation.canonical_text(),
        GeminiWire().parse({"contents": GEMINI}, {"model": "m", "action": "generateContent"})
        .conversation.canonical_text(),
    }
    assert texts == {
        "user: Weather?\nuser: [image: image/png, 24 bytes]\n"
        'assistant: [call get_weather: {"city":"Oslo"}]\nassistant: [call get_time: {}]\n'
        'user: [result of get_weather: {"sky":"grey","temp":3}]\nuser: [result of get_time: 09:00]\nuser: Thanks'
    }


def test_image_tokens_follow_the_image_size():
    call = OpenAIWire().parse({"model": "m", "messages": OPENAI[:1]}, {})
    text_only = Conversation.of([], [Message("user", "Weather?")])
    assert call.conversation.input_tokens() - text_only.input_tokens() - 9 == 85 + 170  # 9: the canonical line


@pytest.mark.parametrize(("wire", "body", "message"), [
    (OpenAIWire(), {"model": "m", "messages": [*OPENAI[:3], OPENAI[4]]}, "did not have response messages: call_2"),
    (OpenAIWire(), {"model": "m", "messages": [OPENAI[0], OPENAI[2]]}, "must be a response to a preceeding"),
    (AnthropicWire(), {"model": "m", "max_tokens": 9, "messages": [ANTHROPIC[2]]}, "unexpected `tool_use_id`"),
    (AnthropicWire(), {"model": "m", "max_tokens": 9, "messages": [*ANTHROPIC[:2], {"role": "user", "content": "x"}]},
     "`tool_use` ids were found without `tool_result` blocks"),
    (OpenAIWire(), {"model": "m", "messages": OPENAI, "tool_choice": "auto"}, "only allowed when 'tools'"),
    (OpenAIWire(), {"model": "m", "messages": OPENAI, "tools": []}, "empty array"),
    (AnthropicWire(), {"model": "m", "max_tokens": 9, "messages": ANTHROPIC, "tools": [{"name": "x"}]},
     "input_schema: Field required"),
    (OpenAIWire(), {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {"type": "json_object"}}, "must contain the word 'json'"),
    (OpenAIWire(), {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}]}]}, "not valid base64"),
])
def test_broken_tool_turns_are_refused_as_the_provider_refuses_them(wire, body, message):
    with pytest.raises(UpstreamError) as caught:
        wire.parse(body, {})
    assert message in caught.value.message
