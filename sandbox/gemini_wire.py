"""Gemini generateContent: POST /{v1,v1beta}/models/{model}:generateContent, and
:streamGenerateContent?alt=sse whose every SSE data line is a GenerateContentResponse.
"""

from __future__ import annotations

import re

from aiohttp import web

from sandbox.conversation import (
    Conversation,
    Message,
    ToolCall,
    ToolResult,
    result_text,
    text_of,
)
from sandbox.images import InvalidImage, inline_image, url_image
from sandbox.reply import Reply
from sandbox.structured import ENUM, JSON, OutputFormat
from sandbox.tools import AUTO, NONE, REQUIRED, Tool, ToolOptions
from sandbox.wire import (
    Call,
    Completion,
    Frame,
    UpstreamError,
    WireFormat,
    invalid,
    positive_int,
    string_list,
)

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "stop_sequence": "STOP", "tool_calls": "STOP"}
_MODES = {"AUTO": AUTO, "MODE_UNSPECIFIED": AUTO, "VALIDATED": AUTO, "ANY": REQUIRED, "NONE": NONE}
_RESULT_KEYS = ("output", "result", "content", "error")
_PARTS = ("inlineData", "fileData", "functionCall", "functionResponse")


def _get(obj: dict, name: str):
    """A field by its JSON name or its proto name (functionCall or function_call): the API takes
    both, and google-genai sends some of each."""
    value = obj.get(name)
    return obj.get(re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), name)) if value is None else value
_SAFETY_RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


def _usage(c: Completion) -> dict:
    u = c.usage
    usage = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens,
        "totalTokenCount": u.input_tokens + u.output_tokens + u.reasoning_tokens,
    }
    if u.cached_tokens:
        usage["cachedContentTokenCount"] = u.cached_tokens
    if u.reasoning_tokens:
        usage["thoughtsTokenCount"] = u.reasoning_tokens
    return usage


def _result(response) -> tuple[str, bool]:
    """A functionResponse's response as text, and whether it is an error: {"output": x}, {"result": x}
    and {"content": x} give x, {"error": x} an error x, any other object itself."""
    if isinstance(response, dict) and len(response) == 1:
        (key, value), = response.items()
        if key in _RESULT_KEYS:
            return result_text(value), key == "error"
    return result_text(response), False


def _content(content: dict, where: str) -> Message:
    role = "assistant" if content.get("role") == "model" else "user"
    parts = content.get("parts")
    calls, results, images = [], [], []
    for number, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, dict):
            continue
        inline, file, call, response = (_get(part, name) for name in _PARTS)
        try:
            if isinstance(inline, dict):
                images.append(inline_image(_get(inline, "mimeType"), inline.get("data")))
            elif isinstance(file, dict):
                images.append(url_image(_get(file, "fileUri")))
        except InvalidImage as exc:
            raise invalid(f"* GenerateContentRequest.{where}.parts[{number}]: {exc}") from None
        if isinstance(call, dict):
            calls.append(ToolCall(call.get("id", ""), call.get("name", ""), call.get("args", {})))
        if isinstance(response, dict):
            results.append(ToolResult(response.get("id", ""), response.get("name", ""),
                                      *_result(response.get("response"))))
    return Message(role, text_of(parts), tuple(calls), tuple(results), tuple(images))


def _conversation(body: dict) -> Conversation:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    if not all(isinstance(content, dict) for content in contents):
        raise invalid("* GenerateContentRequest.contents: each content must be an object")
    turns = [_content(content, f"contents[{index}]") for index, content in enumerate(contents)]
    instruction = body.get("systemInstruction") or {}
    system = text_of(instruction.get("parts")) if isinstance(instruction, dict) else ""
    return Conversation.of([system], turns)


