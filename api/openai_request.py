"""A Chat Completions request read at the /v1 door: every documented parameter checked, with
a 400 in OpenAI's words naming the one to fix, and turned into the orchestrator's chat body
and job fields.

What the body may hold, and where each value goes:
- Routing: `model` ("auto", "auto:<strategy>" or a catalog model), and the extensions a
  client sends through `extra_body`: `models` (the order to try), `strategy`,
  `budget_limit`, `conversation_id`.
- The conversation: system and developer messages (the system prompt), user messages with
  text and image parts, assistant messages with text and `tool_calls`, tool messages.
- The answer's form: `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`,
  `logprobs` / `top_logprobs`. Routing keeps only the models that can honour them.
- Sampling: temperature, top_p, max_tokens / max_completion_tokens, stop.
- Hints passed to the providers that take them, ignored by the others (README, "OpenAI
  compatibility"): seed, penalties, logit_bias, user, metadata, store, service_tier,
  reasoning_effort, modalities (text), prediction.
Anything else is refused by name; null, and a few parameters' neutral values, mean "not
asked for".
"""

from __future__ import annotations

from dataclasses import dataclass

from api.door_request import (
    EXTENSIONS,
    MAX_STOP_SEQUENCES,
    DoorChat,
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
    check_turns,
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
    Tool,
    ToolCall,
)

FORM = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs", "top_logprobs"})
HINTS = frozenset({"seed", "presence_penalty", "frequency_penalty", "logit_bias", "user", "metadata", "store",
                   "service_tier", "reasoning_effort", "modalities", "prediction"})
SUPPORTED = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "n", "stream",
    "stream_options",
}) | FORM | HINTS | EXTENSIONS
# Parameters we do not support but whose value here asks for nothing (as if left out).
NEUTRAL = {"functions": []}
MAX_CHOICES = 8


@dataclass
class OpenAIChat(DoorChat):
    """DoorChat, with how a stream ends and how many answers are wanted."""

    include_usage: bool = False  # the stream ends with a usage chunk
    n: int = 1  # answers wanted, each a request of its own (fan-out)


def read_chat(body: dict) -> OpenAIChat:
    _refuse_unsupported(body)
    offered = tools(body.get("tools"), _tool)
    messages, system_prompt = _conversation(body.get("messages"))
    chat = {
        "messages": messages,
        "system_prompt": system_prompt,
        "temperature": number(body, "temperature", 0, 2),
        "top_p": number(body, "top_p", 0, 1),
        "max_tokens": _max_tokens(body),
        "stop": _stop(body),
        "user": string(body, "user", 256),
        **routing(body),
        **extensions(body),
    }
    form = {
        "tools": offered,
        "tool_choice": tool_choice(body.get("tool_choice"), offered, ("function", "name"),
                                   '{"type": "function", "function": {"name": ...}}'),
        "parallel_tool_calls": boolean(body.get("parallel_tool_calls"), "parallel_tool_calls", default=True),
        "response_format": answer_format(body.get("response_format"), "response_format", "json_schema"),
        "logprobs": _logprobs(body),
        "options": _hints(body),
    }
    stream = boolean(body.get("stream"), "stream")
    return OpenAIChat(chat, form, stream, _stream_options(body, stream), _choices(body, stream))


def _choices(body: dict, stream: bool) -> int:
    n = integer(body, "n", 1, MAX_CHOICES) or 1
    if n > 1 and stream:
        raise invalid("n > 1 is not supported with stream: ask for one streamed answer per request.", "n",
                      "unsupported_value")
    if n > 1 and body.get("conversation_id") is not None:
        raise invalid("n > 1 cannot continue a conversation: which answer would it keep?", "n", "unsupported_value")
    return n


# --- parameters ---------------------------------------------------------------------------

def _asks_nothing(name: str, value) -> bool:
    return value is None or (name in NEUTRAL and value == NEUTRAL[name])


