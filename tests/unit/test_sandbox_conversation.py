"""The sandbox's canonical conversation, each wire format's reading of it, and the reply to it."""

import pytest

from sandbox.answers import answer, count_tokens
from sandbox.anthropic_wire import AnthropicWire
from sandbox.conversation import Conversation, InvalidConversation, text_of
from sandbox.gemini_wire import GeminiWire
from sandbox.openai_wire import OpenAIWire
from sandbox.reply import MAX_REASONING_TOKENS, reply_to
from sandbox.wire import UpstreamError

OPENAI_BODY = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        {"role": "user", "content": "Tell me more"},
    ],
    "max_tokens": 50,
    "stop": "model",
}
ANTHROPIC_BODY = {
    "model": "claude-3-5-haiku-20241022",
    "system": [{"type": "text", "text": "Be brief"}],
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me more"}]},
    ],
    "max_tokens": 50,
    "stop_sequences": ["model"],
}
GEMINI_BODY = {
    "systemInstruction": {"parts": [{"text": "Be brief"}], "role": "user"},
    "contents": [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hmm", "thought": True}, {"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "Tell me more"}]},
    ],
    "generationConfig": {"maxOutputTokens": 50, "stopSequences": ["model"], "temperature": 0.2},
}
CANONICAL = "system: Be brief\nuser: Hi\nassistant: Hello\nuser: Tell me more"


def test_the_three_wire_formats_read_the_same_conversation():
    openai_call = OpenAIWire().parse(OPENAI_BODY, {})
    anthropic_call = AnthropicWire().parse(ANTHROPIC_BODY, {})
    gemini_call = GeminiWire().parse(GEMINI_BODY, {"model": "gemini-2.5-flash", "action": "generateContent"})
    assert openai_call.conversation == anthropic_call.conversation == gemini_call.conversation
    assert openai_call.conversation.canonical_text() == CANONICAL
    assert {c.max_tokens for c in (openai_call, anthropic_call, gemini_call)} == {50}
    assert {c.stop for c in (openai_call, anthropic_call, gemini_call)} == {("model",)}
    assert gemini_call.model == "gemini-2.5-flash" and not gemini_call.stream


def test_stream_flags_are_read_from_each_format():
    openai_call = OpenAIWire().parse({**OPENAI_BODY, "stream": True, "stream_options": {"include_usage": True}}, {})
    assert openai_call.stream and openai_call.include_usage
    assert AnthropicWire().parse({**ANTHROPIC_BODY, "stream": True}, {}).stream
    assert GeminiWire().parse(GEMINI_BODY, {"model": "m", "action": "streamGenerateContent"}).stream


def test_openai_accepts_max_completion_tokens_and_developer_messages():
    body = {"model": "o3-mini", "max_completion_tokens": 7,
            "messages": [{"role": "developer", "content": "Rules"}, {"role": "user", "content": "Q"}]}
    call = OpenAIWire().parse(body, {})
    assert call.max_tokens == 7 and call.conversation.canonical_text() == "system: Rules\nuser: Q"


def test_input_tokens_count_the_text_and_each_message():
    conversation = Conversation.of(["Be brief"], [("user", "Hi")])
    assert conversation.input_tokens() == count_tokens("system: Be brief\nuser: Hi") + 2 * 3


def test_text_of_reads_strings_and_text_parts_only():
    assert text_of(None) == ""
    assert text_of("plain") == "plain"
    assert text_of([{"type": "image_url", "image_url": {}}, {"type": "text", "text": "a"}, {"text": "b"}]) == "a\nb"
    with pytest.raises(InvalidConversation):
        text_of(42)


@pytest.mark.parametrize(
    "messages, message",
    [
        ([], "at least one message"),
        ([{"role": "assistant", "content": "x"}], 'first message must use the "user" role'),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "roles must alternate"),
        ([{"role": "system", "content": "a"}], "Input should be 'user' or 'assistant'"),
    ],
)
def test_anthropic_refuses_what_the_messages_api_refuses(messages, message):
    with pytest.raises(UpstreamError) as caught:
        AnthropicWire().parse({**ANTHROPIC_BODY, "messages": messages}, {})
    assert caught.value.kind == "invalid_request" and message in caught.value.message


def test_anthropic_needs_max_tokens():
    body = {k: v for k, v in ANTHROPIC_BODY.items() if k != "max_tokens"}
    with pytest.raises(UpstreamError, match="max_tokens"):
        AnthropicWire().parse(body, {})


@pytest.mark.parametrize("body", [{"model": "m"}, {"model": "m", "messages": [{"role": "wizard", "content": "x"}]},
                                  {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}])
def test_openai_refuses_bad_bodies(body):
    with pytest.raises(UpstreamError):
        OpenAIWire().parse(body, {})


def test_reply_is_the_answer_to_the_canonical_text():
    conversation = Conversation.of(["Be brief"], [("user", "Hi")])
    text, tokens, finish = answer("system: Be brief\nuser: Hi", 1000)
    reply = reply_to(conversation, 1000)
    assert (reply.text, reply.tokens, reply.finish, reply.reasoning_tokens) == (text, tokens, finish, 0)


def test_a_prefill_is_continued():
    conversation = Conversation.of([], [("user", "Hi"), ("assistant", "Well,")])
    reply = reply_to(conversation, 1000)
    full = answer(conversation.canonical_text(), 1000)[0]
    assert reply.text == " " + full[0].lower() + full[1:]


def test_the_answer_stops_before_the_earliest_stop_sequence():
    conversation = Conversation.of([], [("user", "Tell me everything")])
    full = reply_to(conversation, 1000).text
    third, fifth = full.split()[2], full.split()[4]
    reply = reply_to(conversation, 1000, stop=(fifth, third))
    assert reply.finish == "stop_sequence" and reply.stop_sequence in (third, fifth)
    assert full.startswith(reply.text) and reply.stop_sequence not in reply.text
    assert reply.tokens == len(reply.text.split())


def test_reasoning_models_spend_part_of_max_tokens_on_reasoning():
    conversation = Conversation.of([], [("user", "Tell me everything")])
    assert reply_to(conversation, 1000, reasoning=True).reasoning_tokens == MAX_REASONING_TOKENS
    small = reply_to(conversation, 8, reasoning=True)
    assert small.reasoning_tokens == 2 and small.tokens == 6 and small.finish == "length"
