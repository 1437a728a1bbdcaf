"""What the Responses door answers: the Response object (from a request's result or its failure)
and, streamed, the Responses events of a request's answer (written by api/streaming.py's loop).

A stream says response.created and response.in_progress, then for the text a message item
(output_item.added, content_part.added, output_text.delta per chunk, output_text.done,
content_part.done, output_item.done), then each tool call whole as a function_call item
(output_item.added, function_call_arguments.delta and .done, output_item.done: calls come
whole, docs/architecture.md), and ends with response.completed (response.incomplete for an
answer cut at max_output_tokens, response.failed for an error after the first event).
Every event carries its sequence_number.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from flask import Response

from api.openai_errors import from_orchestrator
from orchestrator.core.job import ChatResult, ModelResponse
from orchestrator.core.types import ToolCall, Usage

RESPONSE_PREFIX, MESSAGE_PREFIX, CALL_PREFIX, REQUEST_PREFIX = "resp_", "msg_", "fc_", "req_"
STATUSES = {"queued": "queued", "running": "in_progress", "completed": "completed", "failed": "failed",
            "cancelled": "cancelled"}


def response_id(request_id: str) -> str:
    return RESPONSE_PREFIX + request_id.removeprefix(REQUEST_PREFIX)


def request_id_of(response: str) -> str | None:
    """The request behind a response id; None for what is not one."""
    return REQUEST_PREFIX + response.removeprefix(RESPONSE_PREFIX) if response.startswith(RESPONSE_PREFIX) else None


def usage(used: Usage) -> dict:
    return {
        "input_tokens": used.input_tokens,
        "input_tokens_details": {"cached_tokens": used.cached_tokens},
        "output_tokens": used.output_tokens,
        "output_tokens_details": {"reasoning_tokens": used.reasoning_tokens},
        "total_tokens": used.total_tokens,
    }


def message_item(request_id: str, text: str, status: str = "completed") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"id": MESSAGE_PREFIX + request_id.removeprefix(REQUEST_PREFIX), "type": "message", "role": "assistant",
            "status": status, "content": content}


def call_item(call: ToolCall, arguments: str | None = None) -> dict:
    return {"id": CALL_PREFIX + call.id, "type": "function_call", "call_id": call.id, "name": call.name,
            "arguments": call.arguments if arguments is None else arguments,
            "status": "completed" if arguments is None else "in_progress"}


def output(request_id: str, answer: ModelResponse) -> list[dict]:
    """The answer's output items: its text as a message (when it has text or no calls), then its calls."""
    calls = [call_item(call) for call in answer.tool_calls]
    text = [message_item(request_id, answer.content)] if answer.content or not calls else []
    return text + calls


class ResponseObject:
    """The Response objects of one request: its id, when it was made, and what it echoes of the
    request (instructions, tools, text format, sampling, metadata, previous_response_id, store)."""

    def __init__(self, request_id: str, echo: dict):
        """`echo`: the Response object's fields from the request (created_at and the model asked for among them)."""
        self.request_id = request_id
        self.base = {"id": response_id(request_id), "object": "response", **echo}

    def pending(self, status: str, model: str | None = None) -> dict:
        if model:
            self.base["model"] = model
        return {**self.base, "status": status, "output": [], "error": None, "incomplete_details": None,
                "usage": None}

    def answered(self, result: ChatResult) -> dict:
        answer = result.response
        cut = answer.finish_reason == "length"
        self.base["model"] = result.model_used
        return {**self.base, "status": "incomplete" if cut else "completed",
                "output": output(self.request_id, answer), "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
                "usage": usage(answer.usage)}

    def failed(self, error: dict) -> dict:
        """`error`: OpenAI's error object ({"message", "type", "code", "param"})."""
        return {**self.pending("failed"), "error": {"code": error.get("code") or error["type"],
                                                    "message": error["message"]}}


def _sse(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


class ResponseEvents:
    """The Responses events of one stream, numbered in order: how this door writes a stream
    (api/streaming.py's DoorStream)."""

    keep_alive = ": keep-alive\n\n"

    def __init__(self, response: ResponseObject, model: str):
        """`model`: the one routing chose, until a fallback takes over."""
        self.response = response
        self.model = model
        self.numbers = itertools.count()
        self.text_so_far: str | None = None  # the message's text so far, once its item is open

    def event(self, kind: str, **data) -> str:
        return _sse(kind, {**data, "sequence_number": next(self.numbers)})

    def start(self) -> str:
        return (self.event("response.created", response=self.response.pending("in_progress", self.model))
                + self.event("response.in_progress", response=self.response.pending("in_progress")))

    def text(self, chunk: dict) -> Iterator[str]:
        return self.delta(chunk["text"], chunk.get("model"))

    def delta(self, text: str, model: str | None = None) -> Iterator[str]:
        if model:
            self.response.base["model"] = model
        if self.text_so_far is None:
            self.text_so_far = ""
            yield self.event("response.output_item.added", output_index=0,
                             item=message_item(self.response.request_id, "", "in_progress"))
            yield self.event("response.content_part.added", **self._at(), part=_text_part(""))
        self.text_so_far += text
        yield self.event("response.output_text.delta", **self._at(), delta=text, logprobs=[])

    def _at(self) -> dict:
        return {"item_id": MESSAGE_PREFIX + self.response.request_id.removeprefix(REQUEST_PREFIX), "output_index": 0,
                "content_index": 0}

    def ending(self, result: ChatResult) -> Iterator[str]:
        answer = result.response
        if self.text_so_far is None and (answer.content or not answer.tool_calls):
            yield from self.delta(answer.content)  # an answer whose text came whole (or is empty)
        if self.text_so_far is not None:
            yield self.event("response.output_text.done", **self._at(), text=self.text_so_far, logprobs=[])
            yield self.event("response.content_part.done", **self._at(), part=_text_part(self.text_so_far))
            yield self.event("response.output_item.done", output_index=0,
                             item=message_item(self.response.request_id, self.text_so_far))
        first_call = 0 if self.text_so_far is None else 1
        for index, call in enumerate(answer.tool_calls, start=first_call):
            yield from self._call(index, call)
        whole = self.response.answered(result)
        yield self.event("response.completed" if whole["status"] == "completed" else "response.incomplete",
                         response=whole)

    def _call(self, index: int, call: ToolCall) -> Iterator[str]:
        item_id = CALL_PREFIX + call.id
        yield self.event("response.output_item.added", output_index=index, item=call_item(call, ""))
        yield self.event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                         delta=call.arguments)
        yield self.event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                         name=call.name, arguments=call.arguments)
        yield self.event("response.output_item.done", output_index=index, item=call_item(call))

    def error(self, error: dict) -> str:
        """A worker's error event after the first event, as response.failed."""
        converted = from_orchestrator(error.get("status", 500), error).body["error"]
        return self.event("response.failed", response=self.response.failed(converted))

    def refusal(self, error: dict) -> Response:
        return from_orchestrator(error.get("status", 500), error).response()


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
