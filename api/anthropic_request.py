"""A Messages request read at Anthropic's door: every parameter checked, with a 400 naming the
one to fix, and turned into the orchestrator's chat body and job fields (as
api/openai_request.py does for Chat Completions, with the checks in api/door_request.py).

What the body may hold, and where each value goes:
- Routing: `model` ("auto", "auto:<strategy>" or a catalog model) and the orchestrator's
  extensions as extra body fields: `models` (the order to try), `strategy`, `budget_limit`,
  `conversation_id`.
- The conversation: `system` (a string or text blocks), `messages` of user and assistant
  turns, each a string or blocks: text, image (base64 or url source), tool_use (the
  assistant's), tool_result (the user's, `is_error` kept). `cache_control` is accepted on
  blocks and tools and ignored (no prompt caching across providers).
- The answer's form: `tools` (custom tools: name, description, input_schema), `tool_choice`
  (auto, any, tool, none; disable_parallel_tool_use). Routing keeps only the models that can
  honour them.
- Sampling: `max_tokens` (required), `stop_sequences`, `temperature`, `top_p`, `top_k` (a
  hint for the providers that take it), `metadata.user_id` (the end user).
- Accepted and ignored: `thinking` (no model's reasoning is returned as thinking blocks),
  `service_tier`, `cache_control`.
Anything else is refused by name; null means "not asked for".
"""

from __future__ import annotations

import json

from api.door_request import (
    EXTENSIONS,
    MAX_STOP_SEQUENCES,
    DoorChat,
    allow_keys,
    boolean,
    check_conversation,
    extensions,
    function_name,
    image,
    integer,
    invalid,
    json_object,
    number,
    routing,
    tool,
    tools,
    wrong_type,
)
from api.schemas import is_blank
from orchestrator.core.types import (
    ASSISTANT,
    AUTO_TOOLS,
    NO_TOOLS,
    REQUIRED_TOOL,
    TOOL,
    USER,
    Image,
    Message,
    Tool,
    ToolCall,
    ToolChoice,
)

IGNORED = frozenset({"thinking", "service_tier", "cache_control"})
SUPPORTED = frozenset({
    "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "metadata",
    "stream", "tools", "tool_choice",
}) | EXTENSIONS | IGNORED
CACHE = "cache_control"
TOOL_CHOICES = {"auto": AUTO_TOOLS, "any": REQUIRED_TOOL, "none": NO_TOOLS}


def read_messages(body: dict) -> DoorChat:
    for name, value in body.items():
        if name not in SUPPORTED and value is not None:
            raise invalid(f"{name}: Extra inputs are not permitted", name, "unsupported_parameter")
    offered = tools(body.get("tools"), _tool)
    user = _user_id(body.get("metadata"))
    chat = {
        "messages": _conversation(body.get("messages")),
        "system_prompt": _system(body.get("system")),
        "temperature": number(body, "temperature", 0, 1),
        "top_p": number(body, "top_p", 0, 1),
        "max_tokens": _max_tokens(body),
        "stop": _stop_sequences(body.get("stop_sequences")),
        "user": user,
        **routing(body),
        **extensions(body),
    }
    choice, parallel = _tool_choice(body.get("tool_choice"), offered)
    hints = {"user": user, "top_k": integer(body, "top_k", 0)}
    form = {"tools": offered, "tool_choice": choice, "parallel_tool_calls": parallel,
            "options": {name: value for name, value in hints.items() if value is not None}}
    return DoorChat(chat, form, boolean(body.get("stream"), "stream"))


def count_body(body: dict) -> DoorChat:
    """A count_tokens body: the parts of a Messages body that count as input (no max_tokens needed)."""
    return read_messages({"max_tokens": 1, **{name: value for name, value in body.items() if name != "stream"}})


# --- parameters -----------------------------------------------------------------------------

def _max_tokens(body: dict) -> int:
    if body.get("max_tokens") is None:
        raise invalid("max_tokens: Field required", "max_tokens", "missing_required_parameter")
    return integer(body, "max_tokens", 1)


def _stop_sequences(value) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise wrong_type("stop_sequences", "an array of non-empty strings", value)
    if len(value) > MAX_STOP_SEQUENCES:
        raise invalid(f"Invalid 'stop_sequences': at most {MAX_STOP_SEQUENCES} sequences (the fewest a "
                      "provider takes).", "stop_sequences")
    return value or None


def _user_id(metadata) -> str | None:
    if metadata is None:
        return None
    allow_keys(json_object(metadata, "metadata"), "metadata", ("user_id",))
    user = metadata.get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise invalid("Invalid 'metadata.user_id': a string of at most 256 characters.", "metadata.user_id")
    return user


def _system(value) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    if not isinstance(value, list):
        raise wrong_type("system", "a string or an array of text blocks", value)
    texts = []
    for i, block in enumerate(value):
        where = f"system.{i}"
        if json_object(block, where).get("type") != "text":
            raise invalid(f"Invalid '{where}.type': the system prompt takes text blocks only.", f"{where}.type")
        texts.append(_text(block, where))
    return "\n".join(texts) or None


# --- the answer's form ------------------------------------------------------------------------

def _tool(item, index: int) -> Tool:
    where = f"tools.{index}"
    if json_object(item, where).get("type") not in (None, "custom"):
        raise invalid(f"Invalid '{where}.type': only custom tools (name, description, input_schema) are supported, "
                      f"not Anthropic's server tools ({item['type']}).", f"{where}.type", "unsupported_value")
    allow_keys(item, where, ("type", "name", "description", "input_schema", CACHE))
    if item.get("input_schema") is None:
        raise invalid(f"{where}.input_schema: Field required", f"{where}.input_schema", "missing_required_parameter")
    return tool(function_name(item.get("name"), f"{where}.name"), item["input_schema"], item.get("description"),
                False, where, f"{where}.input_schema")


