"""What every wire format shares: the parsed call, the answer to send, SSE frames, errors.

A wire format (openai_wire, anthropic_wire, gemini_wire) reads its request body into a
`Call`, and writes a `Completion` as its JSON body or as its stream of SSE frames.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from itertools import pairwise

from aiohttp import web

from sandbox.conversation import Conversation, ToolCall
from sandbox.reply import Reply
from sandbox.structured import OutputFormat
from sandbox.tools import ToolOptions

_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_TEXT_MARKER = "\x00sandbox-text\x00"
CHUNK_TOKENS = 3  # words a streamed chunk

# The neutral error kinds; each wire format gives them its own status and shape.
ERROR_KINDS = ("invalid_request", "rate_limit", "server_error", "overloaded", "context_length", "content_filter")


class UpstreamError(Exception):
    """An error the simulated provider answers with.

    `details` holds what the shape needs: retry_after, tokens and limit (context_length),
    block (Gemini content_filter), param (OpenAI invalid_request).
    """

    def __init__(self, kind: str, message: str | None = None, **details):
        assert kind in ERROR_KINDS, kind
        super().__init__(message or kind)
        self.kind = kind
        self.message = message
        self.details = details

    @property
    def retry_after(self) -> float | None:
        return self.details.get("retry_after")


def invalid(message: str, **details) -> UpstreamError:
    return UpstreamError("invalid_request", message, **details)


def positive_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(f"{name}: must be a whole number of at least 1, got {value!r}", param=name)
    return value


def text_chunks(text: str, size: int = CHUNK_TOKENS, break_at: int | None = None) -> list[tuple[str, int]]:
    """(text, tokens) chunks of `size` words whose concatenation is `text`; one ends at `break_at` words."""
    words = re.findall(r"\s*\S+", text)
    starts = set(range(0, len(words), size))
    if break_at is not None and 0 < break_at < len(words):
        starts.add(break_at)
    bounds = sorted(starts) + [len(words)]
    return [("".join(words[a:b]), b - a) for a, b in pairwise(bounds)]


def string_list(value, name: str) -> tuple[str, ...]:
    """A stop parameter: absent, one string, or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise invalid(f"{name}: must be a string or a list of strings", param=name)


@dataclass(frozen=True)
class Call:
    """One request to the simulated provider, as every wire format reads it."""

    model: str
    conversation: Conversation
    max_tokens: int | None  # None: the model's own maximum
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    tool_options: ToolOptions = field(default_factory=ToolOptions)
    output: OutputFormat | None = None  # a structured answer asked for
    choices: int = 1  # OpenAI n, Gemini candidateCount
    logprobs: int | None = None  # OpenAI: None without logprobs, else how many top_logprobs


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # cached ones included
    cached_tokens: int
    output_tokens: int  # visible ones
    reasoning_tokens: int


@dataclass(frozen=True)
class Completion:
    """The answer to a call, ready to be written in the call's wire format."""

    call: Call
    replies: tuple[Reply, ...]  # one a choice
    usage: Usage
    id: str
    created: int

    @property
    def reply(self) -> Reply:
        return self.replies[0]


@dataclass(frozen=True)
class Frame:
    """One Server-Sent Event."""

    data: str
    event: str | None = None

    @classmethod
    def of(cls, payload: dict, event: str | None = None) -> Frame:
        return cls(_COMPACT_JSON.encode(payload), event)

    def encode(self) -> bytes:
        event_line = f"event: {self.event}\n" if self.event else ""
        return f"{event_line}data: {self.data}\n\n".encode()


class WireFormat:
    """One provider's wire format. Subclasses fill in parsing, bodies, frames and errors."""

    api: str
    request_id_header = "x-request-id"
    id_prefix: str
    tool_call_prefix = ""  # before a tool call's hex key, for its id
    delta_event: str | None = None  # the SSE event name of text deltas, when the format names events
    # error kind -> (HTTP status, the provider's error type or code, default message with {details})
    errors: dict[str, tuple[int, object, str]]

    def parse(self, body: dict, route: dict) -> Call:
        raise NotImplementedError

    def completion_body(self, c: Completion) -> dict:
        raise NotImplementedError

    def stream_head(self, c: Completion) -> list[Frame]:
        return []

    def delta_payload(self, c: Completion, text: str, index: int = 0) -> dict:
        """The event that carries the next piece of choice `index`'s text."""
        raise NotImplementedError

    def stream_deltas(self, c: Completion, texts: list[str], index: int = 0) -> list[Frame]:
        """One frame per text. The payload is serialised once and each text put in its place:
        a long stream has dozens of deltas, and serialising each costs most of a stream's CPU."""
        head, tail = Frame.of(self.delta_payload(c, _TEXT_MARKER, index)).data.split(json.dumps(_TEXT_MARKER))
        return [Frame(head + json.dumps(text) + tail, self.delta_event) for text in texts]

    def text_body(self, c: Completion, break_at: int | None, index: int = 0) -> list[tuple[Frame, int]]:
        """Choice `index`'s text as delta frames, each with its tokens."""
        chunks = text_chunks(c.replies[index].text, break_at=break_at)
        frames = self.stream_deltas(c, [text for text, _ in chunks], index)
        return [(frame, tokens) for frame, (_, tokens) in zip(frames, chunks, strict=True)]

    def stream_body(self, c: Completion, break_at: int | None) -> list[tuple[Frame, int]]:
        """The frames between the head and the tail, each with the tokens it carries; a text
        chunk ends at `break_at` tokens (where a stream fault happens)."""
        return self.text_body(c, break_at)

    def stream_tail(self, c: Completion) -> list[Frame]:
        return []

    def stream_final(self, c: Completion) -> Frame:
        """The event that says the stream is complete ([DONE], message_stop, the finishReason chunk)."""
        raise NotImplementedError

    def error_body(self, error: UpstreamError, status: int, tag, message: str) -> dict:
        raise NotImplementedError

    def new_id(self) -> str:
        return f"{self.id_prefix}{uuid.uuid4().hex[:24]}"

    def call_id(self, call: ToolCall) -> str:
        return f"{self.tool_call_prefix}{call.id}"

    def respond(self, body: dict, request_id: str, status: int = 200, headers: dict | None = None) -> web.Response:
        return web.json_response(body, status=status, headers={self.request_id_header: request_id, **(headers or {})})

    def error_payload(self, error: UpstreamError) -> tuple[int, dict]:
        """The error's HTTP status and body (a kind the format has no shape for is a bad request)."""
        status, tag, default_message = self.errors.get(error.kind) or self.errors["invalid_request"]
        message = error.message or default_message.format(**error.details)
        return status, self.error_body(error, status, tag, message)

    def error_response(self, error: UpstreamError, stream: bool, request_id: str) -> web.Response:
        status, body = self.error_payload(error)
        headers = {"retry-after": f"{error.retry_after:g}"} if error.retry_after is not None else {}
        return self.respond(body, request_id, status, headers)
