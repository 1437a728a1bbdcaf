"""The conversation every wire format is parsed into, and its canonical text.

The canonical text is what the sandbox answers, so the same conversation gets the same
answer in every wire format: the system prompt first, then a "role: item" line for each item
of each message in a fixed order (tool results, text, images, tool calls). Tool calls and
results are written without their ids, arguments and results as compact JSON with sorted
keys, images by what they are (images.py): a conversation translated from one provider's
shapes to another's (OpenAI's tool messages into one Anthropic user turn, say) reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.answers import count_tokens

if TYPE_CHECKING:
    from sandbox.images import Image

ROLES = ("user", "assistant")
_TOKENS_PER_MESSAGE = 3  # the role and the framing around each message


class InvalidConversation(ValueError):
    """The request's messages cannot be read as a conversation."""


def text_of(content) -> str:
    """The text of a message's content: a string, or a list of parts with a "text" each.

    Parts without text (images, tool calls) and Gemini's thought parts are left out.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidConversation("message content must be a string or a list of parts")
    texts = [
        part["text"]
        for part in content
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    ]
    return "\n".join(texts)


def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def result_text(value) -> str:
    """A tool result as text: a string as it is, unless it holds a JSON object or array
    (then compact, keys sorted, as any other value)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return compact_json(parsed) if isinstance(parsed, dict | list) else value
    return compact_json(value)


def arguments_of(text) -> Any:
    """Tool-call arguments sent as a JSON string (OpenAI's way): the value, or the string as it is."""
    if not isinstance(text, str):
        raise InvalidConversation("tool call arguments must be a JSON string")
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


@dataclass(frozen=True)
class ToolCall:
    id: str  # "" where the wire format has none (Gemini)
    name: str
    arguments: Any

    def canonical(self) -> str:
        return f"[call {self.name}: {compact_json(self.arguments)}]"

    def as_log(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    content: str  # result_text of what the tool returned
    is_error: bool = False

    def canonical(self) -> str:
        return f"[{'error from' if self.is_error else 'result of'} {self.name}: {self.content}]"

    def as_log(self) -> dict:
        return {"call_id": self.call_id, "name": self.name, "content": self.content, "is_error": self.is_error}


@dataclass(frozen=True)
class Message:
    role: str  # user or assistant
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    images: tuple[Image, ...] = ()

    def items(self) -> list[str]:
        results = [r.canonical() for r in self.tool_results]
        rest = [*(i.canonical() for i in self.images), *(c.canonical() for c in self.tool_calls)]
        text = [self.content] if self.content or not (results or rest) else []
        return [*results, *text, *rest]

    def as_dict(self) -> dict:
        logged = {"role": self.role, "content": self.content}
        for name in ("tool_calls", "tool_results", "images"):
            if getattr(self, name):
                logged[name] = [item.as_log() for item in getattr(self, name)]
        return logged


@dataclass(frozen=True)
class Conversation:
    system: str | None
    messages: tuple[Message, ...]

    @classmethod
    def of(cls, system_parts: list[str], turns: list[tuple[str, str] | Message]) -> Conversation:
        """From system texts (joined) and turns: (role, text) pairs or messages, of role user or assistant."""
        system = "\n".join(part for part in system_parts if part) or None
        return cls(system, tuple(t if isinstance(t, Message) else Message(*t) for t in turns))

    def canonical_text(self) -> str:
        lines = [f"system: {self.system}"] if self.system else []
        lines.extend(f"{m.role}: {item}" for m in self.messages for item in m.items())
        return "\n".join(lines)

    def input_tokens(self) -> int:
        framed = len(self.messages) + (1 if self.system else 0)
        images = sum(image.tokens for m in self.messages for image in m.images)
        return count_tokens(self.canonical_text()) + _TOKENS_PER_MESSAGE * framed + images

    @property
    def last(self) -> Message | None:
        return self.messages[-1] if self.messages else None

    @property
    def prefill(self) -> str | None:
        """The last message's text when it is the assistant's (and calls no tool): the answer continues it."""
        last = self.last
        if last is not None and last.role == "assistant" and not last.tool_calls:
            return last.content
        return None

    def as_log(self) -> dict:
        return {"system": self.system, "messages": [m.as_dict() for m in self.messages]}


def call_names(messages: list[Message]) -> dict[str, str]:
    """Tool call id -> tool name, for the calls in these messages."""
    return {call.id: call.name for message in messages for call in message.tool_calls}


def unanswered_calls(messages: list[Message]) -> tuple[int, list[str]] | None:
    """The first assistant message (its index) with calls that the messages after it, up to
    the next assistant message, do not answer, and those calls' ids; None when all are answered
    (an assistant message that ends the conversation is not checked)."""
    for index, message in enumerate(messages[:-1]):
        answered = set()
        for later in messages[index + 1 :]:
            if later.role == "assistant":
                break
            answered.update(result.call_id for result in later.tool_results)
        missing = [call.id for call in message.tool_calls if call.id not in answered]
        if missing:
            return index, missing
    return None
