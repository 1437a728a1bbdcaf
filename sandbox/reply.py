"""What the sandbox says to a call: the text or the tool calls, their tokens and why it stopped.

A text answer to a last message with tool results first quotes each (`Tool get_weather
returned: {...}.`), and one to a last message with images says what it sees (`I see 1 image:
image/png, 68 bytes.`), so a test can tell that they reached the provider. Choice k > 0 of
`n` answers the canonical text followed by `choice: k`, so the choices differ.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sandbox.answers import answer, count_tokens
from sandbox.conversation import Conversation, ToolCall, compact_json
from sandbox.schema_values import invalid_value_for, value_for
from sandbox.structured import OutputFormat, structured_text
from sandbox.tools import Tool, ToolOptions, tools_to_call

MAX_REASONING_TOKENS = 128
TOOL_CALLS = "tool_calls"


@dataclass(frozen=True)
class Reply:
    text: str
    tokens: int  # visible output tokens, one a word (a tool call's: its arguments' JSON at four characters a token)
    reasoning_tokens: int
    finish: str  # stop, length, stop_sequence or tool_calls
    stop_sequence: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # their ids are hex keys: each wire format gives them its prefix


def reasoning_budget(max_tokens: int) -> int:
    """Hidden reasoning a reasoning model spends first, out of the same max_tokens."""
    return min(MAX_REASONING_TOKENS, max_tokens // 4)


def _prompt(conversation: Conversation, variant: int) -> str:
    return conversation.canonical_text() + (f"\nchoice: {variant}" if variant else "")


def _preamble(conversation: Conversation) -> str:
    """What the answer says first of the last user message's tool results and images."""
    last = conversation.last
    if last is None or last.role != "user":
        return ""
    sentences = [f"Tool {r.name} {'failed' if r.is_error else 'returned'}: {r.content}." for r in last.tool_results]
    if last.images:
        count = len(last.images)
        seen = "; ".join(image.describe() for image in last.images)
        sentences.append(f"I see {count} image{'s' if count > 1 else ''}: {seen}.")
    return " ".join(sentences)


def reply_to(
    conversation: Conversation, max_tokens: int, stop: tuple[str, ...] = (), reasoning: bool = False,
    variant: int = 0,
) -> Reply:
    reasoning_tokens = reasoning_budget(max_tokens) if reasoning else 0
    budget = max(1, max_tokens - reasoning_tokens)
    preamble = _preamble(conversation)
    preamble_tokens = len(preamble.split())
    text, tokens, finish = answer(_prompt(conversation, variant), max(1, budget - preamble_tokens))
    if preamble:
        text, tokens = f"{preamble} {text}", tokens + preamble_tokens
    if conversation.prefill is not None:
        text = " " + text[0].lower() + text[1:]
    cut = _cut_at_stop_sequence(text, stop)
    if cut is not None:
        text, sequence = cut
        return Reply(text, len(text.split()), reasoning_tokens, "stop_sequence", sequence)
    return Reply(text, tokens, reasoning_tokens, finish)


@dataclass(frozen=True)
class Asked:
    """What a call asks of the answer besides the conversation."""

    max_tokens: int
    stop: tuple[str, ...] = ()
    tool_options: ToolOptions = ToolOptions()
    output: OutputFormat | None = None
    choices: int = 1
    reasoning: bool = False  # a reasoning model's answer
    invalid: bool = False  # the invalid_output fault: structured answers that do not validate


def replies_to(conversation: Conversation, asked: Asked) -> tuple[Reply, ...]:
    """The answers, one a choice."""
    return tuple(_reply(conversation, asked, variant) for variant in range(asked.choices))


def _reply(conversation: Conversation, asked: Asked, variant: int) -> Reply:
    tools = tools_to_call(conversation, asked.tool_options)
    prompt = _prompt(conversation, variant)
    max_tokens = asked.max_tokens
    if tools:
        return _tool_calls(tools, prompt, reasoning_budget(max_tokens) if asked.reasoning else 0, asked.invalid)
    reply = reply_to(conversation, max_tokens, asked.stop, asked.reasoning, variant)
    if asked.output is None:
        return reply
    text = structured_text(asked.output, reply.text, prompt, asked.invalid)
    words = re.findall(r"\s*\S+", text)
    budget = max(1, max_tokens - reply.reasoning_tokens)
    if len(words) > budget:
        return Reply("".join(words[:budget]), budget, reply.reasoning_tokens, "length")
    return Reply(text, len(words), reply.reasoning_tokens, "stop")


def _tool_calls(tools: list[Tool], prompt: str, reasoning_tokens: int, invalid: bool) -> Reply:
    calls = []
    for index, tool in enumerate(tools):
        salt = f"{prompt}\x00{index}\x00{tool.name}"
        arguments = invalid_value_for(tool.schema, salt) if invalid else value_for(tool.schema, salt)
        key = hashlib.blake2b(salt.encode(), digest_size=12).hexdigest()
        calls.append(ToolCall(key, tool.name, arguments))
    tokens = sum(count_tokens(f"{call.name}{compact_json(call.arguments)}") for call in calls)
    return Reply("", tokens, reasoning_tokens, TOOL_CALLS, tool_calls=tuple(calls))


def _cut_at_stop_sequence(text: str, stop: tuple[str, ...]) -> tuple[str, str] | None:
    """The text before the earliest stop sequence in it, and that sequence; None if none occurs."""
    found = [(text.find(s), s) for s in stop if s and s in text]
    if not found:
        return None
    position, sequence = min(found)
    return text[:position].rstrip(), sequence
