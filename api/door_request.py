"""What the /v1 doors (OpenAI's Chat Completions and Responses, Anthropic's Messages) read the
same way from a request body: the JSON object itself, typed values, the model and the routing
extensions, images, tool schemas, and the rules of a conversation with tools. What only
OpenAI's two doors share (their tools' and answer format's shapes, tool_choice) is in
api/openai_params.py.

A value the orchestrator cannot take is `Refused`: a status, a message naming the parameter
to fix, the parameter and a code; each door writes it in its own error shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flask import Response, jsonify, request
from marshmallow import ValidationError

from api import services
from api.schemas import ChatRequestSchema, unencodable_path
from orchestrator.core.answer_checks import schema_problem
from orchestrator.core.strategies import RoutingStrategy
from orchestrator.core.types import TOOL, Image, Message, Tool

AUTO = "auto"
AUTO_MODELS = {AUTO: RoutingStrategy.BALANCED.value, **{f"{AUTO}:{s.value}": s.value for s in RoutingStrategy}}
CHECKED_EXTENSIONS = ("strategy", "budget_limit", "conversation_id")  # `models` is read with `model`
EXTENSIONS = frozenset({"models", *CHECKED_EXTENSIONS})
MAX_STOP_SEQUENCES = 4  # OpenAI's limit, the smallest of the providers'
MAX_TOOLS = 128
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's limit, the smallest of the providers'
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATA_URI = re.compile(r"^data:(image/[a-z+.-]+);base64,(.*)$", re.DOTALL)


@dataclass
class DoorChat:
    """A request as the orchestrator takes it: the chat body (api/chat.py), the job fields of
    the answer's form (tools, response_format, ...: core/job.py), and whether to stream."""

    body: dict
    form: dict = field(default_factory=dict)
    stream: bool = False


class Refused(Exception):
    """A request a door does not take: the status, what to fix, the parameter at fault and a code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True)
class ErrorAnswer:
    """An error as a door answers it: the status, the body in the door's shape, the headers."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)

    def response(self) -> Response:
        response = jsonify(self.body)
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def invalid(message: str, param: str | None, code: str = "invalid_value") -> Refused:
    return Refused(400, message, param, code)


def type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def wrong_type(param: str, expected: str, value) -> Refused:
    return invalid(f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
                   param, "invalid_type")


def json_body() -> dict:
    """The request's JSON object, refused when it is not one or holds text no provider can be sent."""
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


# --- typed values -------------------------------------------------------------------------

def number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type(name, "a number", value)
    if not low <= value <= high:
        raise invalid(f"Invalid '{name}': {value} is not between {low} and {high}.", name)
    return value


