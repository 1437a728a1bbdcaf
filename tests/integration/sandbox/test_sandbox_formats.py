"""The sandbox's three wire formats, driven over HTTP by the real openai, anthropic and
google-genai SDKs: plain and streamed, system prompts, multi-turn, max tokens, usage.
"""

from __future__ import annotations

import anthropic
import pytest
import requests
from google import genai
from google.genai import types

from orchestrator.core.catalog import Catalog
from sandbox.answers import count_tokens
from sandbox.conversation import Conversation
from sandbox.prompt_cache import CACHEABLE_TOKENS
from sandbox.reply import MAX_REASONING_TOKENS, reply_to

SYSTEM = "You are terse"
TURNS = [("user", "What is TCP?"), ("assistant", "A protocol."), ("user", "And UDP?")]
CONVERSATION = Conversation.of([SYSTEM], TURNS)
GPT, CLAUDE, GEMINI = "gpt-4o", "claude-3-5-haiku-20241022", "gemini-2.5-flash"


def openai_messages(system: str | None, turns) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": r, "content": t} for r, t in turns]


def anthropic_messages(turns) -> list[dict]:
    return [{"role": r, "content": t} for r, t in turns]


def gemini_contents(turns) -> list[types.Content]:
    return [types.Content(role="model" if r == "assistant" else "user", parts=[types.Part(text=t)]) for r, t in turns]


def gemini_config(system: str | None = SYSTEM, **options) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(system_instruction=system, **options)


def test_openai_plain(oai):
    completion = oai.chat.completions.create(model=GPT, messages=openai_messages(SYSTEM, TURNS), max_tokens=1000)
    expected = reply_to(CONVERSATION, 1000)
    assert completion.choices[0].message.content == expected.text
    assert completion.choices[0].finish_reason == "stop" and completion.model == GPT
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (CONVERSATION.input_tokens(), expected.tokens)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == usage.completion_tokens_details.reasoning_tokens == 0
    assert completion._request_id.startswith("req_")