def _tool_choice(value, offered: tuple[Tool, ...]) -> tuple[ToolChoice, bool]:
    """Which tools the model may call, and whether it may call several at once."""
    if value is None:
        return ToolChoice(), True
    kind = json_object(value, "tool_choice").get("type")
    allow_keys(value, "tool_choice", ("type", "name", "disable_parallel_tool_use"))
    parallel = not boolean(value.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    if kind in TOOL_CHOICES:
        if kind == "any" and not offered:
            raise invalid("tool_choice 'any' needs `tools`.", "tool_choice")
        return ToolChoice(TOOL_CHOICES[kind]), parallel
    if kind == "tool":
        name = function_name(value.get("name"), "tool_choice.name")
        if name not in {t.name for t in offered}:
            raise invalid(f"Invalid 'tool_choice': no tool named '{name}' in `tools`.", "tool_choice.name")
        return ToolChoice.named(name), parallel
    raise invalid("Invalid 'tool_choice.type': expected auto, any, tool or none.", "tool_choice.type")


# --- the conversation -------------------------------------------------------------------------

def _conversation(messages) -> tuple[Message, ...]:
    if messages is None:
        raise invalid("messages: Field required", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array", messages)
    turns: list[Message] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        allow_keys(json_object(message, where), where, ("role", "content"))
        role = message.get("role")
        if role == USER:
            turns.extend(_user(message.get("content"), f"{where}.content"))
        elif role == ASSISTANT:
            turns.append(_assistant(message.get("content"), f"{where}.content"))
        else:
            raise invalid(f"Invalid '{where}.role': expected user or assistant.", f"{where}.role")
    if not turns or turns[-1].role not in (USER, TOOL):
        raise invalid("The last message must be the user's: an answer cannot be prefilled here.", "messages")
    check_conversation(turns)
    return tuple(turns)


def _blocks(content, where: str, readers: dict) -> dict[str, list]:
    """A message's blocks (a string is one text block), each read by the reader of its type;
    the values read, by type. A type without a reader is refused."""
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise wrong_type(where, "a string or a non-empty array of content blocks", content)
    read: dict[str, list] = {kind: [] for kind in readers}
    for j, block in enumerate(content):
        at = f"{where}.{j}"
        kind = json_object(block, at).get("type")
        if kind not in readers:
            raise _unsupported_block(kind, at, " or ".join(readers))
        read[kind].append(readers[kind](block, at))
    return read


def _user(content, where: str) -> list[Message]:
    """A user turn: its tool results (each a tool message), then its text and images."""
    read = _blocks(content, where, {"text": _text, "image": _image, "tool_result": _tool_result})
    text, images, results = "\n".join(read["text"]), tuple(read["image"]), read["tool_result"]
    if results and is_blank(text) and not images:
        return results
    if is_blank(text) and not images:
        raise invalid(f"Invalid '{where}': a user message needs text, an image or a tool result, not only white "
                      "space.", where)
    return [*results, Message(USER, text, images=images)]


def _assistant(content, where: str) -> Message:
    read = _blocks(content, where, {"text": _text, "tool_use": _tool_use})
    text, calls = "".join(read["text"]), tuple(read["tool_use"])
    if is_blank(text) and not calls:
        raise invalid(f"Invalid '{where}': an assistant message needs text or a tool_use block.", where)
    return Message(ASSISTANT, text, tool_calls=calls)


def _unsupported_block(kind, where: str, expected: str):
    return invalid(f"Invalid '{where}.type': content blocks of type '{kind}' are not supported here; send {expected} "
                   "blocks.", f"{where}.type", "unsupported_content")


def _text(block: dict, where: str) -> str:
    allow_keys(block, where, ("type", "text", CACHE))
    if not isinstance(block.get("text"), str):
        raise wrong_type(f"{where}.text", "a string", block.get("text"))
    return block["text"]


def _image(block: dict, where: str) -> Image:
    allow_keys(block, where, ("type", "source", CACHE))
    source = json_object(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        allow_keys(source, f"{where}.source", ("type", "media_type", "data"))
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise invalid(f"Invalid '{where}.source': a base64 source has a media_type and data.", f"{where}.source")
        return image(f"data:{media_type};base64,{data}", f"{where}.source")
    if kind == "url":
        allow_keys(source, f"{where}.source", ("type", "url"))
        return image(source.get("url"), f"{where}.source.url")
    raise invalid(f"Invalid '{where}.source.type': expected base64 or url.", f"{where}.source.type")


def _tool_use(block: dict, where: str) -> ToolCall:
    allow_keys(block, where, ("type", "id", "name", "input", CACHE))
    if not isinstance(block.get("id"), str) or not block["id"]:
        raise invalid(f"{where}.id: Field required", f"{where}.id", "missing_required_parameter")
    arguments = json_object(block.get("input"), f"{where}.input")
    return ToolCall(block["id"], function_name(block.get("name"), f"{where}.name"), json.dumps(arguments))


def _tool_result(block: dict, where: str) -> Message:
    allow_keys(block, where, ("type", "tool_use_id", "content", "is_error", CACHE))
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.tool_use_id: Field required", f"{where}.tool_use_id", "missing_required_parameter")
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        text = "\n".join(_result_text(part, f"{where}.content.{k}") for k, part in enumerate(content))
    else:
        raise wrong_type(f"{where}.content", "a string or an array of text blocks", content)
    return Message(TOOL, text, tool_call_id=call_id, is_error=boolean(block.get("is_error"), f"{where}.is_error"))


def _result_text(part, where: str) -> str:
    if json_object(part, where).get("type") != "text":
        raise _unsupported_block(part.get("type"), where, "text")
    return _text(part, where)