def _refuse_unsupported(body: dict) -> None:
    for name, value in body.items():
        if name in SUPPORTED or _asks_nothing(name, value):
            continue
        hint = " Use `tools` instead." if name in ("functions", "function_call") else ""
        raise invalid(f"Unsupported parameter: '{name}' is not supported by this endpoint.{hint}", name,
                      "unsupported_parameter")


def _max_tokens(body: dict) -> int | None:
    legacy, current = integer(body, "max_tokens", 1), integer(body, "max_completion_tokens", 1)
    if legacy is not None and current is not None and legacy != current:
        raise invalid("Give max_tokens or max_completion_tokens, not both with different values.",
                      "max_completion_tokens")
    return current if current is not None else legacy


def _stop(body: dict) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise wrong_type("stop", "a string or an array of strings", stop)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise invalid(f"Invalid 'stop': at most {MAX_STOP_SEQUENCES} sequences.", "stop")
    if not all(sequences):
        raise invalid("Invalid 'stop': a stop sequence cannot be empty.", "stop")
    return sequences or None


def _stream_options(body: dict, stream: bool) -> bool:
    """Whether the stream ends with a usage chunk."""
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise invalid("stream_options is only allowed when stream is true.", "stream_options")
    for key, value in json_object(options, "stream_options").items():
        if key != "include_usage" and value is not None:
            raise invalid(f"Unsupported parameter: 'stream_options.{key}' is not supported by this endpoint.",
                          f"stream_options.{key}", "unsupported_parameter")
    return boolean(options.get("include_usage"), "stream_options.include_usage")


def _hints(body: dict) -> dict:
    """The provider hints, checked as OpenAI checks them."""
    hints = {name: body[name] for name in HINTS if body.get(name) is not None}
    for name in ("presence_penalty", "frequency_penalty"):
        number(body, name, -2, 2)
    integer(body, "seed", -(2**63))
    boolean(body.get("store"), "store")
    for name in ("metadata", "logit_bias", "prediction"):
        if name in hints:
            json_object(hints[name], name)
    for token, bias in (hints.get("logit_bias") or {}).items():
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise invalid(f"Invalid 'logit_bias.{token}': a number between -100 and 100.", "logit_bias")
    reasoning_effort(hints.get("reasoning_effort"), "reasoning_effort")
    modalities = hints.pop("modalities", ["text"])
    if modalities != ["text"]:
        raise invalid("Only the text modality is supported: send modalities [\"text\"] or leave it out.",
                      "modalities", "unsupported_value")
    return hints


def _logprobs(body: dict) -> int | None:
    """How many alternatives each answer token's log probability comes with; None: no log probabilities."""
    top = integer(body, "top_logprobs", 0, 20)
    if not boolean(body.get("logprobs"), "logprobs"):
        if top:
            raise invalid("top_logprobs needs logprobs set to true.", "top_logprobs")
        return None
    return top or 0


# --- the answer's form ------------------------------------------------------------------------

def _tool(item, index: int) -> Tool:
    where = f"tools[{index}]"
    if json_object(item, where).get("type") != "function":
        raise invalid(f"Invalid '{where}.type': expected 'function' (the only kind of tool supported).",
                      f"{where}.type")
    return function_tool(json_object(item.get("function"), f"{where}.function"), f"{where}.function")


# --- the conversation ---------------------------------------------------------------------------

def _conversation(messages) -> tuple[tuple[Message, ...], str | None]:
    """The messages, oldest first, and the system prompt (system and developer messages, joined)."""
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array", messages)
    system, turns = [], []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = json_object(message, where).get("role")
        if role in SYSTEM_ROLES:
            text = _text(message.get("content"), f"{where}.content")
            if not is_blank(text):
                system.append(text)
        elif role == USER:
            turns.append(_user(message, where))
        elif role == ASSISTANT:
            turns.append(_assistant(message, where))
        elif role == TOOL:
            turns.append(_tool_result(message, where))
        elif role == "function":
            raise invalid("Messages with role 'function' are not supported: use tool messages.", f"{where}.role",
                          "unsupported_value")
        else:
            raise invalid(f"Invalid '{where}.role': expected one of system, developer, user, assistant, tool.",
                          f"{where}.role")
    check_turns(turns, "messages")
    return tuple(turns), "\n".join(system) or None


