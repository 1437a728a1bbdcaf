"""OpenAI's wire format at /v1: POST /v1/chat/completions and GET /v1/models.

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

import itertools
import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request

from api import services
from api.chat import WAIT_GRACE, enqueue_chat, run_chat
from api.event_stream import Event, follow, no_answer
from api.openai_errors import OpenAIError, from_orchestrator, invalid, openai_error
from api.openai_request import AUTO_MODELS, OpenAIChat, read_chat, unknown_model
from api.schemas import unencodable_path
from api.streaming import HEARTBEAT_SECONDS, RESUME_GRACE, sse_response

PREFIX = "/v1"
blp = Blueprint("openai_compat", __name__, url_prefix=PREFIX)

FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@blp.errorhandler(OpenAIError)
def openai_error_response(error: OpenAIError):
    response = jsonify({"error": error.error})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


@blp.after_app_request
def _in_openai_shape(response: Response) -> Response:
    """Every error answer under /v1 in OpenAI's shape, whoever wrote it (authentication and
    rate limiting run before any view; the worker's errors come through api/chat.py).
    The headers (Retry-After, WWW-Authenticate) stay; the status is OpenAI's for the case."""
    if response.status_code < 400 or not _under_prefix(request.path) or not response.is_json:
        return response
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "type" in error:
        return response
    converted = from_orchestrator(response.status_code, error.get("code"), error.get("message") or "",
                                  error.get("details"))
    response.set_data(json.dumps({"error": converted.error}))
    response.status_code = converted.status
    response.headers.update(converted.headers)
    return response


def _json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting past the recursion limit: not a body we can read
        body = None
    if not isinstance(body, dict):
        raise invalid("We could not parse the JSON body of your request: send a JSON object "
                      "with the header Content-Type: application/json.", None, "invalid_json")
    path = unencodable_path(body)
    if path is not None:
        raise invalid(f"Invalid '{path}': the text holds an unpaired surrogate; send valid Unicode.", path)
    return body


# --- answers ----------------------------------------------------------------------------

def _usage(usage: dict) -> dict:
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
        "completion_tokens_details": {"reasoning_tokens": usage.get("reasoning_tokens", 0)},
    }


def _finish_reason(response: dict) -> str:
    return FINISH_REASONS.get(response.get("finish_reason"), "stop")


def _tool_calls(response: dict) -> list[dict]:
    return [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in response.get("tool_calls") or ()]


