"""OpenAI's wire format at /v1: POST /v1/chat/completions and GET /v1/models (the Responses
API, POST /v1/responses, is api/responses.py).

Any OpenAI client becomes an orchestrator client with base_url="http://host:port/v1" and an
orchestrator API key (the same Bearer keys and rate limits as the rest of the API).

- What a request may hold is read by api/openai_request.py (its docstring lists it): every
  Chat Completions parameter, tools, structured outputs and images among them, and the
  orchestrator's extensions through `extra_body`.
- The body becomes a chat job as /chat/execute and /chat/stream make them and goes through
  the same functions (api/chat.py): same queue, worker, fallbacks, budgets and accounting.
- Errors come in OpenAI's shape {"error": {"message", "type", "code", "param"}}
  (api/openai_errors.py): this door's own, and every other answer under /v1
  (authentication, rate limits, the worker's errors), converted after the fact. A stream
  waits for the first piece of the answer before it starts, so an error up to then is an
  HTTP status; after that it is an in-band `data: {"error": ...}` line, never a clean
  `data: [DONE]` after an incomplete or invalid answer.
- Streamed chunks name the model routing chose from the first one, and the model that
  answers once a fallback takes over.

These routes are not in the OpenAPI spec: OpenAI's own spec documents the wire format, and
some of its rules (the last message is the user's or a tool's) cannot be written in OpenAPI
3.0, so a spec of them would make the contract test flag correct 400s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from api import anthropic_compat, embeddings, services
from api.chat import run_chats
from api.door_request import AUTO_MODELS, Refused, json_body, unknown_model
from api.doors import PREFIX, routing_headers, speaks_anthropic
from api.openai_errors import from_orchestrator
from api.openai_request import OpenAIChat, read_chat
from api.streaming import door_response, open_stream
from orchestrator.core.job import ChatResult, ModelResponse
from orchestrator.core.types import Usage

blp = Blueprint("openai_compat", __name__, url_prefix=PREFIX)

FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}


# --- answers ----------------------------------------------------------------------------

def _usage(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _finish_reason(response: ModelResponse) -> str:
    return FINISH_REASONS.get(response.finish_reason, "stop")


def _tool_calls(response: ModelResponse) -> list[dict]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in response.tool_calls]


def _message(response: ModelResponse) -> dict:
    calls = _tool_calls(response)
    message: dict = {"role": "assistant", "content": response.content or (None if calls else ""), "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return message


def _logprobs(response: ModelResponse) -> dict | None:
    return None if response.logprobs is None else {"content": response.logprobs, "refusal": None}


def completion_body(results: list[ChatResult], created: int) -> dict:
    """One chat.completion of one or more answers (`n`), their usage summed."""
    first = results[0]
    return {
        "id": f"chatcmpl-{first.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": first.model_used,
        "choices": [{
            "index": index,
            "message": _message(result.response),
            "logprobs": _logprobs(result.response),
            "finish_reason": _finish_reason(result.response),
        } for index, result in enumerate(results)],
        "usage": _usage(sum((result.response.usage for result in results), Usage())),
        "system_fingerprint": None,
    }


def _data(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


class _Chunks:
    """The chat.completion.chunk objects of one stream. Each names the model answering: the
    one routing chose, until a fallback takes over. The answer's tool calls come whole, one
    delta each in OpenAI's shape, once the answer is complete and checked."""

    keep_alive = ": keep-alive\n\n"

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool):
        self.base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                     "model": model, "system_fingerprint": None}
        self.include_usage = include_usage

    def start(self) -> str:
        return self.delta({"role": "assistant", "content": ""})

    def text(self, chunk: dict) -> Iterator[str]:
        yield self.delta({"content": chunk["text"]}, model=chunk.get("model"))

    def error(self, error: dict) -> str:
        return _data(from_orchestrator(error.get("status", 500), error).body)

    def refusal(self, error: dict) -> Response:
        return from_orchestrator(error.get("status", 500), error).response()

    def delta(self, delta: dict, finish_reason: str | None = None, model: str | None = None) -> str:
        if model:
            self.base["model"] = model
        chunk = {**self.base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def ending(self, result: ChatResult) -> Iterator[str]:
        response, model = result.response, result.model_used
        for index, call in enumerate(_tool_calls(response)):
            yield self.delta({"tool_calls": [{"index": index, **call}]}, model=model)
        yield self.delta({}, _finish_reason(response), model)
        if self.include_usage:
            yield _data({**self.base, "choices": [], "usage": _usage(response.usage)})
        yield _data("[DONE]")


def _stream(chat: OpenAIChat, created: int) -> Response:
    """Enqueue as /chat/stream does, and wait for the first piece of the answer: an error
    until then is an HTTP status; after it, the answer streams as OpenAI's chunks."""
    opened = open_stream(chat.body, **chat.form)
    chunks = _Chunks(opened.request_id, created, opened.chosen_model, chat.include_usage)
    return door_response(opened, chunks)


# --- routes -----------------------------------------------------------------------------

@blp.post("/chat/completions")
def chat_completions():
    chat = read_chat(json_body())
    created = int(time.time())
    if chat.stream:
        return _stream(chat, created)
    results = run_chats(chat.body, chat.n, **chat.form)
    return jsonify(completion_body(results, created)), 200, routing_headers(results)


def _model_entries() -> list[dict]:
    auto = [{"id": name, "object": "model", "created": 0, "owned_by": "orchestrator"} for name in AUTO_MODELS]
    catalog = [{"id": m.model_name, "object": "model", "created": 0, "owned_by": m.provider}
               for m in services().catalog]
    return auto + catalog + embeddings.model_entries()


@blp.get("/models")
def list_models():
    if speaks_anthropic():
        return anthropic_compat.model_list()
    return jsonify({"object": "list", "data": _model_entries()})


@blp.get("/models/<path:model>")
def retrieve_model(model: str):
    if speaks_anthropic():
        return anthropic_compat.model(model)
    for entry in _model_entries():
        if entry["id"] == model:
            return jsonify(entry)
    raise unknown_model(model, "model")


@blp.route("/<path:endpoint>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_endpoint(endpoint: str):
    message = (f"Unknown request URL: {request.method} {PREFIX}/{endpoint}. This gateway serves "
               f"POST {PREFIX}/chat/completions, POST {PREFIX}/responses, GET {PREFIX}/responses/{{id}}, "
               f"POST {PREFIX}/messages, POST {PREFIX}/messages/count_tokens, POST {PREFIX}/embeddings, "
               f"{PREFIX}/files, {PREFIX}/batches, "
               f"GET {PREFIX}/models and GET {PREFIX}/models/{{model}}.")
    raise Refused(404, message, None, "unknown_url")
