"""OpenAI Chat Completions: POST /v1/chat/completions, plain and streamed."""

from __future__ import annotations

from sandbox.conversation import Conversation, text_of
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

_SYSTEM_ROLES = ("system", "developer")
_USER_ROLES = ("user", "tool", "function")
_FINISH = {"stop": "stop", "length": "length", "stop_sequence": "stop"}


def _usage(u: Usage) -> dict:
    completion_tokens = u.output_tokens + u.reasoning_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": u.input_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _conversation(messages) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array.", param="messages")
    system, turns = [], []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role in _SYSTEM_ROLES:
            system.append(text_of(message.get("content")))
        elif role == "assistant" or role in _USER_ROLES:
            turns.append(("assistant" if role == "assistant" else "user", text_of(message.get("content"))))
        else:
            raise invalid(f"Invalid value for 'messages[{index}].role': {role!r}.", param=f"messages[{index}].role")
    return Conversation.of(system, turns)


class OpenAIWire(WireFormat):
    api = "openai"
    id_prefix = "chatcmpl-"
    errors = {  # kind -> (status, (type, code), message)
        "invalid_request": (400, ("invalid_request_error", None), "Invalid request."),
        "rate_limit": (
            429, ("requests", "rate_limit_exceeded"), "Rate limit reached for requests. Please try again later.",
        ),
        "server_error": (
            500, ("server_error", None), "The server had an error while processing your request. Sorry about that!",
        ),
        "overloaded": (503, ("server_error", None), "The server is overloaded or not ready yet."),
        "context_length": (
            400,
            ("invalid_request_error", "context_length_exceeded"),
            "This model's maximum context length is {limit} tokens. However, your messages resulted in {tokens} "
            "tokens. Please reduce the length of the messages.",
        ),
        "content_filter": (
            400,
            ("invalid_request_error", "content_filter"),
            "Your request was rejected as a result of our safety system.",
        ),
    }

    def parse(self, body: dict, route: dict) -> Call:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("you must provide a model parameter", param="model")
        stream = body.get("stream") is True
        stream_options = body.get("stream_options") or {}
        return Call(
            model=model,
            conversation=_conversation(body.get("messages")),
            max_tokens=positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens"),
            stop=string_list(body.get("stop"), "stop"),
            stream=stream,
            include_usage=stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        )

    def completion_body(self, c: Completion) -> dict:
        return {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": c.call.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": c.reply.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": _FINISH[c.reply.finish],
                }
            ],
            "usage": _usage(c.usage),
        }

    def _chunk(self, c: Completion, delta: dict, finish_reason: str | None = None) -> dict:
        chunk = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.call.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if c.call.include_usage:
            chunk["usage"] = None
        return chunk

    def stream_head(self, c: Completion) -> list[Frame]:
        return [Frame.of(self._chunk(c, {"role": "assistant", "content": ""}))]

    def delta_payload(self, c: Completion, text: str) -> dict:
        return self._chunk(c, {"content": text})

    def stream_tail(self, c: Completion) -> list[Frame]:
        frames = [Frame.of(self._chunk(c, {}, _FINISH[c.reply.finish]))]
        if c.call.include_usage:
            frames.append(Frame.of({**self._chunk(c, {}), "choices": [], "usage": _usage(c.usage)}))
        return frames

    def stream_final(self, c: Completion) -> Frame:
        return Frame("[DONE]")

    def error_body(self, error: UpstreamError, status: int, tag: tuple[str, str | None], message: str) -> dict:
        kind, code = tag
        param = error.details.get("param") or ("messages" if error.kind == "context_length" else None)
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
