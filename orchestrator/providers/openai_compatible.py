"""OpenAI Chat Completions through the openai SDK: OpenAI itself and any compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import Generator

import openai

from orchestrator.core.catalog import ModelCapabilities
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import (
    JSON_OBJECT,
    JSON_SCHEMA,
    TOOL,
    ChatRequest,
    ChatResponse,
    Message,
    ResponseFormat,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    ToolCall,
    Usage,
)
from orchestrator.providers.base import TOOL_CALLS, Embedded, SdkProvider, finish_reason_of, request_headers
from orchestrator.providers.errors import STREAM_BREAKS, classify, interrupted, retry_after

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter",
                   "tool_calls": TOOL_CALLS, "function_call": TOOL_CALLS}
# The hints of ChatRequest.options each kind of model takes; reasoning models refuse the sampling ones.
_HINTS = frozenset({"seed", "presence_penalty", "frequency_penalty", "logit_bias", "user", "metadata", "store",
                    "service_tier", "modalities", "prediction"})
_REASONING_HINTS = frozenset({"seed", "user", "metadata", "store", "service_tier", "reasoning_effort"})


def _content(message: Message) -> str | list[dict] | None:
    if not message.images:
        return message.content if message.content or not message.tool_calls else None
    parts: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    for image in message.images:
        url = {"url": image.url, **({"detail": image.detail} if image.detail else {})}
        parts.append({"type": "image_url", "image_url": url})
    return parts


def _openai_message(message: Message) -> dict:
    if message.role == TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    data: dict = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        data["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                              for c in message.tool_calls]
    if message.name:
        data["name"] = message.name
    return data


def to_openai_messages(request: ChatRequest) -> list[dict]:
    messages = [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
    messages.extend(_openai_message(m) for m in request.messages)
    return messages


def _tools(request: ChatRequest) -> dict:
    if not request.tools:
        return {}
    args: dict = {"tools": [{"type": "function", "function": {
        "name": t.name, "parameters": t.parameters, **({"description": t.description} if t.description else {}),
        **({"strict": True} if t.strict else {})}} for t in request.tools]}
    choice = request.tool_choice
    args["tool_choice"] = {"type": "function", "function": {"name": choice.function}} if choice.function else choice.mode
    if not request.parallel_tool_calls:
        args["parallel_tool_calls"] = False
    return args


def _response_format(form: ResponseFormat | None) -> dict:
    if form is None:
        return {}
    if form.type != JSON_SCHEMA or form.schema is None:
        return {"response_format": {"type": JSON_OBJECT}}
    schema = {"name": form.name, "schema": form.schema, **({"strict": True} if form.strict else {})}
    return {"response_format": {"type": JSON_SCHEMA, "json_schema": schema}}


def call_arguments(request: ChatRequest, model: ModelCapabilities) -> dict:
    args = {"model": request.model, "messages": to_openai_messages(request), **_tools(request),
            **_response_format(request.response_format)}
    hints = _REASONING_HINTS if model.reasoning_model else _HINTS
    args.update((name, value) for name, value in request.options.items() if name in hints)
    if model.reasoning_model:
        # Reasoning models reject temperature and count hidden reasoning in this budget.
        args["max_completion_tokens"] = request.max_tokens
    else:
        args["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            args["temperature"] = request.temperature
        if request.top_p is not None:
            args["top_p"] = request.top_p
    if request.logprobs is not None:
        args["logprobs"] = True
        if request.logprobs:
            args["top_logprobs"] = request.logprobs
    if request.stop:
        args["stop"] = list(request.stop)
    return args


def _tool_calls(message) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.id, c.function.name, c.function.arguments or "{}") for c in message.tool_calls or ()
                 if c.type == "function")


class _ToolCallFragments:
    """A streamed answer's tool calls, from their fragments: the first of a call (by index)
    carries its id and name, the others pieces of its arguments."""

    def __init__(self):
        self.calls: dict[int, dict] = {}

    def add(self, fragments: list[dict]) -> None:
        for fragment in fragments:
            call = self.calls.setdefault(fragment.get("index", 0), {"id": "", "name": "", "arguments": ""})
            function = fragment.get("function") or {}
            call["id"] = fragment.get("id") or call["id"]
            call["name"] = function.get("name") or call["name"]
            call["arguments"] += function.get("arguments") or ""

    def gathered(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(c["id"], c["name"], c["arguments"] or "{}") for _, c in sorted(self.calls.items()))


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    cached = getattr(usage.prompt_tokens_details, "cached_tokens", None) or 0
    reasoning = getattr(usage.completion_tokens_details, "reasoning_tokens", None) or 0
    return Usage(usage.prompt_tokens, usage.completion_tokens, cached, reasoning)


def _usage_of(usage: dict) -> Usage:
    """Usage from a stream chunk's plain JSON."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0, cached, reasoning)


