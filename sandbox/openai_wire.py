"""OpenAI Chat Completions: POST /v1/chat/completions, plain and streamed."""

from __future__ import annotations

import json
from dataclasses import replace

from sandbox.conversation import (
    Conversation,
    Message,
    ToolCall,
    ToolResult,
    arguments_of,
    call_names,
    result_text,
    text_of,
    unanswered_calls,
)
from sandbox.images import Image, InvalidImage, url_image
from sandbox.logprobs import token_logprobs
from sandbox.reply import Reply
from sandbox.structured import JSON, OutputFormat
from sandbox.tools import AUTO, NONE, REQUIRED, Tool, ToolOptions
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
    text_chunks,
)

_SYSTEM_ROLES = ("system", "developer")
_USER_ROLES = ("user", "tool", "function")
_FINISH = {"stop": "stop", "length": "length", "stop_sequence": "stop", "tool_calls": "tool_calls"}


def _usage(u: Usage) -> dict:
    completion_tokens = u.output_tokens + u.reasoning_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": u.input_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _parts(content, where: str) -> tuple[str, tuple[Image, ...]]:
    """A user message's text and images (image_url parts: an https URL or a data URI, and a detail)."""
    images = []
    for number, part in enumerate(content if isinstance(content, list) else []):
        if isinstance(part, dict) and part.get("type") == "image_url":
            image_url = part.get("image_url")
            image_url = image_url if isinstance(image_url, dict) else {"url": image_url}
            try:
                images.append(url_image(image_url.get("url"), low_detail=image_url.get("detail") == "low"))
            except InvalidImage as exc:
                raise invalid(f"Invalid '{where}.content[{number}].image_url.url': {exc}.",
                              param=f"{where}.content[{number}].image_url.url") from None
    return text_of(content), tuple(images)


def _tool_calls(message: dict, where: str) -> tuple[ToolCall, ...]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise invalid(f"Invalid type for '{where}.tool_calls': expected an array.", param=f"{where}.tool_calls")
    parsed = []
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not call.get("id"):
            raise invalid(f"Missing required parameter: '{where}.tool_calls[{number}].function'.",
                          param=f"{where}.tool_calls[{number}]")
        parsed.append(ToolCall(call["id"], function["name"], arguments_of(function.get("arguments", ""))))
    return tuple(parsed)


def _tool_result(message: dict, where: str, earlier: list[Message]) -> Message:
    call_id = message.get("tool_call_id")
    name = call_names(earlier).get(call_id)
    if name is None:
        raise invalid(f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                      f"with 'tool_calls' ({where}.tool_call_id {call_id!r} answers none).", param=where)
    return Message("user", "", tool_results=(ToolResult(call_id, name, result_text(text_of(message.get("content")))),))


def _conversation(messages) -> Conversation:
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array.", param="messages")
    system: list[str] = []
    turns: list[Message] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        where = f"messages[{index}]"
        if role in _SYSTEM_ROLES:
            system.append(text_of(message.get("content")))
        elif role == "assistant":
            turns.append(Message("assistant", text_of(message.get("content")), _tool_calls(message, where)))
        elif role == "tool":
            turns.append(_tool_result(message, where, turns))
        elif role in _USER_ROLES:
            text, images = _parts(message.get("content"), where)
            turns.append(Message("user", text, images=images))
        else:
            raise invalid(f"Invalid value for '{where}.role': {role!r}.", param=f"{where}.role")
    missing = unanswered_calls(turns)
    if missing:
        raise invalid("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                      f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                      f"{', '.join(missing[1])}", param="messages")
    return Conversation.of(system, turns)


def _tool_options(body: dict) -> ToolOptions:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise invalid("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                          param="tool_choice")
        return ToolOptions()
    if not isinstance(tools, list) or not tools:
        raise invalid("Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty "
                      "array instead.", param="tools")
    offered = tuple(_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools))
    options = ToolOptions(offered, parallel=body.get("parallel_tool_calls") is not False)
    if choice is None or choice in (AUTO, NONE, REQUIRED):
        return replace(options, choice=choice or AUTO)
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str) or options.tool(name) is None:
        raise invalid(f"Invalid value for 'tool_choice': {choice!r} names no function in 'tools'.",
                      param="tool_choice")
    return replace(options, choice=REQUIRED, forced=name)


def _tool(tool, where: str) -> Tool:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise invalid(f"Missing required parameter: '{where}.function.name'.", param=f"{where}.function.name")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    return Tool(function["name"], function.get("description") or "", schema)


def _output(body: dict) -> OutputFormat | None:
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if response_format is None or kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat(JSON)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise invalid("Missing required parameter: 'response_format.json_schema.name'.",
                          param="response_format.json_schema.name")
        return OutputFormat(JSON, spec.get("schema") or {})
    raise invalid(f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and 'json_schema'.",
                  param="response_format.type")


