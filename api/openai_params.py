"""What OpenAI's two doors (Chat Completions, api/openai_request.py; Responses,
api/responses_request.py) read alike and Anthropic's does not: a function tool, `tool_choice`,
the answer's format (response_format, text.format), an image with its `detail`, the reasoning
effort, and the rule that a conversation ends with the user or a tool result. Each builds on
the door-neutral checks of api/door_request.py and is refused, as they are, with `Refused`.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.door_request import boolean, check_conversation, function_name, image, invalid, json_object, tool
from orchestrator.core.answer_checks import schema_problem
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

SYSTEM_ROLES = ("system", "developer")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
IMAGE_DETAILS = (None, "auto", "low", "high")


def function_tool(function: dict, where: str, strict_default: bool = False) -> Tool:
    """A function's `name`, `parameters`, `description` and `strict`, found at `where`."""
    name = function_name(function.get("name"), f"{where}.name")
    strict = boolean(function.get("strict"), f"{where}.strict", strict_default)
    return tool(name, function.get("parameters"), function.get("description"), strict, where, f"{where}.parameters")


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
    for key in name_path:  # a step that is not an object leaves no name: a 400, not a 500
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
    kind = json_object(value, where).get("type")
    if kind == "text":
        return None
    if kind == JSON_OBJECT:
        return ResponseFormat(JSON_OBJECT)
    if kind != JSON_SCHEMA:
        raise invalid(f"Invalid '{where}.type': expected 'text', 'json_object' or 'json_schema'.", f"{where}.type")
    if schema_key is not None:
        where = f"{where}.{schema_key}"
        value = json_object(value.get(schema_key), where)
    name = function_name(value.get("name"), f"{where}.name")
    schema = json_object(value.get("schema", {"type": "object"}), f"{where}.schema")
    problem = schema_problem(schema)
    if problem:
        raise invalid(f"Invalid schema for response_format '{name}': {problem}", f"{where}.schema",
                      "invalid_json_schema")
    return ResponseFormat(JSON_SCHEMA, schema, name, boolean(value.get("strict"), f"{where}.strict"))


def detailed_image(url, detail, url_param: str, detail_param: str) -> Image:
    """An image (api/door_request.py's checks) with OpenAI's `detail`: auto, low or high."""
    if detail not in IMAGE_DETAILS:
        raise invalid(f"Invalid '{detail_param}': expected auto, low or high.", detail_param)
    return image(url, url_param, detail)


def reasoning_effort(value, param: str) -> str | None:
    if value not in (None, *REASONING_EFFORTS):
        raise invalid(f"Invalid '{param}': expected one of {', '.join(REASONING_EFFORTS)}.", param)
    return value


def check_turns(turns: Sequence[Message], param: str) -> None:
    """A conversation an OpenAI door takes: it ends with the user or a tool result, and passes
    the checks every door makes (images, tool results: check_conversation)."""
    if not turns or turns[-1].role not in (USER, TOOL):
        raise invalid("The last message (besides system and developer messages) must be a user or tool message.",
                      param)
    check_conversation(turns, param)
