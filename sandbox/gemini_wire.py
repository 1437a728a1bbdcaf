"""Gemini generateContent: POST /{v1,v1beta}/models/{model}:generateContent, and
:streamGenerateContent?alt=sse whose every SSE data line is a GenerateContentResponse.
"""

from __future__ import annotations

from aiohttp import web

from sandbox.conversation import Conversation, text_of
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

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "stop_sequence": "STOP"}
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


def _conversation(body: dict) -> Conversation:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    if not all(isinstance(content, dict) for content in contents):
        raise invalid("* GenerateContentRequest.contents: each content must be an object")
    turns = [("assistant" if c.get("role") == "model" else "user", text_of(c.get("parts"))) for c in contents]
    instruction = body.get("systemInstruction") or {}
    system = text_of(instruction.get("parts")) if isinstance(instruction, dict) else ""
    return Conversation.of([system], turns)


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
        )

    def _response(self, c: Completion, text: str, finished: bool = False) -> dict:
        """A GenerateContentResponse; the last one of an answer has its finishReason and usage."""
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        response = {"candidates": [candidate], "modelVersion": c.call.model, "responseId": c.id}
        if finished:
            candidate["finishReason"] = _FINISH[c.reply.finish]
            response["usageMetadata"] = _usage(c)
        return response

    def completion_body(self, c: Completion) -> dict:
        return self._response(c, c.reply.text, finished=True)

    def delta_payload(self, c: Completion, text: str) -> dict:
        return self._response(c, text)

    def stream_final(self, c: Completion) -> Frame:
        return Frame.of(self._response(c, "", finished=True))

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
