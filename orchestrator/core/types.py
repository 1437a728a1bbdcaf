"""The normalized shapes every layer speaks: a chat request, its messages, tools and output
format, usage, a response and the events of a stream.

Messages, tools and tool calls travel between processes (a job, a stored conversation) as
JSON through `to_json` and `from_json`; a field left at its default is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

USER, ASSISTANT, SYSTEM, TOOL = "user", "assistant", "system", "tool"


def doc(description: str) -> dict:
    """A field's metadata: what the API's documentation says of it (api/dataclass_schema.py)."""
    return {"description": description}


UNDOCUMENTED = MappingProxyType({"documented": False})  # a field the API's documentation leaves out
LEFT_OUT_WHEN_EMPTY = MappingProxyType({"required": False})  # a field the JSON carries only when it has items


class derived(property):
    """A property that a shape's JSON carries beside its fields, and its documentation with them."""


@dataclass(frozen=True)
class Image:
    """An image in a user message: an https URL or a data: URI (base64), and OpenAI's detail hint."""

    url: str
    detail: str | None = None

    @property
    def media_type(self) -> str | None:
        """The type a data: URI declares ("image/png"); None for a URL."""
        if not self.url.startswith("data:"):
            return None
        return self.url[5:].split(";", 1)[0].split(",", 1)[0] or None

    @property
    def base64_data(self) -> str | None:
        """A data: URI's base64 payload; None for a URL."""
        head, _, data = self.url.partition(",")
        return data if self.url.startswith("data:") and head.endswith(";base64") else None


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: its id, the function's name, and the arguments as the JSON
    text the model wrote."""

    id: str
    name: str
    arguments: str

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: dict) -> ToolCall:
        return cls(data["id"], data["name"], data["arguments"])


@dataclass(frozen=True)
class Message:
    role: str  # system, user, assistant or tool
    content: str
    images: tuple[Image, ...] = ()  # a user message's images, after its text
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message's calls
    tool_call_id: str | None = None  # a tool message: the call it answers
    name: str | None = None  # a participant's name; a tool message: the tool's
    is_error: bool = False  # a tool message: the call failed, and the content says how

    def to_json(self) -> dict:
        data: dict = {"role": self.role, "content": self.content}
        if self.images:
            data["images"] = [{"url": i.url, "detail": i.detail} for i in self.images]
        if self.tool_calls:
            data["tool_calls"] = [call.to_json() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.is_error:
            data["is_error"] = True
        return data

    @classmethod
    def from_json(cls, data: dict) -> Message:
        return cls(
            data["role"], data["content"],
            images=tuple(Image(i["url"], i.get("detail")) for i in data.get("images") or ()),
            tool_calls=tuple(ToolCall.from_json(c) for c in data.get("tool_calls") or ()),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            is_error=bool(data.get("is_error")),
        )


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and its parameters' JSON Schema.
    `strict` asks that the arguments match the schema, which the gateway then checks."""

    name: str
    parameters: dict
    description: str | None = None
    strict: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "parameters": self.parameters, "description": self.description,
                "strict": self.strict}

    @classmethod
    def from_json(cls, data: dict) -> Tool:
        return cls(data["name"], data["parameters"], data.get("description"), bool(data.get("strict")))


AUTO_TOOLS, NO_TOOLS, REQUIRED_TOOL = "auto", "none", "required"


@dataclass(frozen=True)
class ToolChoice:
    """Whether the model may call tools: auto, none or required; with `function`, it must call that one."""

    mode: str = AUTO_TOOLS
    function: str | None = None

    @classmethod
    def named(cls, function: str) -> ToolChoice:
        return cls(REQUIRED_TOOL, function)


JSON_OBJECT, JSON_SCHEMA = "json_object", "json_schema"


@dataclass(frozen=True)
class ResponseFormat:
    """A structured answer: any JSON object (`json_object`) or one that matches `schema`."""

    type: str
    schema: dict | None = None
    name: str = "response"
    strict: bool = False

    def to_json(self) -> dict:
        return {"type": self.type, "schema": self.schema, "name": self.name, "strict": self.strict}

    @classmethod
    def from_json(cls, data: dict) -> ResponseFormat:
        return cls(data["type"], data.get("schema"), data.get("name") or "response", bool(data.get("strict")))


@dataclass(frozen=True)
class ChatRequest:
    """A provider-neutral chat call: the whole conversation and the generation settings."""

    model: str
    messages: tuple[Message, ...]
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)  # OpenAI-named hints an adapter passes on where it can (seed, ...)
    request_id: str | None = None  # the gateway's X-Request-ID, sent on to the provider in the same header
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    logprobs: int | None = None  # the answer's token log probabilities, with this many alternatives each

    @property
    def offers_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice.mode != NO_TOOLS


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @derived
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cached_tokens + other.cached_tokens, self.reasoning_tokens + other.reasoning_tokens)

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_json(cls, data: dict) -> Usage:
        return cls(data["input_tokens"], data["output_tokens"], data.get("cached_tokens", 0),
                   data.get("reasoning_tokens", 0))


@dataclass(frozen=True)
class ChatResponse:
    content: str
    finish_reason: str
    usage: Usage
    model: str
    provider: str
    provider_request_id: str | None
    latency: float = field(metadata=doc("Seconds"))
    time_to_first_token: float | None = field(default=None, metadata=doc("Seconds"))
    sandbox: bool = field(default=False, metadata=doc("Answered by the local sandbox upstream"))
    # Only the /v1 doors ask for tool calls and log probabilities, and they document their own shapes.
    tool_calls: tuple[ToolCall, ...] = field(default=(), metadata=UNDOCUMENTED)
    # OpenAI's choices[].logprobs.content, where the provider gives them
    logprobs: list | None = field(default=None, metadata=UNDOCUMENTED)


@dataclass(frozen=True)
class StreamDelta:
    """A piece of the answer's text, in order."""

    text: str


@dataclass(frozen=True)
class StreamEnd:
    """The stream finished properly: why, what it used, the provider's id for it, and the
    tool calls the answer made and its log probabilities (adapters gather their pieces)."""

    finish_reason: str
    usage: Usage
    provider_request_id: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: list | None = None


StreamEvent = StreamDelta | StreamEnd
