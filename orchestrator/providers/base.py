"""The one interface every provider adapter implements (it speaks the shapes of orchestrator/core/types.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import httpx2

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import (
    ASSISTANT,
    SYSTEM,
    USER,
    ChatRequest,
    ChatResponse,
    Message,
    StreamEvent,
    ToolCall,
    Usage,
)


class Provider(Protocol):
    """A provider adapter: turns a ChatRequest into its SDK's call and back.

    Both calls raise ProviderError (providers/errors.py) and nothing else for a failed call.
    A stream yields StreamDelta events and ends with exactly one StreamEnd; a stream that
    stops without its provider's terminating event raises instead of ending quietly.
    """

    name: str
    sandbox: bool

    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse: ...

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]: ...


@dataclass(frozen=True)
class Embedded:
    """An embeddings call's answer: a vector an input, in their order (base64 float32,
    orchestrator/core/embedding.py), and the input tokens the provider counted (None when it
    does not say)."""

    vectors: list[str]
    input_tokens: int | None


class EmbeddingProvider(Protocol):
    """An adapter whose provider has an embeddings API (OpenAI's wire format and Gemini's).
    `embed` raises ProviderError, and nothing else, for a failed call."""

    name: str
    sandbox: bool

    def embed(self, model: str, inputs: list[str], dimensions: int | None, timeout: float,
              request_id: str | None) -> Embedded: ...


class SdkProvider:
    """What every adapter shares: its name, its SDK client, and whether that client is the sandbox."""

    def __init__(self, name: str, client, sandbox: bool):
        self.name = name
        self.client = client
        self.sandbox = sandbox

    def _posted_stream(
        self, path: str, body: dict, request: ChatRequest, timeout: float
    ) -> Generator[StreamEvent, None, None]:
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
        provider_request_id: str | None, tool_calls: tuple[ToolCall, ...] = (), logprobs: list | None = None,
    ) -> ChatResponse:
        latency = time.monotonic() - started
        return ChatResponse(
            content=content,
            finish_reason=finish_reason_of(finish_reason, tool_calls),
            tool_calls=tool_calls,
            logprobs=logprobs,
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


TOOL_CALLS = "tool_calls"  # the finish reason of an answer that calls tools


def finish_reason_of(reason: str, tool_calls: tuple[ToolCall, ...]) -> str:
    """TOOL_CALLS exactly when the answer calls tools (a structured answer given through a
    tool, as Anthropic's, is not a call)."""
    if tool_calls:
        return TOOL_CALLS
    return "stop" if reason == TOOL_CALLS else reason


def request_headers(request: ChatRequest) -> dict[str, str]:
    """The headers every provider call carries: the request id, so that a provider's logs
    (and the sandbox's attempt log) name the gateway request a call belongs to."""
    return {"X-Request-ID": request.request_id} if request.request_id else {}


def system_text(request: ChatRequest) -> str | None:
    """The system prompt and any system messages of the conversation, in order, as one text."""
    parts = [request.system_prompt] if request.system_prompt else []
    parts.extend(m.content for m in request.messages if m.role == SYSTEM)
    return "\n\n".join(parts) or None


@dataclass
class Turn:
    role: str  # user or assistant
    messages: list[Message]

    def text(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.content)


def alternating_turns(messages: tuple[Message, ...]) -> list[Turn]:
    """User and assistant turns that alternate and start with the user, as Anthropic and
    Gemini require: tool results are the user's, consecutive messages of one role make one
    turn, nothing is dropped."""
    turns: list[Turn] = []
    for message in messages:
        if message.role == SYSTEM:
            continue
        role = ASSISTANT if message.role == ASSISTANT else USER
        if turns and turns[-1].role == role:
            turns[-1].messages.append(message)
        else:
            turns.append(Turn(role, [message]))
    if turns and turns[0].role != USER:
        turns.insert(0, Turn(USER, [Message(USER, "(The conversation so far follows.)")]))
    return turns


def tool_arguments(call: ToolCall) -> dict:
    """A call's arguments as an object, for the providers that take them parsed (the API
    checked that they are a JSON object)."""
    value = json.loads(call.arguments or "{}")
    return value if isinstance(value, dict) else {}


def tool_names(messages: tuple[Message, ...]) -> dict[str, str]:
    """The name of the tool each call id called, for the providers whose results name the tool."""
    return {call.id: call.name for m in messages for call in m.tool_calls}
