"""What the sandbox says to a conversation: the text, its tokens and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.answers import answer
from sandbox.conversation import Conversation

MAX_REASONING_TOKENS = 128


@dataclass(frozen=True)
class Reply:
    text: str
    tokens: int  # visible output tokens, one a word
    reasoning_tokens: int
    finish: str  # stop, length or stop_sequence
    stop_sequence: str | None = None


def reasoning_budget(max_tokens: int) -> int:
    """Hidden reasoning a reasoning model spends first, out of the same max_tokens."""
    return min(MAX_REASONING_TOKENS, max_tokens // 4)


def reply_to(
    conversation: Conversation, max_tokens: int, stop: tuple[str, ...] = (), reasoning: bool = False
) -> Reply:
    reasoning_tokens = reasoning_budget(max_tokens) if reasoning else 0
    text, tokens, finish = answer(conversation.canonical_text(), max(1, max_tokens - reasoning_tokens))
    if conversation.prefill is not None:
        text = " " + text[0].lower() + text[1:]
    cut = _cut_at_stop_sequence(text, stop)
    if cut is not None:
        text, sequence = cut
        return Reply(text, len(text.split()), reasoning_tokens, "stop_sequence", sequence)
    return Reply(text, tokens, reasoning_tokens, finish)


def _cut_at_stop_sequence(text: str, stop: tuple[str, ...]) -> tuple[str, str] | None:
    """The text before the earliest stop sequence in it, and that sequence; None if none occurs."""
    found = [(text.find(s), s) for s in stop if s and s in text]
    if not found:
        return None
    position, sequence = min(found)
    return text[:position].rstrip(), sequence
