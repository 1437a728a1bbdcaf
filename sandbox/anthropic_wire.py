"""Anthropic Messages: POST /v1/messages, plain and streamed (named SSE events)."""

from __future__ import annotations

import json
from dataclasses import replace

from sandbox.conversation import (
    ROLES,
    Conversation,
    Message,
    ToolCall,
    ToolResult,
    call_names,
    result_text,
    text_of,
    unanswered_calls,
)
from sandbox.images import Image, InvalidImage, inline_image, url_image
from sandbox.reply import Reply
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

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence", "tool_calls": "tool_use"}
_CHOICES = {"auto": AUTO, "any": REQUIRED, "tool": REQUIRED, "none": NONE}


def _usage(u: Usage, output_tokens: int) -> dict:
    return {
        "input_tokens": u.input_tokens - u.cached_tokens,  # Anthropic counts cache reads apart
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
    }


def _image(block: dict, where: str) -> Image:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    try:
        if source.get("type") == "base64":
            return inline_image(source.get("media_type"), source.get("data"))
        if source.get("type") == "url":
            return url_image(source.get("url"))
    except InvalidImage as exc:
        raise invalid(f"{where}.source: {exc}") from None
    raise invalid(f"{where}.source.type: Input should be 'base64' or 'url'")


def _tool_result(block: dict, where: str, previous: Message | None) -> ToolResult:
    call_id = block.get("tool_use_id")
    name = call_names([previous] if previous else []).get(call_id)
    if name is None:
        raise invalid(f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {call_id}. Each "
                      "`tool_result` block must have a corresponding `tool_use` block in the previous message.")
    return ToolResult(call_id, name, result_text(text_of(block.get("content"))), block.get("is_error") is True)


def _message(role: str, content, where: str, previous: Message | None) -> Message:
    """A message of text, image, tool_use and tool_result blocks (thinking and others left out)."""
    if not isinstance(content, list):
        return Message(role, text_of(content))
    calls, results, images = [], [], []
    for number, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "image":
            images.append(_image(block, f"{where}.content.{number}"))
        elif kind == "tool_use":
            calls.append(ToolCall(block.get("id", ""), block.get("name", ""), block.get("input", {})))
        elif kind == "tool_result":
            results.append(_tool_result(block, f"{where}.content.{number}", previous))
    return Message(role, text_of(content), tuple(calls), tuple(results), tuple(images))


def _turns(messages) -> list[Message]:
    """The messages, checked as the Messages API checks them."""
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: at least one message is required")
    turns: list[Message] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if turns and turns[-1].role == role:
            raise invalid(f'messages: roles must alternate between "user" and "assistant", '
                          f'but found multiple "{role}" roles in a row')
        turns.append(_message(role, message.get("content"), f"messages.{index}", turns[-1] if turns else None))
    if turns[0].role != "user":
        raise invalid('messages: first message must use the "user" role')
    missing = unanswered_calls(turns)
    if missing:
        raise invalid(f"messages.{missing[0]}: `tool_use` ids were found without `tool_result` blocks immediately "
                      f"after: {', '.join(missing[1])}. Each `tool_use` block must have a corresponding "
                      "`tool_result` block in the next message.")
    return turns


def _tool_options(body: dict) -> ToolOptions:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    offered = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            continue  # a server tool (web search, code execution...): never called here
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            raise invalid(f"tools.{index}.input_schema: Field required")
        offered.append(Tool(tool["name"], tool.get("description") or "", tool["input_schema"]))
    options = ToolOptions(tuple(offered))
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in _CHOICES:
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    options = replace(options, choice=_CHOICES[kind], parallel=choice.get("disable_parallel_tool_use") is not True)
    if kind == "tool":
        if options.tool(choice.get("name")) is None:
            raise invalid(f"tool_choice: Tool '{choice.get('name')}' not found in provided tools")
        options = replace(options, forced=choice["name"])
    return options


class AnthropicWire(WireFormat):
    api = "anthropic"
    request_id_header = "request-id"
    id_prefix = "msg_"
    tool_call_prefix = "toolu_"
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
            tool_options=_tool_options(body),
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

    def _blocks(self, reply: Reply) -> list[dict]:
        if not reply.tool_calls:
            return [{"type": "text", "text": reply.text}]
        return [{"type": "tool_use", "id": self.call_id(call), "name": call.name, "input": call.arguments}
                for call in reply.tool_calls]

    def completion_body(self, c: Completion) -> dict:
        output_tokens = c.usage.output_tokens + c.usage.reasoning_tokens
        return self._message(c, self._blocks(c.reply), _STOP_REASON[c.reply.finish], output_tokens)

    def stream_head(self, c: Completion) -> list[Frame]:
        """message_start, the text block's start (a tool_use block starts in the body), ping."""
        start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        return [
            Frame.of({"type": "message_start", "message": self._message(c, [], None, 1)}, "message_start"),
            *([] if c.reply.tool_calls else [Frame.of(start, "content_block_start")]),
            Frame.of({"type": "ping"}, "ping"),
        ]

    def delta_payload(self, c: Completion, text: str, index: int = 0) -> dict:
        return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}

    def stream_body(self, c: Completion, break_at: int | None) -> list[tuple[Frame, int]]:
        if not c.reply.tool_calls:
            return self.text_body(c, break_at)
        body: list[tuple[Frame, int]] = []
        for index, block in enumerate(self._blocks(c.reply)):
            if index:
                body.append((Frame.of({"type": "content_block_stop", "index": index - 1}, "content_block_stop"), 0))
            start = {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
            body.append((Frame.of(start, "content_block_start"), 1))
            for piece, tokens in text_chunks(json.dumps(block["input"])):
                delta = {"type": "content_block_delta", "index": index,
                         "delta": {"type": "input_json_delta", "partial_json": piece}}
                body.append((Frame.of(delta, "content_block_delta"), tokens))
        return body

    def stream_tail(self, c: Completion) -> list[Frame]:
        delta = {"stop_reason": _STOP_REASON[c.reply.finish], "stop_sequence": c.reply.stop_sequence}
        usage = {"output_tokens": c.usage.output_tokens + c.usage.reasoning_tokens}
        last = max(0, len(c.reply.tool_calls) - 1)
        return [
            Frame.of({"type": "content_block_stop", "index": last}, "content_block_stop"),
            Frame.of({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"),
        ]

    def stream_final(self, c: Completion) -> Frame:
        return Frame.of({"type": "message_stop"}, "message_stop")

    def error_body(self, error: UpstreamError, status: int, tag: str, message: str) -> dict:
        return {"type": "error", "error": {"type": tag, "message": message}}
