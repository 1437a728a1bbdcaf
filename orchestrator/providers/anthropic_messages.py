"""Anthropic's Messages API through the anthropic SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Generator

import anthropic

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import (
    JSON_SCHEMA,
    REQUIRED_TOOL,
    TOOL,
    ChatRequest,
    ChatResponse,
    Image,
    Message,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    ToolCall,
    Usage,
)
from orchestrator.providers.base import (
    TOOL_CALLS,
    SdkProvider,
    Turn,
    alternating_turns,
    finish_reason_of,
    request_headers,
    system_text,
    tool_arguments,
    tool_names,
)
from orchestrator.providers.errors import STREAM_BREAKS, classify, interrupted, retry_after

_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter",
                   "tool_use": TOOL_CALLS}
# The HTTP status each error type stands for (docs.anthropic.com, "Errors"): an error event
# in a stream that had begun comes with a 200.
_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}


# Anthropic has no JSON mode: a structured answer is asked for as the input of this tool,
# which the model is made to call, and read back as the answer's text.
ANSWER_TOOL = "structured_answer"


def _image(image: Image) -> dict:
    if image.base64_data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": image.media_type,
                                            "data": image.base64_data}}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def _blocks(message: Message) -> list[dict]:
    if message.role == TOOL:
        result = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
        return [{**result, "is_error": True} if message.is_error else result]
    blocks = [{"type": "text", "text": message.content}] if message.content else []
    blocks.extend(_image(image) for image in message.images)
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_arguments(c)}
                  for c in message.tool_calls)
    return blocks


def _turn(turn: Turn) -> dict:
    """A turn as plain text where it is only text (joined as before tools existed), else as blocks."""
    if all(not (m.images or m.tool_calls or m.role == TOOL) for m in turn.messages):
        return {"role": turn.role, "content": turn.text()}
    return {"role": turn.role, "content": [block for m in turn.messages for block in _blocks(m)]}


def _declared(request: ChatRequest) -> list[dict]:
    """Every tool the request names or its history called: Anthropic refuses tool turns whose
    tools are not defined (a history's own calls get a schema that takes any object)."""
    tools = [{"name": t.name, "input_schema": t.parameters, **({"description": t.description} if t.description else {})}
             for t in request.tools]
    named = {t.name for t in request.tools}
    called = dict.fromkeys(name for name in tool_names(request.messages).values() if name not in named)
    return tools + [{"name": name, "input_schema": {"type": "object"}} for name in called]


def _tools(request: ChatRequest) -> dict:
    """The tools to define, the answer tool for a structured answer, and which to call."""
    tools, form, choice = _declared(request), request.response_format, request.tool_choice
    if form is not None:
        schema = form.schema if form.type == JSON_SCHEMA and form.schema else {"type": "object"}
        tools.append({"name": ANSWER_TOOL, "description": "Give your final answer through this tool.",
                      "input_schema": schema})
    if not tools:
        return {}
    if not request.offers_tools and form is None:
        return {"tools": tools, "tool_choice": {"type": "none"}}
    if choice.function:
        picked = {"type": "tool", "name": choice.function}
    elif form is not None:
        picked = {"type": "any"} if request.offers_tools else {"type": "tool", "name": ANSWER_TOOL}
    else:
        picked = {"type": "any" if choice.mode == REQUIRED_TOOL else "auto"}
    if not request.parallel_tool_calls:
        picked["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": picked}


def call_arguments(request: ChatRequest) -> dict:
    # The Messages API of the current SDK takes no sampling temperature or top_p: not forwarded.
    args = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [_turn(turn) for turn in alternating_turns(request.messages)],
        **_tools(request),
    }
    system = system_text(request)
    if system:
        args["system"] = system
    if request.stop:
        args["stop_sequences"] = list(request.stop)
    if request.options.get("user"):
        args["metadata"] = {"user_id": request.options["user"]}
    if request.options.get("top_k") is not None:
        args["top_k"] = request.options["top_k"]
    return args


def _answer(blocks) -> tuple[str, tuple[ToolCall, ...]]:
    """The text of an answer and its tool calls; the answer tool's input is the text."""
    texts, calls = [], []
    for block in blocks:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use" and block.name == ANSWER_TOOL:
            return json.dumps(block.input), ()
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
    return "".join(texts), tuple(calls)


