"""The one interface every provider adapter implements, and the normalized shapes it speaks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import httpx2

from orchestrator.providers.errors import ErrorKind, ProviderError


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


class Provider(Protocol):
    """A provider adapter: turns a ChatRequest into its SDK's call and back.

    Both calls raise ProviderError (providers/errors.py) and nothing else for a failed call.
    A stream yields StreamDelta events and ends with exactly one StreamEnd; a stream that
    stops without its provider's terminating event raises instead of ending quietly.
    """

    name: str
    sandbox: bool

    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse: ...

    def stream(self, request: ChatRequest, timeout: float) -> Iterator[StreamEvent]: ...


class SdkProvider:
    """What every adapter shares: its name, its SDK client, and whether that client is the sandbox."""

    def __init__(self, name: str, client, sandbox: bool):
        self.name = name
        self.client = client
        self.sandbox = sandbox

    def _posted_stream(self, path: str, body: dict, request: ChatRequest, timeout: float) -> Iterator[StreamEvent]:
        """A streaming call by the SDK client's plain POST (openai's and anthropic's share it),
        its answer read by the adapter's `_events`. The typed `create` would check and transform
        every argument against its type hints first, a millisecond before the first byte leaves
        (bench/provider_call.py); these arguments are plain JSON already."""
        response = self.client.post(path, cast_to=httpx2.Response, body=body, stream=True,
                                    options={"headers": request_headers(request), "timeout": timeout})
        try:
            yield from self._events(response, request.model)
        finally:
            response.close()  # closing the stream early cancels the upstream call

    def _response(
        self, request: ChatRequest, started: float, content: str, finish_reason: str, usage: Usage,
        provider_request_id: str | None,
    ) -> ChatResponse:
        latency = time.monotonic() - started
        return ChatResponse(
            content=content,
            finish_reason=finish_reason,
            usage=usage,
            model=request.model,
            provider=self.name,
            provider_request_id=provider_request_id,
            latency=latency,
            time_to_first_token=latency,
            sandbox=self.sandbox,
        )

    def _incomplete(self, model: str) -> ProviderError:
        """A stream that stopped without its provider's terminating event: never a short answer."""
        return ProviderError(ErrorKind.SERVER_ERROR, "the stream ended before the answer was complete",
                             provider=self.name, model=model)


def request_headers(request: ChatRequest) -> dict[str, str]:
    """The headers every provider call carries: the request id, so that a provider's logs
    (and the sandbox's attempt log) name the gateway request a call belongs to."""
    return {"X-Request-ID": request.request_id} if request.request_id else {}


def system_text(request: ChatRequest) -> str | None:
    """The system prompt and any system messages of the conversation, in order, as one text."""
    parts = [request.system_prompt] if request.system_prompt else []
    parts.extend(m.content for m in request.messages if m.role == "system")
    return "\n\n".join(parts) or None


def alternating_turns(messages: tuple[Message, ...]) -> list[Message]:
    """User and assistant turns that alternate and start with the user, as Anthropic and
    Gemini require: consecutive turns of one role are joined, nothing is dropped."""
    turns: list[Message] = []
    for message in messages:
        if message.role == "system":
            continue
        if turns and turns[-1].role == message.role:
            turns[-1] = Message(message.role, f"{turns[-1].content}\n\n{message.content}")
        else:
            turns.append(message)
    if turns and turns[0].role != "user":
        turns.insert(0, Message("user", "(The conversation so far follows.)"))
    return turns
