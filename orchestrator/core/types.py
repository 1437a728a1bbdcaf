"""The normalized shapes every layer speaks: a chat request, its messages, usage, a response
and the events of a stream."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    role: str  # system, user or assistant
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """A provider-neutral chat call: the whole conversation and the generation settings."""

    model: str
    messages: tuple[Message, ...]
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)
    request_id: str | None = None  # the gateway's X-Request-ID, sent on to the provider in the same header


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class ChatResponse:
    content: str
    finish_reason: str
    usage: Usage
    model: str
    provider: str
    provider_request_id: str | None
    latency: float
    time_to_first_token: float | None = None
    sandbox: bool = False


@dataclass(frozen=True)
class StreamDelta:
    """A piece of the answer's text, in order."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The stream finished properly: why, what it used, and the provider's id for it."""

    finish_reason: str
    usage: Usage
    provider_request_id: str | None


StreamEvent = StreamDelta | StreamEnd
