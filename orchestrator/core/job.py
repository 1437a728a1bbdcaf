"""The contracts between processes: the job the API enqueues and a worker executes, how a
request ends (its status, its failure), and a rate-limit slot booked for a later run.

Each travels as JSON (a task's arguments, a record in Redis) through `to_json` and
`from_json`. A job carries a version: a worker refuses one newer than it knows, and reads
one without a version as version 1 (what was enqueued before the field existed).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import time
import uuid
from dataclasses import dataclass, field

from orchestrator.config import Settings
from orchestrator.core.types import ChatRequest, ChatResponse, Message, ResponseFormat, Tool, ToolChoice

JOB_VERSION = 3  # 2: rich messages (images, tool calls), tools, response_format, options; 3: economy
ADMIN_ID = "admin"  # the owner of work submitted with the operator's admin key
RUN_STANDARD, END_FAILED = "standard", "fail"
ECONOMY_FALLBACKS = (RUN_STANDARD, END_FAILED)  # an economy item the provider batch failed: run again, or fail


_ITEM_ID = re.compile(r"(bat_[0-9a-f]{32})-\d{1,9}")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def new_batch_id() -> str:
    return f"bat_{uuid.uuid4().hex}"


def item_id(batch_id: str, index: int) -> str:
    """A batch item's request id: its batch's id and its index."""
    return f"{batch_id}-{index}"


def batch_of(request_id: str) -> str | None:
    """The batch a request id belongs to, or None for an interactive request."""
    match = _ITEM_ID.fullmatch(request_id)
    return match.group(1) if match else None


class Status(enum.StrEnum):
    """A request's life; the Lua scripts of orchestrator/store/lua write the same words."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class UnknownJobVersion(ValueError):
    """A job written by a newer release than this worker's."""


@dataclass(frozen=True)
class ChatJob:
    """One chat request as a worker executes it: this request's history then its message,
    the generation settings, how to route it, who pays, and its time budget."""

    messages: tuple[Message, ...]
    owner: str = ADMIN_ID  # the API key's user
    deadline: float | None = None  # time.time() after which no attempt starts; a batch item's starts with it
    conversation_id: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    strategy: str | None = None
    model: str | None = None  # pinned by the caller
    models: tuple[str, ...] = ()  # an explicit order of models to try
    budget_limit: float | None = None
    user: str | None = None  # the caller's end user
    first_token_timeout: float | None = None
    stop: tuple[str, ...] = ()
    top_p: float | None = None
    stream: bool = False  # publish chunks as they come
    batch: str | None = None  # the batch of an item
    priority: int | None = None  # a batch item's API priority
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    logprobs: int | None = None
    options: dict = field(default_factory=dict)  # see ChatRequest.options
    # A batch item in economy mode (through its provider's batch API, at batch prices): what it
    # does when the provider batch fails or expires it, one of ECONOMY_FALLBACKS; None: standard.
    economy: str | None = None
    version: int = JOB_VERSION

    def to_json(self) -> dict:
        data = {name: getattr(self, name) for name in _JOB_FIELDS}  # asdict() would deep-copy: 20x slower
        data["messages"] = [m.to_json() for m in self.messages]
        data["stop"], data["models"] = list(self.stop), list(self.models)
        data["tools"] = [tool.to_json() for tool in self.tools]
        data["tool_choice"] = {"mode": self.tool_choice.mode, "function": self.tool_choice.function}
        data["response_format"] = self.response_format.to_json() if self.response_format else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> ChatJob:
        version = data.get("version") or 1
        if version > JOB_VERSION:
            raise UnknownJobVersion(f"job version {version} is newer than this worker's ({JOB_VERSION})")
        values = {name: value for name, value in data.items() if name in _JOB_FIELDS and value is not None}
        values["messages"] = tuple(Message.from_json(m) for m in data["messages"])
        values["stop"] = tuple(data.get("stop") or ())
        values["models"] = tuple(data.get("models") or ())
        values["tools"] = tuple(Tool.from_json(t) for t in data.get("tools") or ())
        values["tool_choice"] = ToolChoice(**data["tool_choice"]) if data.get("tool_choice") else ToolChoice()
        if data.get("response_format"):
            values["response_format"] = ResponseFormat.from_json(data["response_format"])
        values["version"] = version
        return cls(**values)

    def chat_request(self, settings: Settings, earlier: tuple[Message, ...] = ()) -> ChatRequest:
        """The whole conversation (a stored conversation's `earlier` messages first) and the
        generation settings, with the configured defaults where the job leaves them out."""
        return ChatRequest(
            model="",
            messages=earlier + self.messages,
            system_prompt=self.system_prompt,
            temperature=settings.default_temperature if self.temperature is None else self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens or settings.default_max_tokens,
            stop=self.stop,
            options=self.options,
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
            logprobs=self.logprobs,
        )


