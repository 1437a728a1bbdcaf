"""The conversation every wire format is parsed into, and its canonical text.

The canonical text ("role: content" lines, the system prompt first) is what the sandbox
answers, so the same conversation gets the same answer in every wire format.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.answers import count_tokens

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


@dataclass(frozen=True)
class Message:
    role: str  # user or assistant
    content: str

    def as_dict(self) -> dict:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Conversation:
    system: str | None
    messages: tuple[Message, ...]

    @classmethod
    def of(cls, system_parts: list[str], turns: list[tuple[str, str]]) -> Conversation:
        """From system texts (joined) and (role, text) turns whose roles are user or assistant."""
        system = "\n".join(part for part in system_parts if part) or None
        return cls(system, tuple(Message(role, text) for role, text in turns))

    def canonical_text(self) -> str:
        lines = [f"system: {self.system}"] if self.system else []
        lines.extend(f"{m.role}: {m.content}" for m in self.messages)
        return "\n".join(lines)

    def input_tokens(self) -> int:
        framed = len(self.messages) + (1 if self.system else 0)
        return count_tokens(self.canonical_text()) + _TOKENS_PER_MESSAGE * framed

    @property
    def prefill(self) -> str | None:
        """The last message's text when it is the assistant's: the answer continues it."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[-1].content
        return None

    def as_log(self) -> dict:
        return {"system": self.system, "messages": [m.as_dict() for m in self.messages]}
