"""OpenAI's wire format at /v1: POST /v1/chat/completions and GET /v1/models.

Any OpenAI client becomes an orchestrator client with base_url="http://host:port/v1" and an
orchestrator API key (the same Bearer keys and rate limits as the rest of the API).

- `model`: "auto" routes with the balanced strategy, "auto:<strategy>" with that strategy;
  a catalog model's name pins it (its fallbacks still apply). `models` (OpenRouter's
  extension) lists the models to try, in order, after `model` when `model` names one.
- Honoured: messages (system and developer messages become the system prompt; user and
  assistant turns; the last message is the user's), temperature, top_p, max_tokens or
  max_completion_tokens, stop, n=1, user, stream and stream_options.include_usage. Any other
  parameter is refused with 400 naming it (null, and the neutral values of a few
  parameters, mean "not asked for" and pass).
- The body becomes the same chat body as /chat/execute and /chat/stream and goes through
  the same functions (api/chat.py): same queue, worker, fallbacks, budgets and accounting.
- Errors come in OpenAI's shape {"error": {"message", "type", "code", "param"}}: this
  module's own, and every other answer under /v1 (authentication, rate limits, the worker's
  errors), converted after the fact. A stream waits for the first piece of the answer before
  it starts, so an error up to then is an HTTP status; after that it is an in-band
  `data: {"error": ...}` line, never a clean `data: [DONE]` after an incomplete answer.

These routes are not in the OpenAPI spec: OpenAI's own spec documents the wire format, and
some of its rules (the last message is the user's, text parts only) cannot be written in
OpenAPI 3.0, so a spec of them would make the contract test flag correct 400s.
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
from api.schemas import unencodable_path
from api.streaming import HEARTBEAT_SECONDS, RESUME_GRACE, sse_response
from orchestrator.core.strategies import RoutingStrategy

PREFIX = "/v1"
blp = Blueprint("openai_compat", __name__, url_prefix=PREFIX)

AUTO = "auto"
AUTO_MODELS = {AUTO: RoutingStrategy.BALANCED.value, **{f"{AUTO}:{s.value}": s.value for s in RoutingStrategy}}
SUPPORTED = frozenset({
    "model", "models", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "user",
    "stream", "stream_options",
})
# Parameters we do not support but whose value here asks for nothing (as if left out).
NEUTRAL = {"presence_penalty": 0, "frequency_penalty": 0, "logprobs": False}
SYSTEM_ROLES = ("system", "developer")
TURN_ROLES = ("user", "assistant")
MAX_STOP_SEQUENCES = 4
FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


# --- errors ---------------------------------------------------------------------------

class OpenAIError(Exception):
    """An answer in OpenAI's error shape: `error` is {"message", "type", "code", "param"}."""

    def __init__(self, status: int, error: dict, headers: dict | None = None):
        super().__init__(error["message"])
        self.status = status
        self.error = error
        self.headers = headers or {}


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    return {"message": message, "type": error_type(status), "code": code, "param": param}


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 402:
        return "insufficient_quota"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_exceeded"
    if status == 503:
        return "service_unavailable"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def from_orchestrator(status: int, code: str | None, message: str, details=None) -> dict:
    """One of our errors ({"code", "message", "details"} with its status) in OpenAI's shape."""
    reason = details.get("reason") if isinstance(details, dict) else None
    if status == 401:
        code = "invalid_api_key"
    elif status == 402:
        code = "insufficient_quota"
    elif status == 429:
        code = "rate_limit_exceeded"
    elif reason == "unknown_model":
        code = "model_not_found"
    elif reason == "context":
        code = "context_length_exceeded"
    return openai_error(status, message, code)


def _under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@blp.errorhandler(OpenAIError)
def _openai_error(error: OpenAIError):
    response = jsonify({"error": error.error})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


@blp.after_app_request
def _in_openai_shape(response: Response) -> Response:
    """Every error answer under /v1 in OpenAI's shape, whoever wrote it (authentication and
    rate limiting run before any view; the worker's errors come through api/chat.py).
    The status and the headers (Retry-After, WWW-Authenticate) stay."""
    if response.status_code < 400 or not _under_prefix(request.path) or not response.is_json:
        return response
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "type" in error:
        return response
    converted = from_orchestrator(response.status_code, error.get("code"), error.get("message") or "", error.get("details"))
    response.set_data(json.dumps({"error": converted}))
    return response


def _invalid(message: str, param: str | None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, openai_error(400, message, code, param))


# --- reading the request --------------------------------------------------------------

def _json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting past the recursion limit: not a body we can read
        body = None
    if not isinstance(body, dict):
        raise _invalid("We could not parse the JSON body of your request: send a JSON object "
                       "with the header Content-Type: application/json.", None, "invalid_json")
    path = unencodable_path(body)
    if path is not None:
        raise _invalid(f"Invalid '{path}': the text holds an unpaired surrogate; send valid Unicode.", path)
    return body


