"""The contracts between processes: the job the API enqueues and a worker executes, how a
request ends (its status, its failure), and a rate-limit slot booked for a later run.

Each travels as JSON (a task's arguments, a record in Redis) through `to_json` and
`from_json`. A job and a result carry a version: a process refuses one newer than it knows,
and reads one without a version as version 1 (what was written before the field existed).
The fields' metadata (`doc`, `UNDOCUMENTED`) is what the API's documentation says of a result:
its response schemas are derived from these classes (api/dataclass_schema.py).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import time
import uuid
from dataclasses import dataclass, field

from orchestrator.config import Settings
from orchestrator.core.decision import Decision
from orchestrator.core.types import (
    UNDOCUMENTED,
    ChatRequest,
    ChatResponse,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
    derived,
    doc,
)

JOB_VERSION = 3  # 2: rich messages (images, tool calls), tools, response_format, options; 3: economy
RESULT_VERSION = 1
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


class UnknownVersion(ValueError):
    """A contract written by a newer release than the process reading it."""

    contract = reader = ""


class UnknownJobVersion(UnknownVersion):
    contract, reader = "job", "worker"


class UnknownResultVersion(UnknownVersion):
    contract, reader = "result", "process"


def _version(data: dict, known: int, unknown: type[UnknownVersion]) -> int:
    version = data.get("version") or 1
    if version > known:
        raise unknown(f"{unknown.contract} version {version} is newer than this {unknown.reader}'s ({known})")
    return version


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
        version = _version(data, JOB_VERSION, UnknownJobVersion)
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
class Attempt:
    """One call of a request's chain: which model, how it ended and how long it took."""

    model: str
    provider: str
    error: str | None = field(metadata=doc("Error class, circuit_open, or null for the answer"))
    message: str | None
    duration: float

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> Attempt:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True, kw_only=True)
class ModelResponse(ChatResponse):
    """The model's response as a request's result carries it: with what the request cost."""

    cost: float = field(metadata=doc("USD"))

    @classmethod
    def priced(cls, response: ChatResponse, cost: float) -> ModelResponse:
        return cls(**{f.name: getattr(response, f.name) for f in dataclasses.fields(ChatResponse)}, cost=cost)

    def to_json(self) -> dict:
        answer: dict = {
            "content": self.content,
            "cost": round(self.cost, 6),
            "usage": self.usage.as_dict(),
            "model": self.model,
            "provider": self.provider,
            "finish_reason": self.finish_reason,
            "latency": round(self.latency, 4),
            "time_to_first_token": ttft if (ttft := self.time_to_first_token) is None else round(ttft, 4),
            "provider_request_id": self.provider_request_id,
            "sandbox": self.sandbox,
        }
        if self.tool_calls:
            answer["tool_calls"] = [call.to_json() for call in self.tool_calls]
        if self.logprobs is not None:
            answer["logprobs"] = self.logprobs
        return answer

    @classmethod
    def from_json(cls, data: dict) -> ModelResponse:
        return cls(
            content=data["content"],
            cost=data["cost"],
            usage=Usage.from_json(data["usage"]),
            model=data["model"],
            provider=data["provider"],
            finish_reason=data["finish_reason"],
            latency=data["latency"],
            time_to_first_token=data.get("time_to_first_token"),
            provider_request_id=data.get("provider_request_id"),
            sandbox=data["sandbox"],
            tool_calls=tuple(ToolCall.from_json(call) for call in data.get("tool_calls") or ()),
            logprobs=data.get("logprobs"),
        )


@dataclass(frozen=True)
class ChatResult:
    """A request's answer, as published with its terminal event and kept in its record."""

    request_id: str
    response: ModelResponse
    routing_decision: Decision
    attempts: tuple[Attempt, ...]
    conversation_id: str | None = None
    version: int = field(default=RESULT_VERSION, metadata=UNDOCUMENTED)

    @derived
    def model_used(self) -> str:
        return self.response.model

    def to_json(self) -> dict:
        data = {
            "request_id": self.request_id,
            "response": self.response.to_json(),
            "model_used": self.model_used,
            "routing_decision": self.routing_decision.to_json(),
            "attempts": [attempt.to_json() for attempt in self.attempts],
        }
        if self.conversation_id:
            data["conversation_id"] = self.conversation_id
        data["version"] = self.version
        return data

    @classmethod
    def from_json(cls, data: dict) -> ChatResult:
        return cls(
            request_id=data["request_id"],
            response=ModelResponse.from_json(data["response"]),
            routing_decision=Decision.from_json(data["routing_decision"]),
            attempts=tuple(Attempt.from_json(attempt) for attempt in data["attempts"]),
            conversation_id=data.get("conversation_id"),
            version=_version(data, RESULT_VERSION, UnknownResultVersion),
        )