def _tool_options(body: dict) -> ToolOptions:
    declarations = [d for tool in body.get("tools") or [] if isinstance(tool, dict)
                    for d in _get(tool, "functionDeclarations") or []]
    offered = []
    for index, declaration in enumerate(declarations):
        if not isinstance(declaration, dict) or not declaration.get("name"):
            raise invalid(f"* GenerateContentRequest.tools[0].function_declarations[{index}].name: "
                          "Function name is required")
        schema = _get(declaration, "parametersJsonSchema") or declaration.get("parameters") or {}
        offered.append(Tool(declaration["name"], declaration.get("description") or "", schema))
    config = _get(_get(body, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    if mode not in _MODES:
        raise invalid(f"* GenerateContentRequest.tool_config.function_calling_config.mode: unknown mode {mode!r}")
    allowed = _get(config, "allowedFunctionNames")
    if allowed:
        offered = [tool for tool in offered if tool.name in allowed]
    return ToolOptions(tuple(offered), choice=_MODES[mode])


def _output(config: dict) -> OutputFormat | None:
    mime_type = _get(config, "responseMimeType")
    schema = _get(config, "responseJsonSchema") or _get(config, "responseSchema")
    if mime_type == "application/json":
        return OutputFormat(JSON, schema)
    if mime_type == "text/x.enum":
        return OutputFormat(ENUM, schema)
    return None


class GeminiWire(WireFormat):
    api = "gemini"
    id_prefix = ""
    errors = {  # kind -> (status, status name, message)
        "invalid_request": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        "rate_limit": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        "server_error": (500, "INTERNAL", "An internal error has occurred. Please retry or report it."),
        "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "context_length": (
            400, "INVALID_ARGUMENT",
            "The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit}).",
        ),
    }

    def parse(self, body: dict, route: dict) -> Call:
        config = body.get("generationConfig") or {}
        if not isinstance(config, dict):
            raise invalid("generationConfig must be an object")
        return Call(
            model=route["model"],
            conversation=_conversation(body),
            max_tokens=positive_int(config, "maxOutputTokens"),
            stop=string_list(config.get("stopSequences"), "stopSequences"),
            stream=route["action"] == "streamGenerateContent",
            tool_options=_tool_options(body),
            output=_output(config),
            choices=positive_int(config, "candidateCount") or 1,
        )

    def _response(self, c: Completion, candidates: list[dict], finished: bool = False) -> dict:
        """A GenerateContentResponse; the last one of an answer has its finishReason and usage."""
        response = {"candidates": candidates, "modelVersion": c.call.model, "responseId": c.id}
        if finished:
            for candidate in candidates:
                candidate["finishReason"] = _FINISH[c.replies[candidate["index"]].finish]
            response["usageMetadata"] = _usage(c)
        return response

    @staticmethod
    def _candidate(parts: list[dict], index: int) -> dict:
        return {"content": {"role": "model", "parts": parts}, "index": index}

    @staticmethod
    def _parts(reply: Reply) -> list[dict]:
        if reply.tool_calls:
            return [{"functionCall": {"name": call.name, "args": call.arguments}} for call in reply.tool_calls]
        return [{"text": reply.text}]

    def completion_body(self, c: Completion) -> dict:
        candidates = [self._candidate(self._parts(reply), index) for index, reply in enumerate(c.replies)]
        return self._response(c, candidates, finished=True)

    def delta_payload(self, c: Completion, text: str, index: int = 0) -> dict:
        return self._response(c, [self._candidate([{"text": text}], index)])

    def stream_body(self, c: Completion, break_at: int | None) -> list[tuple[Frame, int]]:
        """Text in pieces; function calls whole, all of a candidate's in one chunk, as Gemini streams them."""
        body = []
        for index, reply in enumerate(c.replies):
            if reply.tool_calls:
                body.append((Frame.of(self._response(c, [self._candidate(self._parts(reply), index)])), reply.tokens))
            else:
                body.extend(self.text_body(c, break_at, index))
        return body

    def stream_final(self, c: Completion) -> Frame:
        return Frame.of(self._response(c, [self._candidate([{"text": ""}], i) for i in range(len(c.replies))], True))

    def error_body(self, error: UpstreamError, status: int, tag: str, message: str) -> dict:
        body = {"error": {"code": status, "message": message, "status": tag}}
        if error.retry_after is not None:
            retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{error.retry_after:g}s"}
            body["error"]["details"] = [retry_info]
        return body

    def error_response(self, error: UpstreamError, stream: bool, request_id: str) -> web.Response:
        """Gemini answers a content filter with a 200 whose prompt or candidate is blocked."""
        if error.kind != "content_filter":
            return super().error_response(error, stream, request_id)
        usage = {"promptTokenCount": error.details["tokens"], "totalTokenCount": error.details["tokens"]}
        if error.details.get("block") == "prompt":
            feedback = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
            body = {"promptFeedback": feedback, "usageMetadata": usage}
        else:
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}
            body = {"candidates": [candidate], "usageMetadata": usage}
        if not stream:
            return self.respond(body, request_id)
        frame = Frame.of(body).encode()
        return web.Response(body=frame, content_type="text/event-stream", headers={self.request_id_header: request_id})
