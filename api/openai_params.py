"""What OpenAI's doors (/v1/chat/completions, /v1/responses, /v1/embeddings) read alike: typed
parameters, routing (`model`, `models` and the orchestrator's extensions), function tools and
JSON schemas, images, and the checks of a conversation, each refused with a 400 in OpenAI's
words naming the parameter to fix."""

from __future__ import annotations

import base64
import binascii
import json
import re

from flask import request
from marshmallow import ValidationError

from api import services
from api.openai_errors import OpenAIError, invalid, openai_error, wrong_type
from api.schemas import ChatRequestSchema, unencodable_path
from orchestrator.core.answer_checks import schema_problem
from orchestrator.core.strategies import RoutingStrategy
from orchestrator.core.types import (
    AUTO_TOOLS,
    JSON_OBJECT,
    JSON_SCHEMA,
    NO_TOOLS,
    REQUIRED_TOOL,
    TOOL,
    USER,
    Image,
    Message,
    ResponseFormat,
    Tool,
    ToolChoice,
)

AUTO = "auto"
AUTO_MODELS = {AUTO: RoutingStrategy.BALANCED.value, **{f"{AUTO}:{s.value}": s.value for s in RoutingStrategy}}
MAX_TOOLS = 128
MAX_IMAGES = 20
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Anthropic's limit, the smallest of the providers'
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATA_URI = re.compile(r"^data:(image/[a-z+.-]+);base64,(.*)$", re.DOTALL)


def json_body() -> dict:
    """The request's JSON object, or a 400 saying what to send."""
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


# --- typed parameters ---------------------------------------------------------------------

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


def an_object(value, param: str) -> dict:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    return value


def allow_keys(item: dict, where: str, allowed: tuple[str, ...]) -> None:
    for key, value in item.items():
        if key not in allowed and value is not None:
            raise invalid(f"Unsupported parameter: '{where}.{key}' is not supported by this endpoint.",
                          f"{where}.{key}", "unsupported_parameter")


def is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text or "{}"), dict)
    except ValueError:
        return False


# --- routing --------------------------------------------------------------------------------

def unknown_model(name: str, param: str) -> OpenAIError:
    reason = services().unavailable.get(name)
    message = (f"The model '{name}' is unavailable: {reason}." if reason
               else f"The model '{name}' does not exist; GET /v1/models lists the models.")
    return OpenAIError(404, openai_error(404, message, "model_not_found", param))


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


def extensions(body: dict, names: tuple[str, ...]) -> dict:
    """The orchestrator's extensions among `names` (strategy, budget_limit, conversation_id),
    checked as its own API checks them."""
    given = {name: body[name] for name in names if body.get(name) is not None}
    if not given:
        return {}
    try:
        return ChatRequestSchema(only=tuple(given)).load(given)
    except ValidationError as exc:
        name, problems = next(iter(exc.normalized_messages().items()))
        raise invalid(f"Invalid '{name}': {' '.join(map(str, problems))}", name) from None


# --- tools and schemas ----------------------------------------------------------------------

def function_name(name, param: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"Invalid '{param}': 1 to 64 letters, digits, underscores or dashes.", param)
    return name


def tool_list(value, read_one) -> tuple[Tool, ...]:
    """`tools`: an array of at most MAX_TOOLS, each read by `read_one(item, where)`, names unique."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise wrong_type("tools", "an array", value)
    if len(value) > MAX_TOOLS:
        raise invalid(f"Invalid 'tools': at most {MAX_TOOLS} tools.", "tools")
    tools = tuple(read_one(item, f"tools[{i}]") for i, item in enumerate(value))
    names = [tool.name for tool in tools]
    if len(set(names)) < len(names):
        raise invalid("Invalid 'tools': two tools have the same name.", "tools")
    return tools


def function_tool(function: dict, where: str, strict_default: bool = False) -> Tool:
    """A function's `name`, `parameters`, `description` and `strict`, found at `where`."""
    name = function_name(function.get("name"), f"{where}.name")
    parameters = function.get("parameters")
    parameters = {"type": "object", "properties": {}} if parameters is None else an_object(parameters,
                                                                                           f"{where}.parameters")
    problem = schema_problem(parameters)
    if problem:
        raise invalid(f"Invalid schema for function '{name}': {problem}", f"{where}.parameters",
                      "invalid_function_parameters")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise wrong_type(f"{where}.description", "a string", description)
    return Tool(name, parameters, description, boolean(function.get("strict"), f"{where}.strict", strict_default))