_JOB_FIELDS = tuple(f.name for f in dataclasses.fields(ChatJob))


def job_from_body(body: dict, owner: str, settings: Settings, **extra) -> ChatJob:
    """The job of an API chat body (`message` plus optional `history` and settings; or
    `messages`, already whole, as the OpenAI door builds them). The request's time budget
    (`timeout`, else REQUEST_TIMEOUT) starts now."""
    if "messages" in body:
        messages = tuple(body["messages"])
    else:
        messages = (*(Message(m["role"], m["content"]) for m in body.get("history") or ()),
                    Message("user", body["message"]))
    return ChatJob(
        messages=messages,
        owner=owner,
        deadline=time.time() + (body.get("timeout") or settings.request_timeout),
        conversation_id=body.get("conversation_id"),
        system_prompt=body.get("system_prompt"),
        temperature=body.get("temperature"),
        max_tokens=body.get("max_tokens"),
        strategy=body.get("strategy"),
        model=body.get("model"),
        models=tuple(body.get("models") or ()),
        budget_limit=body.get("budget_limit"),
        user=body.get("user"),
        first_token_timeout=body.get("first_token_timeout"),
        stop=tuple(body.get("stop") or ()),
        top_p=body.get("top_p"),
        **extra,
    )


@dataclass(frozen=True)
class Failure:
    """How a request ended without an answer: the HTTP status the caller sees, a code, a
    message that says what to do, and details (the attempts made)."""

    status: int
    code: str
    message: str
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"status": self.status, "code": self.code, "message": self.message, "details": self.details}

    @classmethod
    def from_json(cls, data: dict) -> Failure:
        return cls(data["status"], data["code"], data["message"], data.get("details") or {})


@dataclass(frozen=True)
class RateLimitSlot:
    """A slot under a model's provider rate limit, booked for the request's next run."""

    model: str
    lane: str
    booking: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RateLimitSlot:
        return cls(data["model"], data["lane"], data["booking"])


@dataclass(frozen=True)
class ChatResult:
    """A request's answer, as published with its terminal event and kept in its record."""

    request_id: str
    response: ChatResponse
    cost: float
    routing_decision: dict
    attempts: list[dict]
    conversation_id: str | None = None

    def to_json(self) -> dict:
        response = self.response
        answer: dict = {
            "content": response.content,
            "cost": round(self.cost, 6),
            "usage": response.usage.as_dict(),
            "model": response.model,
            "provider": response.provider,
            "finish_reason": response.finish_reason,
            "latency": round(response.latency, 4),
            "time_to_first_token": ttft if (ttft := response.time_to_first_token) is None else round(ttft, 4),
            "provider_request_id": response.provider_request_id,
            "sandbox": response.sandbox,
        }
        if response.tool_calls:
            answer["tool_calls"] = [call.to_json() for call in response.tool_calls]
        if response.logprobs is not None:
            answer["logprobs"] = response.logprobs
        data = {
            "request_id": self.request_id,
            "response": answer,
            "model_used": response.model,
            "routing_decision": self.routing_decision,
            "attempts": self.attempts,
        }
        if self.conversation_id:
            data["conversation_id"] = self.conversation_id
        return data