def _name(message: dict, where: str) -> str | None:
    name = message.get("name")
    return None if name is None else function_name(name, f"{where}.name")


def _user(message: dict, where: str) -> Message:
    allow_keys(message, where, ("role", "content", "name"))
    text, images = _parts(message.get("content"), f"{where}.content", images_allowed=True)
    if is_blank(text) and not images:
        raise invalid(f"Invalid '{where}.content': it must contain text or an image, not only white space.",
                      f"{where}.content")
    return Message(USER, text, images=images, name=_name(message, where))


def _assistant(message: dict, where: str) -> Message:
    allow_keys(message, where, ("role", "content", "name", "tool_calls", "refusal"))
    calls = _tool_calls(message.get("tool_calls"), f"{where}.tool_calls")
    content = message.get("content")
    text = "" if content is None and calls else _text(content, f"{where}.content")
    if is_blank(text) and not calls:
        raise invalid(f"Invalid '{where}.content': it must contain text, not only white space.", f"{where}.content")
    return Message(ASSISTANT, text, tool_calls=calls, name=_name(message, where))


def _tool_result(message: dict, where: str) -> Message:
    allow_keys(message, where, ("role", "content", "tool_call_id", "name"))
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"Missing required parameter: '{where}.tool_call_id'.", f"{where}.tool_call_id",
                      "missing_required_parameter")
    return Message(TOOL, _text(message.get("content"), f"{where}.content"), tool_call_id=call_id)


def _tool_calls(value, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise wrong_type(where, "an array", value)
    calls = []
    for j, call in enumerate(value):
        at = f"{where}[{j}]"
        if json_object(call, at).get("type", "function") != "function" or not isinstance(call.get("id"), str):
            raise invalid(f"Invalid '{at}': a tool call has an `id` and type 'function'.", at)
        function = json_object(call.get("function"), f"{at}.function")
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not is_json_object(arguments):
            raise invalid(f"Invalid '{at}.function.arguments': a JSON object, as a string.", f"{at}.function.arguments")
        calls.append(ToolCall(call["id"], function_name(function.get("name"), f"{at}.function.name"), arguments))
    return tuple(calls)


def _text(content, param: str) -> str:
    """A message's text: a string, or its text parts joined by newlines."""
    return _parts(content, param, images_allowed=False)[0]


def _parts(content, param: str, images_allowed: bool) -> tuple[str, tuple[Image, ...]]:
    """A message's text (a string, or its text parts joined by newlines) and its images."""
    if isinstance(content, str):
        return content, ()
    if content is None:
        raise invalid(f"Invalid '{param}': a message needs content.", param)
    if not isinstance(content, list):
        raise wrong_type(param, "a string or an array of content parts", content)
    if not content:
        raise invalid(f"Invalid '{param}': an empty array of content parts.", param)
    texts, images = [], []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        kind = json_object(part, where).get("type")
        if kind == "text":
            allow_keys(part, where, ("type", "text"))
            if not isinstance(part.get("text"), str):
                raise wrong_type(f"{where}.text", "a string", part.get("text"))
            texts.append(part["text"])
        elif kind == "image_url" and images_allowed:
            allow_keys(part, where, ("type", "image_url"))
            spec = json_object(part.get("image_url"), f"{where}.image_url")
            images.append(detailed_image(spec.get("url"), spec.get("detail"), f"{where}.image_url.url",
                                         f"{where}.image_url.detail"))
        elif kind in ("image_url", "input_audio", "file", "refusal"):
            raise invalid(f"Content parts of type '{kind}' are not supported in this message; send "
                          f"{'text or image_url' if images_allowed else 'text'} parts.", f"{where}.type",
                          "unsupported_content")
        else:
            raise invalid(f"Invalid '{where}.type': expected 'text'{' or image_url' if images_allowed else ''}.",
                          f"{where}.type")
    return "\n".join(texts), tuple(images)