def test_openai_stream_sends_the_same_text_in_chunks_then_usage(oai):
    stream = oai.chat.completions.create(
        model=GPT, messages=openai_messages(SYSTEM, TURNS), max_completion_tokens=1000, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 3 and "".join(texts) == reply_to(CONVERSATION, 1000).text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == CONVERSATION.input_tokens()


def test_anthropic_plain(claude):
    message = claude.messages.create(model=CLAUDE, system=SYSTEM, messages=anthropic_messages(TURNS), max_tokens=1000)
    expected = reply_to(CONVERSATION, 1000)
    assert [block.text for block in message.content] == [expected.text]
    assert message.stop_reason == "end_turn" and message.role == "assistant" and message.model == CLAUDE
    assert (message.usage.input_tokens, message.usage.output_tokens) == (CONVERSATION.input_tokens(), expected.tokens)
    assert message.usage.cache_read_input_tokens == 0
    assert message._request_id.startswith("req_")


def test_anthropic_stream_events_in_order(claude):
    events = list(claude.messages.create(
        model=CLAUDE, system=[{"type": "text", "text": SYSTEM}], messages=anthropic_messages(TURNS), max_tokens=1000,
        stream=True,
    ))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == reply_to(CONVERSATION, 1000).text
    assert events[0].message.usage.input_tokens == CONVERSATION.input_tokens()
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == reply_to(CONVERSATION, 1000).tokens


def test_anthropic_stream_helper_assembles_the_message(claude):
    with claude.messages.stream(model=CLAUDE, system=SYSTEM, messages=anthropic_messages(TURNS), max_tokens=1000) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == final.content[0].text == reply_to(CONVERSATION, 1000).text
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_stream_names_every_event_and_pings(sandbox):
    body = {"model": CLAUDE, "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    raw = requests.post(f"{sandbox.url}/v1/messages", json=body, timeout=5).text
    events = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_gemini_plain(gemini):
    response = gemini.models.generate_content(model=GEMINI, contents=gemini_contents(TURNS), config=gemini_config())
    expected = reply_to(CONVERSATION, 65536)
    assert response.text == expected.text
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (CONVERSATION.input_tokens(), expected.tokens)
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count


def test_gemini_stream(gemini):
    chunks = list(gemini.models.generate_content_stream(
        model=GEMINI, contents=gemini_contents(TURNS), config=gemini_config(max_output_tokens=1000)
    ))
    assert len(chunks) > 3 and "".join(c.text or "" for c in chunks) == reply_to(CONVERSATION, 1000).text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == reply_to(CONVERSATION, 1000).tokens


def test_gemini_v1beta_path_is_served_too(sandbox):
    client = genai.Client(api_key="sandbox", http_options=types.HttpOptions(base_url=sandbox.url, api_version="v1beta"))
    response = client.models.generate_content(model=GEMINI, contents="hi", config=gemini_config(None))
    assert response.text == reply_to(Conversation.of([], [("user", "hi")]), 65536).text


def test_the_same_conversation_gets_the_same_answer_in_every_format(oai, claude, gemini):
    texts = {
        oai.chat.completions.create(model=GPT, messages=openai_messages(SYSTEM, TURNS), max_tokens=500)
        .choices[0].message.content,
        claude.messages.create(model=CLAUDE, system=SYSTEM, messages=anthropic_messages(TURNS), max_tokens=500)
        .content[0].text,
        gemini.models.generate_content(model=GEMINI, contents=gemini_contents(TURNS),
                                       config=gemini_config(max_output_tokens=500)).text,
    }
    assert len(texts) == 1


def test_max_tokens_cut_the_answer_in_every_format(oai, claude, gemini):
    turns = [("user", "Tell me everything")]
    completion = oai.chat.completions.create(model=GPT, messages=openai_messages(None, turns), max_tokens=5)
    message = claude.messages.create(model=CLAUDE, messages=anthropic_messages(turns), max_tokens=5)
    response = gemini.models.generate_content(
        model=GEMINI, contents=gemini_contents(turns), config=gemini_config(None, max_output_tokens=5)
    )
    streamed = list(gemini.models.generate_content_stream(
        model=GEMINI, contents=gemini_contents(turns), config=gemini_config(None, max_output_tokens=5)
    ))
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 5
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert streamed[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert len(completion.choices[0].message.content.split()) == 5
    assert completion.choices[0].message.content == message.content[0].text == response.text


def test_stop_sequences_end_the_answer_in_every_format(oai, claude, gemini):
    turns = [("user", "Tell me everything")]
    stop = reply_to(Conversation.of([], turns), 1000).text.split()[3]
    expected = reply_to(Conversation.of([], turns), 1000, stop=(stop,))
    completion = oai.chat.completions.create(model=GPT, messages=openai_messages(None, turns), stop=stop)
    message = claude.messages.create(model=CLAUDE, messages=anthropic_messages(turns), max_tokens=1000,
                                     stop_sequences=[stop])
    response = gemini.models.generate_content(
        model=GEMINI, contents=gemini_contents(turns), config=gemini_config(None, stop_sequences=[stop])
    )
    assert completion.choices[0].message.content == message.content[0].text == response.text == expected.text
    assert completion.choices[0].finish_reason == "stop"
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", stop)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP


def test_reasoning_models_report_reasoning_tokens(oai):
    completion = oai.chat.completions.create(
        model="o3-mini", messages=[{"role": "user", "content": "Prove it"}], max_completion_tokens=1000
    )
    visible = len(completion.choices[0].message.content.split())
    assert completion.usage.completion_tokens_details.reasoning_tokens == MAX_REASONING_TOKENS
    assert completion.usage.completion_tokens == visible + MAX_REASONING_TOKENS


def test_an_assistant_prefill_is_continued(claude):
    turns = [("user", "Name a colour"), ("assistant", "My favourite is")]
    message = claude.messages.create(model=CLAUDE, messages=anthropic_messages(turns), max_tokens=1000)
    assert message.content[0].text == reply_to(Conversation.of([], turns), 1000).text
    assert message.content[0].text.startswith(" ") and message.content[0].text[1].islower()


def test_a_repeated_long_system_prompt_is_read_from_cache(oai, claude, gemini):
    system = "Follow the house style. " * (CACHEABLE_TOKENS // 5)
    cached = count_tokens(system)
    turns = [("user", "Hi")]
    for _ in range(2):
        completion = oai.chat.completions.create(model=GPT, messages=openai_messages(system, turns))
        message = claude.messages.create(model=CLAUDE, system=system, messages=anthropic_messages(turns), max_tokens=50)
        response = gemini.models.generate_content(model=GEMINI, contents="Hi", config=gemini_config(system))
    assert completion.usage.prompt_tokens_details.cached_tokens == cached
    assert message.usage.cache_read_input_tokens == cached
    assert message.usage.input_tokens == completion.usage.prompt_tokens - cached
    assert response.usage_metadata.cached_content_token_count == cached


def test_a_model_outside_the_catalog_answers_too(oai):
    completion = oai.chat.completions.create(model="my-own-model", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == reply_to(Conversation.of([], [("user", "Hi")]), 4096).text


def test_models_are_listed(oai):
    assert {m.id for m in oai.models.list()} == {m.model_name for m in Catalog.load()}


def test_anthropic_refuses_a_conversation_that_does_not_alternate(claude):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=anthropic_messages([("user", "a"), ("user", "b")]))
    assert caught.value.type == "invalid_request_error" and "alternate" in caught.value.api_message


def test_anthropic_refuses_a_request_without_max_tokens(sandbox):
    body = {"model": CLAUDE, "messages": [{"role": "user", "content": "a"}]}
    reply = requests.post(f"{sandbox.url}/v1/messages", json=body, timeout=5)
    assert reply.status_code == 400
    assert reply.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_a_body_that_is_not_json_is_a_bad_request(sandbox):
    reply = requests.post(f"{sandbox.url}/v1/chat/completions", data=b"{oops", timeout=5)
    assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request_error"