def _message(response: dict) -> dict:
    calls = _tool_calls(response)
    message = {"role": "assistant", "content": response["content"] or (None if calls else ""), "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return message


def _logprobs(response: dict) -> dict | None:
    return None if response.get("logprobs") is None else {"content": response["logprobs"], "refusal": None}


def completion_body(result: dict, created: int) -> dict:
    response = result["response"]
    return {
        "id": f"chatcmpl-{result['request_id']}",
        "object": "chat.completion",
        "created": created,
        "model": result["model_used"],
        "choices": [{
            "index": 0,
            "message": _message(response),
            "logprobs": _logprobs(response),
            "finish_reason": _finish_reason(response),
        }],
        "usage": _usage(response["usage"]),
        "system_fingerprint": None,
    }


def _routing_headers(result: dict) -> dict:
    response = result["response"]
    return {
        "x-orchestrator-model": result["model_used"],
        "x-orchestrator-provider": response["provider"],
        "x-orchestrator-cost": f"{response['cost']:.6f}",
        "x-orchestrator-attempts": str(len(result["attempts"])),
        "x-orchestrator-strategy": result["routing_decision"].get("strategy", ""),
        "x-request-id": result["request_id"],
    }


def _data(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


class _Chunks:
    """The chat.completion.chunk objects of one stream. Each names the model answering: the
    one routing chose, until a fallback takes over. The answer's tool calls come whole, one
    delta each in OpenAI's shape, once the answer is complete and checked."""

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool):
        self.base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                     "model": model, "system_fingerprint": None}
        self.include_usage = include_usage

    def delta(self, delta: dict, finish_reason: str | None = None, model: str | None = None) -> str:
        if model:
            self.base["model"] = model
        chunk = {**self.base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def ending(self, result: dict) -> Iterator[str]:
        response, model = result["response"], result["model_used"]
        for index, call in enumerate(_tool_calls(response)):
            yield self.delta({"tool_calls": [{"index": index, **call}]}, model=model)
        yield self.delta({}, _finish_reason(response), model)
        if self.include_usage:
            yield _data({**self.base, "choices": [], "usage": _usage(response["usage"])})
        yield _data("[DONE]")


def _converted(error: dict) -> tuple[int, dict]:
    """A worker's error event ({"status", "code", "message", "details"}): OpenAI's status and error."""
    converted = from_orchestrator(error.get("status", 500), error.get("code"), error.get("message", ""),
                                  error.get("details"))
    return converted.status, converted.error


def _in_band(error: dict) -> str:
    return _data({"error": _converted(error)[1]})


TIMEOUT_ERROR = no_answer()


def _openai_events(events: Iterator[Event | None], first: Event, chunks: _Chunks) -> Iterator[str]:
    try:
        yield chunks.delta({"role": "assistant", "content": ""})
        for item in itertools.chain([first], events):
            if item is None:
                yield ": keep-alive\n\n"
                continue
            _, kind, data = item
            if kind == "chunk" and data.get("text"):
                yield chunks.delta({"content": data["text"]}, model=data.get("model"))
            elif kind == "final":
                yield from chunks.ending(data)
                return
            elif kind == "error":
                yield _in_band(data)
                return
        yield _in_band(TIMEOUT_ERROR)
    finally:
        events.close()  # a caller who left before the end cancels the request (api/event_stream.py)


def _stream(chat: OpenAIChat, created: int) -> Response:
    """Enqueue as /chat/stream does, and wait for the first piece of the answer: an error
    until then is an HTTP status; after it, the answer streams as OpenAI's chunks."""
    store = services().requests
    request_id, job = enqueue_chat(chat.body, stream=True, **chat.form)
    events = follow(store, request_id, "0-0", job.deadline + WAIT_GRACE, HEARTBEAT_SECONDS, RESUME_GRACE)
    decision, first = {}, None
    for item in events:
        if item is None:
            continue
        if item[1] != "decision":
            first = item
            break
        decision = item[2]
    if first is None or first[1] == "error":
        events.close()
        status, error = _converted(first[2] if first else TIMEOUT_ERROR)
        raise OpenAIError(status, error, headers={"x-request-id": request_id})
    chunks = _Chunks(request_id, created, decision.get("chosen_model", ""), chat.include_usage)
    response = sse_response(_openai_events(events, first, chunks), request_id)
    response.headers["x-orchestrator-strategy"] = decision.get("strategy", "")
    return response


# --- routes -----------------------------------------------------------------------------

@blp.post("/chat/completions")
def chat_completions():
    chat = read_chat(_json_body())
    created = int(time.time())
    if chat.stream:
        return _stream(chat, created)
    result = run_chat(chat.body, **chat.form)
    return jsonify(completion_body(result, created)), 200, _routing_headers(result)


def _model_entries() -> list[dict]:
    auto = [{"id": name, "object": "model", "created": 0, "owned_by": "orchestrator"} for name in AUTO_MODELS]
    catalog = [{"id": m.model_name, "object": "model", "created": 0, "owned_by": m.provider}
               for m in services().catalog]
    return auto + catalog


@blp.get("/models")
def list_models():
    return jsonify({"object": "list", "data": _model_entries()})


@blp.get("/models/<path:model>")
def retrieve_model(model: str):
    for entry in _model_entries():
        if entry["id"] == model:
            return jsonify(entry)
    raise unknown_model(model, "model")


@blp.route("/<path:endpoint>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_endpoint(endpoint: str):
    message = (f"Unknown request URL: {request.method} {PREFIX}/{endpoint}. This gateway serves "
               f"POST {PREFIX}/chat/completions, GET {PREFIX}/models and GET {PREFIX}/models/{{model}}, "
               f"{PREFIX}/files and {PREFIX}/batches.")
    raise OpenAIError(404, openai_error(404, message, "unknown_url"))