def integer(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(name, "an integer", value)
    if value < low or (high is not None and value > high):
        bound = f"less than the minimum of {low}" if value < low else f"more than the maximum of {high}"
        raise invalid(f"Invalid '{name}': {value} is {bound}.", name)
    return value


def boolean(value, param: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise wrong_type(param, "a boolean", value)
    return value


def string(body: dict, name: str, max_length: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(name, "a string", value)
    if len(value) > max_length:
        raise invalid(f"Invalid '{name}': longer than {max_length} characters.", name)
    return value


def json_object(value, param: str) -> dict:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def allow_keys(item: dict, where: str, allowed: tuple[str, ...]) -> None:
    for key, value in item.items():
        if key not in allowed and value is not None:
            raise invalid(f"Unsupported parameter: '{where}.{key}' is not supported by this endpoint.",
                          f"{where}.{key}", "unsupported_parameter")


# --- routing --------------------------------------------------------------------------------

def unknown_model(name: str, param: str) -> Refused:
    reason = services().unavailable.get(name)
    message = (f"The model '{name}' is unavailable: {reason}." if reason
               else f"The model '{name}' does not exist; GET /v1/models lists the models.")
    return Refused(404, message, param, "model_not_found")


def routing(body: dict) -> dict:
    """strategy, the pinned model and the explicit order of models, from `model` and `models`."""
    catalog = services().catalog
    model = body.get("model")
    if model is None:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise wrong_type("model", "a string", model)
    pinned = None
    if model in AUTO_MODELS:
        strategy = AUTO_MODELS[model]
    elif model in catalog:
        strategy, pinned = AUTO_MODELS[AUTO], model
    else:
        raise unknown_model(model, "model")
    models = body.get("models")
    if models is None:
        return {"strategy": strategy, "model": pinned}
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise wrong_type("models", "a non-empty array of model names", models)
    for name in models:
        if name not in catalog:
            raise unknown_model(name, "models")
    order = list(dict.fromkeys([pinned, *models] if pinned else models))
    return {"strategy": strategy, "model": pinned, "models": order}


def extensions(body: dict, names: tuple[str, ...] = CHECKED_EXTENSIONS) -> dict:
    """The extensions among `names` (`strategy`, `budget_limit`, `conversation_id`), checked as
    the orchestrator's own API checks them."""
    given = {name: body[name] for name in names if body.get(name) is not None}
    if not given:
        return {}
    try:
        return ChatRequestSchema(only=tuple(given)).load(given)
    except ValidationError as exc:
        name, problems = next(iter(exc.normalized_messages().items()))
        raise invalid(f"Invalid '{name}': {' '.join(map(str, problems))}", name) from None


# --- tools ------------------------------------------------------------------------------------

def tools(value, read: Callable[[object, int], Tool]) -> tuple[Tool, ...]:
    """The tools of an array, each read by the door's `read(item, index)`; at most MAX_TOOLS, names unique."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise wrong_type("tools", "an array", value)
    if len(value) > MAX_TOOLS:
        raise invalid(f"Invalid 'tools': at most {MAX_TOOLS} tools.", "tools")
    read_tools = tuple(read(item, i) for i, item in enumerate(value))
    names = [tool.name for tool in read_tools]
    if len(set(names)) < len(names):
        raise invalid("Invalid 'tools': two tools have the same name.", "tools")
    return read_tools


def tool(name: str, parameters, description, strict: bool, where: str, schema_param: str) -> Tool:
    """A tool whose parameters' schema the gateway can check answers against (None: no parameters)."""
    parameters = {"type": "object", "properties": {}} if parameters is None else json_object(parameters, schema_param)
    problem = schema_problem(parameters)
    if problem:
        raise invalid(f"Invalid schema for function '{name}': {problem}", schema_param, "invalid_function_parameters")
    if description is not None and not isinstance(description, str):
        raise wrong_type(f"{where}.description", "a string", description)
    return Tool(name, parameters, description, strict)


def function_name(name, param: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"Invalid '{param}': 1 to 64 letters, digits, underscores or dashes.", param)
    return name


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text or "{}"), dict)
    except ValueError:
        return False


# --- the conversation ---------------------------------------------------------------------------

def check_conversation(turns: Sequence[Message], param: str = "messages") -> None:
    """At most MAX_IMAGES images, and every tool result answers a call made earlier."""
    if sum(len(m.images) for m in turns) > MAX_IMAGES:
        raise invalid(f"Invalid '{param}': at most {MAX_IMAGES} images in a conversation.", param)
    called = {call.id for m in turns for call in m.tool_calls}
    for message in turns:
        if message.role == TOOL and message.tool_call_id not in called:
            raise invalid(f"Invalid '{param}': the tool result for tool call '{message.tool_call_id}' answers "
                          "no tool call of an earlier assistant message.", param)


def image(url, where: str, detail: str | None = None) -> Image:
    """An image by http(s) URL or as a data URI of one of IMAGE_TYPES, at most MAX_IMAGE_BYTES."""
    if not isinstance(url, str):
        raise wrong_type(where, "a string", url)
    if url.startswith(("https://", "http://")):
        return Image(url, detail)
    match = _DATA_URI.match(url)
    if match is None:
        raise invalid(f"Invalid '{where}': an http(s) URL or a data URI (data:image/png;base64,...).",
                      where, "invalid_image_url")
    media_type, data = match.groups()
    if media_type not in IMAGE_TYPES:
        raise invalid(f"Invalid '{where}': images must be {', '.join(IMAGE_TYPES)}, not {media_type}.",
                      where, "invalid_image_format")
    try:
        size = len(base64.b64decode(data, validate=True))
    except binascii.Error:
        raise invalid(f"Invalid '{where}': the image's base64 does not decode.", where,
                      "invalid_image_url") from None
    if size > MAX_IMAGE_BYTES:
        raise invalid(f"Invalid '{where}': the image is {size} bytes; at most {MAX_IMAGE_BYTES}.",
                      where, "image_too_large")
    return Image(url, detail)