def _logprobs(body: dict) -> int | None:
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
        raise invalid("Invalid 'top_logprobs': must be an integer between 0 and 20.", param="top_logprobs")
    if body.get("logprobs") is not True:
        if top:
            raise invalid("Invalid value for 'top_logprobs': 'logprobs' must be true to use 'top_logprobs'.",
                          param="top_logprobs")
        return None
    return top or 0


class OpenAIWire(WireFormat):
    api = "openai"
    id_prefix = "chatcmpl-"
    tool_call_prefix = "call_"
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
        conversation = _conversation(body.get("messages"))
        output = _output(body)
        if output == OutputFormat(JSON) and "json" not in conversation.canonical_text().lower():
            raise invalid("'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                          "'json_object'.", param="messages")
        return Call(
            model=model,
            conversation=conversation,
            max_tokens=positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens"),
            stop=string_list(body.get("stop"), "stop"),
            stream=stream,
            include_usage=stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
            tool_options=_tool_options(body),
            output=output,
            choices=positive_int(body, "n") or 1,
            logprobs=_logprobs(body),
        )

    def _logprobs(self, c: Completion, text: str) -> dict | None:
        if c.call.logprobs is None:
            return None
        return {"content": token_logprobs(text, c.call.logprobs), "refusal": None}

    def _tool_call(self, call: ToolCall) -> dict:
        return {"id": self.call_id(call), "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}

    def _message(self, reply: Reply) -> dict:
        message = {"role": "assistant", "content": None if reply.tool_calls else reply.text, "refusal": None,
                   "annotations": []}
        if reply.tool_calls:
            message["tool_calls"] = [self._tool_call(call) for call in reply.tool_calls]
        return message

    def completion_body(self, c: Completion) -> dict:
        choices = [
            {
                "index": index,
                "message": self._message(reply),
                "logprobs": None if reply.tool_calls else self._logprobs(c, reply.text),
                "finish_reason": _FINISH[reply.finish],
            }
            for index, reply in enumerate(c.replies)
        ]
        return {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": c.call.model,
            "system_fingerprint": None,
            "choices": choices,
            "usage": _usage(c.usage),
        }

    def _chunk(self, c: Completion, delta: dict, finish_reason: str | None = None, index: int = 0,
               logprobs: dict | None = None) -> dict:
        chunk = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.call.model,
            "system_fingerprint": None,
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }
        if c.call.include_usage:
            chunk["usage"] = None
        return chunk

    def stream_head(self, c: Completion) -> list[Frame]:
        """A text choice starts with the role; a tool-calling one gives it with its first call."""
        return [Frame.of(self._chunk(c, {"role": "assistant", "content": ""}, index=index))
                for index, reply in enumerate(c.replies) if not reply.tool_calls]

    def delta_payload(self, c: Completion, text: str, index: int = 0) -> dict:
        return self._chunk(c, {"content": text}, index=index)

    def stream_body(self, c: Completion, break_at: int | None) -> list[tuple[Frame, int]]:
        if len(c.replies) == 1 and not c.reply.tool_calls and c.call.logprobs is None:
            return self.text_body(c, break_at)
        body = []
        for index, reply in enumerate(c.replies):
            if reply.tool_calls:
                body.extend(self._tool_call_deltas(c, reply, index))
            elif c.call.logprobs is None:
                body.extend(self.text_body(c, break_at, index))
            else:
                body.extend((Frame.of(self._chunk(c, {"content": text}, index=index, logprobs=self._logprobs(c, text))),
                             tokens) for text, tokens in text_chunks(reply.text, break_at=break_at))
        return body

    def _tool_call_deltas(self, c: Completion, reply: Reply, index: int) -> list[tuple[Frame, int]]:
        """Per call: its index, id, type, name and empty arguments, then its arguments in pieces."""
        frames = []
        for number, call in enumerate(reply.tool_calls):
            opening = {"index": number, **self._tool_call(call)}
            opening["function"] = {"name": call.name, "arguments": ""}
            delta = {"role": "assistant", "content": None, "refusal": None} if number == 0 else {}
            frames.append((Frame.of(self._chunk(c, {**delta, "tool_calls": [opening]}, index=index)), 1))
            for piece, tokens in text_chunks(json.dumps(call.arguments)):
                fragment = {"index": number, "function": {"arguments": piece}}
                frames.append((Frame.of(self._chunk(c, {"tool_calls": [fragment]}, index=index)), tokens))
        return frames

    def stream_tail(self, c: Completion) -> list[Frame]:
        frames = [Frame.of(self._chunk(c, {}, _FINISH[reply.finish], index)) for index, reply in enumerate(c.replies)]
        if c.call.include_usage:
            frames.append(Frame.of({**self._chunk(c, {}), "choices": [], "usage": _usage(c.usage)}))
        return frames

    def stream_final(self, c: Completion) -> Frame:
        return Frame("[DONE]")

    def error_body(self, error: UpstreamError, status: int, tag: tuple[str, str | None], message: str) -> dict:
        kind, code = tag
        param = error.details.get("param") or ("messages" if error.kind == "context_length" else None)
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