def _usage(usage: dict) -> Usage:
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Usage((usage.get("input_tokens") or 0) + cached + written, usage.get("output_tokens") or 0, cached)


class AnthropicProvider(SdkProvider):
    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            message = self.client.messages.create(**call_arguments(request), extra_headers=request_headers(request),
                                                  timeout=timeout)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc
        return self.read(request, started, message)

    def read(self, request: ChatRequest, started: float, message) -> ChatResponse:
        """The answer of a Message (the SDK's object), called or batched; a refusal raises."""
        self._refuse_refusal(message.stop_reason, request.model)
        content, tool_calls = _answer(message.content)
        return self._response(
            request, started, content, _FINISH_REASONS.get(message.stop_reason, "stop"),
            _usage(message.usage.model_dump()), getattr(message, "_request_id", None) or message.id, tool_calls,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]:
        try:
            yield from self._posted_stream("/v1/messages", {**call_arguments(request), "stream": True}, request, timeout)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, response, model: str) -> Generator[StreamEvent, None, None]:
        """The events of the stream, from their `data` lines (each names its own type); a
        malformed one is skipped: only message_stop tells a complete answer from a cut one."""
        input_usage, output_tokens, stop_reason, finished = {}, 0, None, False
        tool_uses: dict[int, dict] = {}  # by block index: a tool_use block's id, name and input so far
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            kind = event.get("type")
            if kind == "message_start":
                input_usage = (event.get("message") or {}).get("usage") or {}
            elif kind == "content_block_start" and (event.get("content_block") or {}).get("type") == "tool_use":
                block = event["content_block"]
                tool_uses[event.get("index", 0)] = {"id": block.get("id"), "name": block.get("name"), "input": ""}
            elif kind == "content_block_delta":
                delta, use = event.get("delta") or {}, tool_uses.get(event.get("index", 0))
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield StreamDelta(delta["text"])
                elif delta.get("type") == "input_json_delta" and use is not None:
                    if use["name"] == ANSWER_TOOL and delta.get("partial_json"):
                        yield StreamDelta(delta["partial_json"])  # the structured answer streams as text
                    use["input"] += delta.get("partial_json") or ""
            elif kind == "message_delta":
                stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                output_tokens = (event.get("usage") or {}).get("output_tokens") or output_tokens
            elif kind == "message_stop":
                finished = True
            elif kind == "error":
                raise self._in_band_error(event.get("error") or {}, model)
        if not finished:
            raise self._incomplete(model)
        self._refuse_refusal(stop_reason, model)
        usage = _usage(input_usage)
        calls = tuple(ToolCall(u["id"], u["name"], u["input"] or "{}") for _, u in sorted(tool_uses.items())
                      if u["name"] != ANSWER_TOOL)
        yield StreamEnd(finish_reason_of(_FINISH_REASONS.get(stop_reason, "stop"), calls),
                        Usage(usage.input_tokens, output_tokens, usage.cached_tokens),
                        response.headers.get("request-id"), calls)

    def _in_band_error(self, error: dict, model: str) -> ProviderError:
        """An error event after the stream began (an overload, mostly), as the status its type stands for."""
        status = _ERROR_STATUS.get(error.get("type"), 500)
        message = str(error.get("message") or "the provider reported an error mid-stream")
        return ProviderError(classify(status, error.get("type"), message), message, provider=self.name, model=model,
                             status=status)

    def _refuse_refusal(self, stop_reason: str | None, model: str) -> None:
        if stop_reason == "refusal":
            raise ProviderError(ErrorKind.CONTENT_FILTERED, "the model declined to answer (refusal)",
                                provider=self.name, model=model)

    def _error(self, exc: anthropic.APIError, model: str) -> ProviderError:
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderError(ErrorKind.TIMEOUT, "the provider did not answer in time", provider=self.name, model=model)
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderError(ErrorKind.CONNECTION, "could not reach the provider", provider=self.name, model=model)
        if not isinstance(exc, anthropic.APIStatusError):
            return ProviderError(ErrorKind.SERVER_ERROR, str(exc), provider=self.name, model=model)
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = str(error.get("message") or exc.message)
        return ProviderError(
            classify(exc.status_code, error.get("type"), message),
            message,
            provider=self.name,
            model=model,
            status=exc.status_code,
            retry_after=retry_after(exc.response.headers),
        )
