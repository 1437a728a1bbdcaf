"""Task analysis: what a conversation asks for, as the router needs to know it."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.providers.base import Message


@dataclass(frozen=True)
class TaskAnalysis:
    input_tokens: int
    expected_output_tokens: int


def estimate_tokens(text: str) -> int:
    """About four characters a token: cheap, and close enough for English prose and code."""
    return (len(text) + 3) // 4


def analyze(messages: tuple[Message, ...], system_prompt: str | None, max_tokens: int) -> TaskAnalysis:
    # Each message also costs a few tokens of role markup.
    input_tokens = sum(estimate_tokens(m.content) + 4 for m in messages) + estimate_tokens(system_prompt or "")
    return TaskAnalysis(input_tokens=input_tokens, expected_output_tokens=min(max_tokens, 400))