def tool_choice(value, tools: tuple[Tool, ...], name_path: tuple[str, ...], shape: str) -> ToolChoice:
    """`tool_choice`: auto, none, required, or an object of type 'function' naming one of `tools`
    at `name_path` within it (`shape` shows that object in the error)."""
    if value is None:
        return ToolChoice()
    if value in (AUTO_TOOLS, NO_TOOLS, REQUIRED_TOOL):
        if not tools and value == REQUIRED_TOOL:
            raise invalid("tool_choice 'required' needs `tools`.", "tool_choice")
        return ToolChoice(value)
    if not isinstance(value, dict) or value.get("type") != "function":
        raise invalid(f"Invalid 'tool_choice': expected 'auto', 'none', 'required' or {shape}.", "tool_choice")
    name = value
    for key in name_path:
        name = name.get(key) if isinstance(name, dict) else None
    name = function_name(name, ".".join(("tool_choice", *name_path)))
    if name not in {tool.name for tool in tools}:
        raise invalid(f"Invalid 'tool_choice': no tool named '{name}' in `tools`.", "tool_choice")
    return ToolChoice.named(name)


def answer_format(value, where: str, schema_key: str | None) -> ResponseFormat | None:
    """The answer's format at `where`: text (None), json_object, or json_schema with its `name`,
    `schema` and `strict` in the object itself or under `schema_key`."""
    if value is None:
        return None
    kind = an_object(value, where).get("type")
    if kind == "text":
        return None
    if kind == JSON_OBJECT:
        return ResponseFormat(JSON_OBJECT)
    if kind != JSON_SCHEMA:
        raise invalid(f"Invalid '{where}.type': expected 'text', 'json_object' or 'json_schema'.", f"{where}.type")
    if schema_key is not None:
        where = f"{where}.{schema_key}"
        value = an_object(value.get(schema_key), where)
    name = function_name(value.get("name"), f"{where}.name")
    schema = an_object(value.get("schema", {"type": "object"}), f"{where}.schema")
    problem = schema_problem(schema)
    if problem:
        raise invalid(f"Invalid schema for response_format '{name}': {problem}", f"{where}.schema",
                      "invalid_json_schema")
    return ResponseFormat(JSON_SCHEMA, schema, name, boolean(value.get("strict"), f"{where}.strict"))


# --- images and conversations ---------------------------------------------------------------

def image(url, detail, where: str) -> Image:
    """An image at `where`: an http(s) URL or a data URI of a supported type and size."""
    if detail not in (None, "auto", "low", "high"):
        raise invalid(f"Invalid '{where}.detail': expected auto, low or high.", f"{where}.detail")
    if not isinstance(url, str):
        raise wrong_type(f"{where}.url", "a string", url)
    if url.startswith(("https://", "http://")):
        return Image(url, detail)
    match = _DATA_URI.match(url)
    if match is None:
        raise invalid(f"Invalid '{where}.url': an http(s) URL or a data URI (data:image/png;base64,...).",
                      f"{where}.url", "invalid_image_url")
    media_type, data = match.groups()
    if media_type not in IMAGE_TYPES:
        raise invalid(f"Invalid '{where}.url': images must be {', '.join(IMAGE_TYPES)}, not {media_type}.",
                      f"{where}.url", "invalid_image_format")
    try:
        size = len(base64.b64decode(data, validate=True))
    except binascii.Error:
        raise invalid(f"Invalid '{where}.url': the data URI's base64 does not decode.", f"{where}.url",
                      "invalid_image_url") from None
    if size > MAX_IMAGE_BYTES:
        raise invalid(f"Invalid '{where}.url': the image is {size} bytes; at most {MAX_IMAGE_BYTES}.",
                      f"{where}.url", "image_too_large")
    return Image(url, detail)


def check_turns(turns: list[Message] | tuple[Message, ...], param: str) -> None:
    """A conversation a model can answer: it ends with the user or a tool result, holds at most
    MAX_IMAGES images, and every tool result answers an earlier call."""
    if not turns or turns[-1].role not in (USER, TOOL):
        raise invalid("The last message (besides system and developer messages) must be a user or tool message.",
                      param)
    if sum(len(m.images) for m in turns) > MAX_IMAGES:
        raise invalid(f"Invalid '{param}': at most {MAX_IMAGES} images in a conversation.", param)
    called = {call.id for m in turns for call in m.tool_calls}
    for message in turns:
        if message.role == TOOL and message.tool_call_id not in called:
            raise invalid(f"Invalid '{param}': the tool result for call '{message.tool_call_id}' answers "
                          "no tool call made earlier in the conversation.", param)