def _asks_nothing(name: str, value) -> bool:
    """Null, or the neutral value of a parameter in NEUTRAL: the same as leaving it out."""
    if value is None or name not in NEUTRAL:
        return value is None
    neutral = NEUTRAL[name]
    if isinstance(neutral, bool):
        return value is neutral
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == neutral


def _refuse_unsupported(body: dict) -> None:
    for name, value in body.items():
        if name in SUPPORTED or _asks_nothing(name, value):
            continue
        raise _invalid(f"Unsupported parameter: '{name}' is not supported by this endpoint.", name,
                       "unsupported_parameter")


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _wrong_type(param: str, expected: str, value) -> OpenAIError:
    return _invalid(f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
                    param, "invalid_type")


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(name, "a number", value)
    if not low <= value <= high:
        raise _invalid(f"Invalid '{name}': {value} is not between {low} and {high}.", name)
    return value


def _integer(body: dict, name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if value < low:
        raise _invalid(f"Invalid '{name}': {value} is less than the minimum of {low}.", name)
    return value


def _boolean(value, param: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong_type(param, "a boolean", value)
    return value


def _string(body: dict, name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    if len(value) > max_length:
        raise _invalid(f"Invalid '{name}': longer than {max_length} characters.", name)
    return value


def _max_tokens(body: dict) -> int | None:
    legacy, current = _integer(body, "max_tokens", 1), _integer(body, "max_completion_tokens", 1)
    if legacy is not None and current is not None and legacy != current:
        raise _invalid("Give max_tokens or max_completion_tokens, not both with different values.",
                       "max_completion_tokens")
    return current if current is not None else legacy


def _stop(body: dict) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise _invalid(f"Invalid 'stop': at most {MAX_STOP_SEQUENCES} sequences.", "stop")
    if not all(sequences):
        raise _invalid("Invalid 'stop': a stop sequence cannot be empty.", "stop")
    return sequences or None


def _text(content, param: str) -> str:
    """A message's text: a string, or the text of a list of text parts (joined by newlines)."""
    if isinstance(content, str):
        return content
    if content is None:
        raise _invalid(f"Invalid '{param}': a message needs content.", param)
    if not isinstance(content, list):
        raise _wrong_type(param, "a string or an array of content parts", content)
    if not content:
        raise _invalid(f"Invalid '{param}': an empty array of content parts.", param)
    texts = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(where, "an object", part)
        kind = part.get("type")
        if kind != "text":
            if kind in ("image_url", "input_audio", "file", "refusal"):
                raise _invalid(f"Content parts of type '{kind}' are not supported yet; send text parts.",
                               f"{where}.type", "unsupported_content")
            raise _invalid(f"Invalid '{where}.type': expected 'text'.", f"{where}.type")
        for key in part:
            if key not in ("type", "text"):
                raise _invalid(f"Unsupported parameter: '{where}.{key}' is not supported by this endpoint.",
                               f"{where}.{key}", "unsupported_parameter")
        if not isinstance(part.get("text"), str):
            raise _wrong_type(f"{where}.text", "a string", part.get("text"))
        texts.append(part["text"])
    return "\n".join(texts)


def _conversation(messages) -> tuple[str | None, list[dict]]:
    """The system prompt (system and developer messages, joined) and the turns, oldest first."""
    if messages is None:
        raise _invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array", messages)
    system, turns = [], []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role in ("tool", "function"):
            raise _invalid(f"Messages with role '{role}' are not supported: this endpoint has no tools.",
                           f"{where}.role", "unsupported_value")
        if role not in SYSTEM_ROLES + TURN_ROLES:
            raise _invalid(f"Invalid '{where}.role': expected one of system, developer, user, assistant.",
                           f"{where}.role")
        for key, value in message.items():
            if key not in ("role", "content") and value is not None:
                raise _invalid(f"Unsupported parameter: '{where}.{key}' is not supported by this endpoint.",
                               f"{where}.{key}", "unsupported_parameter")
        text = _text(message.get("content"), f"{where}.content")
        if role in SYSTEM_ROLES:
            if text.strip():
                system.append(text)
        elif not text.strip():
            raise _invalid(f"Invalid '{where}.content': it must contain text, not only white space.",
                           f"{where}.content")
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] != "user":
        raise _invalid("The last message (besides system and developer messages) must be a user message.",
                       "messages")
    return "\n".join(system) or None, turns


def _unknown_model(name: str, param: str) -> OpenAIError:
    reason = services().unavailable.get(name)
    message = (f"The model '{name}' is unavailable: {reason}." if reason
               else f"The model '{name}' does not exist; GET /v1/models lists the models.")
    return OpenAIError(404, openai_error(404, message, "model_not_found", param))


def _routing(body: dict) -> dict:
    """strategy, the pinned model and the explicit order of models, from `model` and `models`."""
    catalog = services().catalog
    model = body.get("model")
    if model is None:
        raise _invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    pinned = None
    if model in AUTO_MODELS:
        strategy = AUTO_MODELS[model]
    elif model in catalog:
        strategy, pinned = AUTO_MODELS[AUTO], model
    else:
        raise _unknown_model(model, "model")
    models = body.get("models")
    if models is None:
        return {"strategy": strategy, "model": pinned}
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise _wrong_type("models", "a non-empty array of model names", models)
    for name in models:
        if name not in catalog:
            raise _unknown_model(name, "models")
    order = list(dict.fromkeys([pinned, *models] if pinned else models))
    return {"strategy": strategy, "model": pinned, "models": order}


def chat_body(body: dict) -> dict:
    """The orchestrator's chat body (as /chat/execute takes it, validated) of an OpenAI request."""
    _refuse_unsupported(body)
    routing = _routing(body)
    system_prompt, turns = _conversation(body.get("messages"))
    n = _integer(body, "n", 1)
    if n is not None and n > 1:
        raise _invalid("Only n=1 is supported: one answer per request.", "n", "unsupported_value")
    return {
        "message": turns[-1]["content"],
        "history": turns[:-1],
        "system_prompt": system_prompt,
        "temperature": _number(body, "temperature", 0, 2),
        "top_p": _number(body, "top_p", 0, 1),
        "max_tokens": _max_tokens(body),
        "stop": _stop(body),
        "user": _string(body, "user", 256),
        **routing,
    }


def _stream_options(body: dict, stream: bool) -> bool:
    """Whether the stream ends with a usage chunk."""
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise _invalid("stream_options is only allowed when stream is true.", "stream_options")
    if not isinstance(options, dict):
        raise _wrong_type("stream_options", "an object", options)
    for key, value in options.items():
        if key != "include_usage" and value is not None:
            raise _invalid(f"Unsupported parameter: 'stream_options.{key}' is not supported by this endpoint.",
                           f"stream_options.{key}", "unsupported_parameter")
    return _boolean(options.get("include_usage"), "stream_options.include_usage")


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


def _completion(result: dict, created: int) -> dict:
    response = result["response"]
    return {
        "id": f"chatcmpl-{result['request_id']}",
        "object": "chat.completion",
        "created": created,
        "model": result["model_used"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": response["content"], "refusal": None},
            "logprobs": None,
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
    """The chat.completion.chunk objects of one stream. Until the answer is complete they
    name the model asked for (a fallback may still change who answers); the finishing
    chunks name the model that answered."""

    def __init__(self, request_id: str, created: int, model: str, include_usage: bool):
        self.base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                     "model": model, "system_fingerprint": None}
        self.include_usage = include_usage

    def delta(self, delta: dict, finish_reason: str | None = None, model: str | None = None) -> str:
        chunk = {**self.base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish_reason}]}
        if model:
            chunk["model"] = model
        if self.include_usage:
            chunk["usage"] = None
        return _data(chunk)

    def ending(self, result: dict) -> Iterator[str]:
        response, model = result["response"], result["model_used"]
        yield self.delta({}, _finish_reason(response), model)
        if self.include_usage:
            yield _data({**self.base, "model": model, "choices": [], "usage": _usage(response["usage"])})
        yield _data("[DONE]")


def _converted(error: dict) -> dict:
    """A worker's error event ({"status", "code", "message", "details"}) in OpenAI's shape."""
    return from_orchestrator(error.get("status", 500), error.get("code"), error.get("message", ""),
                             error.get("details"))


def _in_band(error: dict) -> str:
    return _data({"error": _converted(error)})


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
                yield chunks.delta({"content": data["text"]})
            elif kind == "final":
                yield from chunks.ending(data)
                return
            elif kind == "error":
                yield _in_band(data)
                return
        yield _in_band(TIMEOUT_ERROR)
    finally:
        events.close()  # a caller who left before the end cancels the request (api/event_stream.py)


def _stream(body: dict, model: str, include_usage: bool, created: int) -> Response:
    """Enqueue as /chat/stream does, and wait for the first piece of the answer: an error
    until then is an HTTP status; after it, the answer streams as OpenAI's chunks."""
    store = services().requests
    request_id, job = enqueue_chat(body, stream=True)
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
        error = first[2] if first else TIMEOUT_ERROR
        status = error.get("status", 500)
        raise OpenAIError(status, _converted(error), headers={"x-request-id": request_id})
    response = sse_response(_openai_events(events, first, _Chunks(request_id, created, model, include_usage)),
                            request_id)
    response.headers["x-orchestrator-strategy"] = decision.get("strategy", "")
    return response


# --- routes -----------------------------------------------------------------------------

@blp.post("/chat/completions")
def chat_completions():
    body = _json_body()
    chat = chat_body(body)
    stream = _boolean(body.get("stream"), "stream")
    include_usage = _stream_options(body, stream)
    created = int(time.time())
    if stream:
        return _stream(chat, body["model"], include_usage, created)
    result = run_chat(chat)
    return jsonify(_completion(result, created)), 200, _routing_headers(result)


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
    raise _unknown_model(model, "model")
