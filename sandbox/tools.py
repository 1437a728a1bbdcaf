"""Tools offered to the model, and which of them it calls: the sandbox's deterministic rule.

With tools offered and a choice other than none:
- a forced choice (OpenAI "required" or a named function, Anthropic "any" or "tool",
  Gemini ANY) always calls: the named tool, or else the tools picked as below;
- an automatic choice calls tools only when the conversation's last message is the user's
  and carries no tool results; after tool results (or on a prefill) the model answers in text;
- the tools picked: every tool whose name appears in the last user message, in the order
  offered (only the first when parallel calls are off); when none appears, the one whose name
  and description share most words (of three letters or more) with the message, the first on
  a tie.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sandbox.conversation import Conversation

AUTO, NONE, REQUIRED = "auto", "none", "required"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    schema: dict = field(default_factory=dict)  # the arguments' JSON Schema


@dataclass(frozen=True)
class ToolOptions:
    tools: tuple[Tool, ...] = ()
    choice: str = AUTO  # auto, none or required
    forced: str | None = None  # the tool a named choice names
    parallel: bool = True

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) >= 3}


def tools_to_call(conversation: Conversation, options: ToolOptions) -> list[Tool]:
    """The tools the model calls now, in order; [] when it answers in text."""
    if not options.tools or options.choice == NONE:
        return []
    if options.forced is not None:
        return [t for t in options.tools if t.name == options.forced][:1]
    last = conversation.last
    if options.choice != REQUIRED and (last is None or last.role != "user" or last.tool_results):
        return []
    message = last.content if last is not None else ""
    named = [t for t in options.tools if t.name.lower() in message.lower()]
    if named:
        return named if options.parallel else named[:1]
    words = _words(message)
    return [max(options.tools, key=lambda t: len(words & _words(f"{t.name} {t.description}")))]
