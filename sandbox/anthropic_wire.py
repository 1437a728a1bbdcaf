"""Anthropic Messages: POST /v1/messages, plain and streamed (named SSE events)."""

from __future__ import annotations

from sandbox.conversation import ROLES, Conversation, text_of
from sandbox.wire import (
    Call,
    Completion,
    Frame,
    UpstreamError,
    Usage,
    WireFormat,
    invalid,
    positive_int,
    string_list,
)

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}


def _usage(u: Usage, output_tokens: int) -> dict:
    return {
        "input_tokens": u.input_tokens - u.cached_tokens,  # Anthropic counts cache reads apart
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }


def _turns(messages) -> list[tuple[str, str]]:
    """(role, text) turns, checked as the Messages API checks them."""
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: at least one message is required")
    turns = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if turns and turns[-1][0] == role:
            raise invalid(f'messages: roles must alternate between "user" and "assistant", '
                          f'but found multiple "{role}" roles in a row')
        turns.append((role, text_of(message.get("content"))))
    if turns[0][0] != "user":
        raise invalid('messages: first message must use the "user" role')
    return turns


class AnthropicWire(WireFormat):
    api = "anthropic"
    request_id_header = "request-id"
    id_prefix = "msg_"
    delta_event = "content_block_delta"
    errors = {  # kind -> (status, error type, message)
        "invalid_request": (400, "invalid_request_error", "Invalid request."),
        "rate_limit": (
            429, "rate_limit_error", "Number of requests has exceeded your rate limit. Please try again later.",
        ),
        "server_error": (500, "api_error", "Internal server error"),
        "overloaded": (529, "overloaded_error", "Overloaded"),
        "context_length": (400, "invalid_request_error", "prompt is too long: {tokens} tokens > {limit} maximum"),
        "content_filter": (
            400, "invalid_request_error", "This request was blocked as it appears to violate our Usage Policy.",
        ),
    }

    def parse(self, body: dict, route: dict) -> Call:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("model: Field required")
        max_tokens = positive_int(body, "max_tokens")
        if max_tokens is None:
            raise invalid("max_tokens: Field required")
        system = body.get("system")
        return Call(
            model=model,
            conversation=Conversation.of([text_of(system)], _turns(body.get("messages"))),
            max_tokens=max_tokens,
            stop=string_list(body.get("stop_sequences"), "stop_sequences"),
            stream=body.get("stream") is True,
        )

    def _message(self, c: Completion, content: list, stop_reason: str | None, output_tokens: int) -> dict:
        return {
            "id": c.id,
            "type": "message",
            "role": "assistant",
            "model": c.call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": c.reply.stop_sequence if stop_reason else None,
            "usage": _usage(c.usage, output_tokens),
        }

    def completion_body(self, c: Completion) -> dict:
        output_tokens = c.usage.output_tokens + c.usage.reasoning_tokens
        return self._message(c, [{"type": "text", "text": c.reply.text}], _STOP_REASON[c.reply.finish], output_tokens)

    def stream_head(self, c: Completion) -> list[Frame]:
        return [
            Frame.of({"type": "message_start", "message": self._message(c, [], None, 1)}, "message_start"),
            Frame.of({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                     "content_block_start"),
            Frame.of({"type": "ping"}, "ping"),
        ]

    def delta_payload(self, c: Completion, text: str) -> dict:
        return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}

    def stream_tail(self, c: Completion) -> list[Frame]:
        delta = {"stop_reason": _STOP_REASON[c.reply.finish], "stop_sequence": c.reply.stop_sequence}
        usage = {"output_tokens": c.usage.output_tokens + c.usage.reasoning_tokens}
        return [
            Frame.of({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            Frame.of({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"),
        ]

    def stream_final(self, c: Completion) -> Frame:
        return Frame.of({"type": "message_stop"}, "message_stop")

    def error_body(self, error: UpstreamError, status: int, tag: str, message: str) -> dict:
        return {"type": "error", "error": {"type": tag, "message": message}}