class OpenAICompatibleProvider(SdkProvider):
    def __init__(self, name: str, client: openai.OpenAI, models: dict[str, ModelCapabilities], sandbox: bool):
        super().__init__(name, client, sandbox)
        self.models = models

    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            completion = self.client.chat.completions.create(
                **call_arguments(request, self.models[request.model]), extra_headers=request_headers(request),
                timeout=timeout,
            )
        except openai.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc
        return self.read(request, started, completion)

    def embed(self, model: str, inputs: list[str], dimensions: int | None, timeout: float,
              request_id: str | None) -> Embedded:
        """Vectors asked in the base64 encoding, which the SDK hands over as they came."""
        try:
            answer = self.client.embeddings.create(
                model=model, input=inputs, encoding_format="base64", timeout=timeout,
                extra_headers={"X-Request-ID": request_id} if request_id else None,
                **({"dimensions": dimensions} if dimensions else {}),
            )
        except openai.APIError as exc:
            raise self._error(exc, model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, model) from exc
        vectors = [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]
        if len(vectors) != len(inputs) or not all(isinstance(v, str) for v in vectors):
            raise ProviderError(ErrorKind.SERVER_ERROR, f"the provider answered {len(vectors)} vectors for "
                                f"{len(inputs)} inputs", provider=self.name, model=model)
        return Embedded(vectors, answer.usage.prompt_tokens if answer.usage else None)

    def read(self, request: ChatRequest, started: float, completion) -> ChatResponse:
        """The answer of a Chat Completion (the SDK's object), called or batched."""
        choice = completion.choices[0]
        logprobs = [entry.model_dump() for entry in choice.logprobs.content or ()] if choice.logprobs else None
        return self._response(
            request, started, choice.message.content or "", _FINISH_REASONS.get(choice.finish_reason, "stop"),
            _usage(completion.usage), getattr(completion, "_request_id", None) or completion.id, _tool_calls(choice.message), logprobs,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]:
        body = {**call_arguments(request, self.models[request.model]), "stream": True,
                "stream_options": {"include_usage": True}}
        try:
            yield from self._posted_stream("/chat/completions", body, request, timeout)
        except openai.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, response, model: str) -> Generator[StreamEvent, None, None]:
        """The SSE lines read directly: a plain JSON parse a chunk (the SDK's typed chunks
        cost ten times more), and a malformed chunk skipped rather than fatal."""
        finish_reason, usage, done, tool_calls, logprobs = None, None, False, _ToolCallFragments(), []
        for line in response.iter_lines():
            if done or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                # Nothing after it counts, but the body is read to its end, as the openai SDK
                # does: only then does the connection go back to the pool.
                done = True
                continue
            try:
                chunk = json.loads(data)
            except ValueError:
                continue  # what follows still tells whether the answer completed
            if "error" in chunk:
                raise self._in_band_error(chunk["error"], model)
            if chunk.get("usage"):
                usage = _usage_of(chunk["usage"])
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield StreamDelta(delta["content"])
                tool_calls.add(delta.get("tool_calls") or [])
                logprobs.extend((choice.get("logprobs") or {}).get("content") or ())
                finish_reason = choice.get("finish_reason") or finish_reason
        # A cut connection and [DONE] both end the lines: only a finish reason tells a
        # complete answer from a truncated one.
        if finish_reason is None:
            raise self._incomplete(model)
        calls = tool_calls.gathered()
        yield StreamEnd(finish_reason_of(_FINISH_REASONS.get(finish_reason, "stop"), calls), usage or Usage(),
                        response.headers.get("x-request-id"), calls, logprobs or None)

    def _in_band_error(self, error: dict, model: str) -> ProviderError:
        message = str(error.get("message") or "the provider reported an error mid-stream")
        status = error.get("status") or (500 if error.get("type") != "invalid_request_error" else 400)
        return ProviderError(classify(int(status), error.get("code"), message), message, provider=self.name, model=model)

    def _error(self, exc: openai.APIError, model: str) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(ErrorKind.TIMEOUT, "the provider did not answer in time", provider=self.name, model=model)
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(ErrorKind.CONNECTION, "could not reach the provider", provider=self.name, model=model)
        if not isinstance(exc, openai.APIStatusError):
            return ProviderError(ErrorKind.SERVER_ERROR, _message(exc), provider=self.name, model=model)
        code = exc.code if isinstance(exc.code, str) else None
        return ProviderError(
            classify(exc.status_code, code, _message(exc)),
            _message(exc),
            provider=self.name,
            model=model,
            status=exc.status_code,
            retry_after=retry_after(exc.response.headers),
        )


def _message(exc: openai.APIError) -> str:
    """The provider's own explanation, without request headers or keys."""
    body = exc.body if isinstance(exc.body, dict) else {}
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(body.get("message") or nested.get("message") or exc.message or type(exc).__name__)
