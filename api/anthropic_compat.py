"""Anthropic's wire format at /v1: POST /v1/messages, POST /v1/messages/count_tokens, and
GET /v1/models in Anthropic's shape when asked with Anthropic's headers.

The anthropic SDK and Claude Code become orchestrator clients with base_url (or
ANTHROPIC_BASE_URL) "http://host:port" and an orchestrator API key, sent as `x-api-key` or
`Authorization: Bearer` (api/auth.py); `anthropic-version` is accepted and not needed.

- What a request may hold is read by api/anthropic_request.py (its docstring lists it).
- The body becomes a chat job as the OpenAI door's does and goes through the same functions
  (api/chat.py, api/streaming.py): same queue, worker, routing, fallbacks, budgets and
  accounting; the provider adapters translate tools, tool results and images to whichever
  provider answers.
- Errors come in Anthropic's shape {"type": "error", "error": {"type", "message"}} with
  Anthropic's statuses (api/anthropic_errors.py), converted after the fact like the OpenAI
  door's (api/doors.py). A stream waits for the first piece of the answer before it starts,
  so an error until then is an HTTP status; after that it is an in-band `event: error`, never
  a message_stop after an incomplete or invalid answer.
- A stream names, in message_start, the model routing chose (or the one that took over
  before the first token); the answer's tool calls come whole at its end, each a tool_use
  block whose input arrives as one input_json_delta.

These routes are outside the OpenAPI spec, as the OpenAI door's are (Anthropic documents the
wire format).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify

from api import services
from api.anthropic_errors import from_orchestrator
from api.anthropic_request import count_body, read_messages
from api.chat import run_chat
from api.door_request import AUTO_MODELS, DoorChat, json_body, unknown_model
from api.doors import PREFIX, routing_headers
from api.streaming import OpenedStream, door_response, open_stream
from orchestrator.core.analysis import analyze_request
from orchestrator.core.job import ChatResult, ModelResponse, job_from_body
from orchestrator.core.types import Usage

blp = Blueprint("anthropic_compat", __name__, url_prefix=PREFIX)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
MODELS_CREATED = "2024-01-01T00:00:00Z"  # the catalog keeps no release dates


# --- answers ------------------------------------------------------------------------------

def _stop_reason(response: ModelResponse) -> str:
    return STOP_REASONS.get(response.finish_reason, "end_turn")


def _usage(usage: Usage) -> dict:
    """Anthropic counts cache reads apart from the other input tokens."""
    cached = usage.cached_tokens
    return {"input_tokens": usage.input_tokens - cached, "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


def _tool_uses(response: ModelResponse) -> list[dict]:
    return [{"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments or "{}")}
            for c in response.tool_calls]


def _message(result: ChatResult) -> dict:
    response = result.response
    text = [{"type": "text", "text": response.content}] if response.content else []
    return {
        "id": f"msg_{result.request_id}",
        "type": "message",
        "role": "assistant",
        "model": result.model_used,
        "content": text + _tool_uses(response),
        "stop_reason": _stop_reason(response),
        "stop_sequence": None,
        "usage": _usage(response.usage),
    }


# --- streaming ------------------------------------------------------------------------------

def _event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


class _Events:
    """The events of one streamed message, in Anthropic's order: message_start, each content
    block's start, deltas and stop, message_delta (stop reason, usage), message_stop."""

    keep_alive = _event("ping", {})

    def __init__(self, opened: OpenedStream):
        first_model = opened.first[2].get("model") if opened.first and opened.first[1] == "chunk" else None
        self.model = first_model or opened.chosen_model
        self.id = f"msg_{opened.request_id}"
        analysis = opened.decision.analysis if opened.decision is not None else None
        self.estimate = analysis.input_tokens if analysis is not None else 0
        self.blocks = 0  # content blocks started so far
        self.text_open = False

    def start(self) -> str:
        message: dict = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                         "stop_reason": None, "stop_sequence": None,
                         "usage": {"input_tokens": self.estimate, "output_tokens": 0}}
        return _event("message_start", {"message": message})

    def text(self, chunk: dict) -> Iterator[str]:
        if not self.text_open:
            self.text_open = True
            yield _event("content_block_start", {"index": self.blocks, "content_block": {"type": "text", "text": ""}})
        yield _event("content_block_delta", {"index": self.blocks, "delta": {"type": "text_delta", "text": chunk["text"]}})

    def _close_text(self) -> Iterator[str]:
        if self.text_open:
            self.text_open = False
            yield _event("content_block_stop", {"index": self.blocks})
            self.blocks += 1

    def ending(self, result: ChatResult) -> Iterator[str]:
        """The tool calls as tool_use blocks, then the stop reason and the usage (the real input
        tokens replace message_start's estimate)."""
        response = result.response
        yield from self._close_text()
        for call in response.tool_calls:
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            yield _event("content_block_start", {"index": self.blocks, "content_block": block})
            yield _event("content_block_delta", {"index": self.blocks, "delta": {
                "type": "input_json_delta", "partial_json": call.arguments or "{}"}})
            yield _event("content_block_stop", {"index": self.blocks})
            self.blocks += 1
        yield _event("message_delta", {"delta": {"stop_reason": _stop_reason(response), "stop_sequence": None},
                                       "usage": _usage(response.usage)})
        yield _event("message_stop", {})

    def error(self, error: dict) -> str:
        return _event("error", {"error": from_orchestrator(error.get("status", 500), error).body["error"]})

    def refusal(self, error: dict) -> Response:
        return from_orchestrator(error.get("status", 500), error).response()


def _stream(chat: DoorChat) -> Response:
    opened = open_stream(chat.body, **chat.form)
    response = door_response(opened, _Events(opened))
    response.headers["request-id"] = opened.request_id  # where Anthropic's SDKs read it
    return response


# --- routes -------------------------------------------------------------------------------

@blp.post("/messages")
def messages():
    chat = read_messages(json_body())
    if chat.stream:
        return _stream(chat)
    result = run_chat(chat.body, **chat.form)
    return jsonify(_message(result)), 200, {**routing_headers([result]), "request-id": result.request_id}


@blp.post("/messages/count_tokens")
def count_tokens():
    """The orchestrator's offline estimate of the input (orchestrator/core/analysis.py): about
    four characters a token for the text, the tools' declarations and the system prompt, a few
    tokens a message, a fixed count an image. No provider is called."""
    chat = count_body(json_body())
    svc = services()
    job = job_from_body(chat.body, "", svc.settings, **chat.form)
    return jsonify({"input_tokens": analyze_request(job.chat_request(svc.settings)).input_tokens})


def _model_entry(name: str) -> dict:
    display = f"Routed: {AUTO_MODELS[name]}" if name in AUTO_MODELS else name
    return {"type": "model", "id": name, "display_name": display, "created_at": MODELS_CREATED}


def model_list() -> Response:
    """GET /v1/models in Anthropic's shape: the auto models, then the catalog, on one page."""
    entries = [_model_entry(name) for name in [*AUTO_MODELS, *(m.model_name for m in services().catalog)]]
    return jsonify({"data": entries, "has_more": False, "first_id": entries[0]["id"], "last_id": entries[-1]["id"]})


def model(name: str) -> Response:
    if name not in AUTO_MODELS and name not in services().catalog:
        raise unknown_model(name, "model_id")
    return jsonify(_model_entry(name))
