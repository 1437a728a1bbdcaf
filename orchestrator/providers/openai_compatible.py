"""OpenAI Chat Completions through the openai SDK: OpenAI itself and any compatible server."""

from __future__ import annotations

import time
from typing import Iterator

import openai

from orchestrator.catalog import ModelCapabilities
from orchestrator.providers.base import (
    ChatRequest,
    ChatResponse,
    SdkProvider,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    Usage,
)
from orchestrator.providers.errors import (
    STREAM_BREAKS,
    ErrorKind,
    ProviderError,
    classify,
    interrupted,
    parse_retry_after,
)

_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "stop"}


def to_openai_messages(request: ChatRequest) -> list[dict]:
    messages = [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []
    messages.extend({"role": m.role, "content": m.content} for m in request.messages)
    return messages


def _call_arguments(request: ChatRequest, model: ModelCapabilities) -> dict:
    args = {"model": request.model, "messages": to_openai_messages(request)}
    if model.reasoning_model:
        # Reasoning models reject temperature and count hidden reasoning in this budget.
        args["max_completion_tokens"] = request.max_tokens
        if "reasoning_effort" in request.options:
            args["reasoning_effort"] = request.options["reasoning_effort"]
    else:
        args["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            args["temperature"] = request.temperature
        if request.top_p is not None:
            args["top_p"] = request.top_p
    if request.stop:
        args["stop"] = list(request.stop)
    return args


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    cached = getattr(usage.prompt_tokens_details, "cached_tokens", None) or 0
    reasoning = getattr(usage.completion_tokens_details, "reasoning_tokens", None) or 0
    return Usage(usage.prompt_tokens, usage.completion_tokens, cached, reasoning)


class OpenAICompatibleProvider(SdkProvider):
    def __init__(self, name: str, client: openai.OpenAI, models: dict[str, ModelCapabilities], sandbox: bool):
        super().__init__(name, client, sandbox)
        self.models = models

    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            completion = self.client.chat.completions.create(
                **_call_arguments(request, self.models[request.model]), timeout=timeout
            )
        except openai.APIError as exc:
            raise self._error(exc, request.model) from exc
        choice = completion.choices[0]
        return self._response(
            request, started, choice.message.content or "", _FINISH_REASONS.get(choice.finish_reason, "stop"),
            _usage(completion.usage), completion._request_id or completion.id,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Iterator[StreamEvent]:
        arguments = _call_arguments(request, self.models[request.model])
        try:
            with self.client.chat.completions.create(
                **arguments, stream=True, stream_options={"include_usage": True}, timeout=timeout
            ) as chunks:  # closing the stream early cancels the upstream call
                yield from self._events(chunks, request.model)
        except openai.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, chunks, model: str) -> Iterator[StreamEvent]:
        finish_reason, usage = None, None
        for chunk in chunks:
            if chunk.usage is not None:
                usage = _usage(chunk.usage)
            for choice in chunk.choices:
                if choice.delta.content:
                    yield StreamDelta(choice.delta.content)
                finish_reason = choice.finish_reason or finish_reason
        # The SDK ends quietly on [DONE] and on a cut connection alike: only a finish
        # reason tells a complete answer from a truncated one.
        if finish_reason is None:
            raise self._incomplete(model)
        yield StreamEnd(_FINISH_REASONS.get(finish_reason, "stop"), usage or Usage(), chunks.response.headers.get("x-request-id"))

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
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
        )


def _message(exc: openai.APIError) -> str:
    """The provider's own explanation, without request headers or keys."""
    body = exc.body if isinstance(exc.body, dict) else {}
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(body.get("message") or nested.get("message") or exc.message or type(exc).__name__)[:500]
