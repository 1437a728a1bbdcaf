"""A Responses request (POST /v1/responses) read at the door: every supported parameter checked,
with a 400 in OpenAI's words naming the one to fix, and turned into the orchestrator's chat body
and job fields, as api/openai_request.py does for Chat Completions.

What the body may hold, and where each value goes:
- Routing: `model` ("auto", "auto:<strategy>" or a catalog model), and the extensions a client
  sends through `extra_body`: `models` (the order to try), `strategy`, `budget_limit`.
- The conversation: `instructions` and system/developer messages (the system prompt), then
  `input`: a string (one user message) or items: messages (input_text and input_image parts;
  an assistant's output_text), `function_call` items (the assistant's calls, joined to its
  message) and `function_call_output` items (tool results). `reasoning` items are skipped: no
  provider can read another's reasoning. `previous_response_id` puts the stored conversation
  first (api/responses.py reads it).
- The answer's form: `tools` (function tools, flat: {type, name, parameters, strict}; strict
  by default, as OpenAI's), `tool_choice`, `parallel_tool_calls`, `text.format` (json_schema,
  json_object, text).
- Sampling: temperature, top_p, max_output_tokens.
- `store` (keep the response for GET and for chaining; default true), `metadata` (kept with it),
  `user`, and hints passed to the providers that take them: `reasoning.effort`, `service_tier`.
Anything else is refused by name; null, and a few parameters' neutral values, mean "not asked for".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from api.door_request import (
    allow_keys,
    boolean,
    extensions,
    function_name,
    integer,
    invalid,
    is_json_object,
    json_object,
    number,
    routing,
    string,
    tools,
    wrong_type,
)
from api.openai_params import (
    SYSTEM_ROLES,
    answer_format,
    detailed_image,
    function_tool,
    reasoning_effort,
    tool_choice,
)
from api.schemas import is_blank
from orchestrator.core.types import (
    ASSISTANT,
    TOOL,
    USER,
    Image,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
)

EXTENSIONS_CHECKED = ("strategy", "budget_limit")  # a conversation goes on by previous_response_id
SUPPORTED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text", "max_output_tokens",
    "temperature", "top_p", "previous_response_id", "store", "metadata", "stream", "user", "reasoning",
    "service_tier", "models", *EXTENSIONS_CHECKED,
})
# Parameters we do not support but whose value here asks for nothing (as if left out).
NEUTRAL = {"include": [], "truncation": "disabled", "background": False}
MAX_METADATA = 16


@dataclass
class ResponsesRequest:
    """The request as the orchestrator takes it (the chat body without the conversation's stored
    part, and the job fields of the answer's form), and what the Response object echoes."""

    body: dict
    turns: tuple[Message, ...]
    form: dict = field(default_factory=dict)
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    echo: dict = field(default_factory=dict)


def read_responses(body: dict) -> ResponsesRequest:
    _refuse_unsupported(body)
    offered = tools(body.get("tools"), _tool)
    turns, system = _input(body.get("input"))
    instructions = string(body, "instructions", 1_000_000)
    chat = {
        "system_prompt": "\n".join(filter(None, [instructions, *system])) or None,
        "temperature": number(body, "temperature", 0, 2),
        "top_p": number(body, "top_p", 0, 1),
        "max_tokens": integer(body, "max_output_tokens", 1),
        "user": string(body, "user", 256),
        **routing(body),
        **extensions(body, EXTENSIONS_CHECKED),
    }
    parallel = boolean(body.get("parallel_tool_calls"), "parallel_tool_calls", default=True)
    form = {
        "tools": offered,
        "tool_choice": tool_choice(body.get("tool_choice"), offered, ("name",), '{"type": "function", "name": ...}'),
        "parallel_tool_calls": parallel,
        "response_format": _text_format(body.get("text")),
        "options": _hints(body),
    }
    echo = {
        "instructions": instructions,
        "max_output_tokens": chat["max_tokens"],
        "metadata": _metadata(body.get("metadata")),
        "model": body["model"],
        "parallel_tool_calls": parallel,
        "temperature": chat["temperature"],
        "top_p": chat["top_p"],
        "text": {"format": body["text"]["format"]} if (body.get("text") or {}).get("format") else {"format": {
            "type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [{"type": "function", **t.to_json()} for t in offered],
        "user": chat["user"],
    }
    return ResponsesRequest(
        body=chat, turns=turns, form=form, stream=boolean(body.get("stream"), "stream"),
        store=boolean(body.get("store"), "store", default=True),
        previous_response_id=string(body, "previous_response_id", 128), echo=echo,
    )


def _refuse_unsupported(body: dict) -> None:
    for name, value in body.items():
        if name in SUPPORTED or value is None or NEUTRAL.get(name, ...) == value:
            continue
        raise invalid(f"Unsupported parameter: '{name}' is not supported by this endpoint.", name,
                      "unsupported_parameter")


def _metadata(value) -> dict | None:
    if value is None:
        return None
    if len(json_object(value, "metadata")) > MAX_METADATA or not all(
            isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()):
        raise invalid(f"Invalid 'metadata': at most {MAX_METADATA} pairs of strings (keys up to 64 characters, "
                      "values up to 512).", "metadata")
    return value


def _hints(body: dict) -> dict:
    """What the providers that take them are passed: the reasoning effort, the service tier, the end user."""
    hints = {name: body[name] for name in ("service_tier", "user") if body.get(name) is not None}
    reasoning = body.get("reasoning")
    if reasoning is not None:
        effort = reasoning_effort(json_object(reasoning, "reasoning").get("effort"), "reasoning.effort")
        if effort:
            hints["reasoning_effort"] = effort
    return hints


# --- the answer's form ------------------------------------------------------------------------

def _tool(item, index: int) -> Tool:
    where = f"tools[{index}]"
    if json_object(item, where).get("type") != "function":
        raise invalid(f"Invalid '{where}.type': expected 'function' (the only kind of tool supported).",
                      f"{where}.type", "unsupported_value")
    return function_tool(item, where, strict_default=True)


def _text_format(text) -> ResponseFormat | None:
    if text is None:
        return None
    allow_keys(json_object(text, "text"), "text", ("format", "verbosity"))
    if text.get("verbosity") not in (None, "medium"):
        raise invalid("Invalid 'text.verbosity': only 'medium' is supported.", "text.verbosity", "unsupported_value")
    return answer_format(text.get("format"), "text.format", None)


# --- the input ----------------------------------------------------------------------------------

def _input(value) -> tuple[tuple[Message, ...], list[str]]:
    """The input's turns, oldest first, and the texts of its system and developer messages."""
    if value is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(value, str):
        if is_blank(value):
            raise invalid("Invalid 'input': it must contain text, not only white space.", "input")
        return (Message(USER, value),), []
    if not isinstance(value, list):
        raise wrong_type("input", "a string or an array of input items", value)
    turns: list[Message] = []
    system: list[str] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        kind = json_object(item, where).get("type", "message")
        if kind == "message":
            _message(item, where, turns, system)
        elif kind == "function_call":
            _function_call(item, where, turns)
        elif kind == "function_call_output":
            turns.append(_function_call_output(item, where))
        elif kind != "reasoning":
            raise invalid(f"Input items of type '{kind}' are not supported: send messages, function_call and "
                          "function_call_output items.", f"{where}.type", "unsupported_value")
    return tuple(turns), system


def _message(item: dict, where: str, turns: list[Message], system: list[str]) -> None:
    allow_keys(item, where, ("type", "role", "content", "id", "status"))
    role = item.get("role")
    if role in SYSTEM_ROLES:
        text = _parts(item.get("content"), f"{where}.content", ("input_text",))[0]
        if not is_blank(text):
            system.append(text)
    elif role == USER:
        text, images = _parts(item.get("content"), f"{where}.content", ("input_text", "input_image"))
        if is_blank(text) and not images:
            raise invalid(f"Invalid '{where}.content': it must contain text or an image, not only white space.",
                          f"{where}.content")
        turns.append(Message(USER, text, images=images))
    elif role == ASSISTANT:
        text = _parts(item.get("content"), f"{where}.content", ("output_text", "refusal"))[0]
        if not is_blank(text):
            turns.append(Message(ASSISTANT, text))
    else:
        raise invalid(f"Invalid '{where}.role': expected one of system, developer, user, assistant.", f"{where}.role")


def _function_call(item: dict, where: str, turns: list[Message]) -> None:
    """The assistant's call, joined to the assistant's message just before it (a turn of text
    and calls is one message in every provider's format)."""
    allow_keys(item, where, ("type", "id", "call_id", "name", "arguments", "status"))
    call_id, arguments = item.get("call_id"), item.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id",
                      "missing_required_parameter")
    if not isinstance(arguments, str) or not is_json_object(arguments):
        raise invalid(f"Invalid '{where}.arguments': a JSON object, as a string.", f"{where}.arguments")
    call = ToolCall(call_id, function_name(item.get("name"), f"{where}.name"), arguments)
    if turns and turns[-1].role == ASSISTANT:
        turns[-1] = dataclasses.replace(turns[-1], tool_calls=(*turns[-1].tool_calls, call))
    else:
        turns.append(Message(ASSISTANT, "", tool_calls=(call,)))


def _function_call_output(item: dict, where: str) -> Message:
    allow_keys(item, where, ("type", "id", "call_id", "output", "status"))
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id",
                      "missing_required_parameter")
    output = _parts(item.get("output"), f"{where}.output", ("input_text",))[0]
    return Message(TOOL, output, tool_call_id=call_id)


def _parts(content, param: str, kinds: tuple[str, ...]) -> tuple[str, tuple[Image, ...]]:
    """A message's text (a string, or its text parts joined by newlines) and its images; the
    parts may be of the `kinds` given."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise wrong_type(param, "a string or an array of content parts", content)
    texts, images = [], []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        kind = json_object(part, where).get("type")
        if kind not in kinds:
            raise invalid(f"Content parts of type '{kind}' are not supported here; send {' or '.join(kinds)} parts.",
                          f"{where}.type", "unsupported_content")
        if kind == "input_image":
            allow_keys(part, where, ("type", "image_url", "detail"))
            images.append(detailed_image(part.get("image_url"), part.get("detail"), f"{where}.image_url",
                                         f"{where}.detail"))
            continue
        key = "refusal" if kind == "refusal" else "text"
        allow_keys(part, where, ("type", key, "annotations", "logprobs"))
        if not isinstance(part.get(key), str):
            raise wrong_type(f"{where}.{key}", "a string", part.get(key))
        texts.append(part[key])
    return "\n".join(texts), tuple(images)
