"""OpenAI Chat Completions through the openai SDK: OpenAI itself and any compatible server."""

from __future__ import annotations

import time

import openai

from orchestrator.catalog import ModelCapabilities
from orchestrator.providers.base import ChatRequest, ChatResponse, Usage
from orchestrator.providers.errors import ErrorKind, ProviderError, parse_retry_after


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
    if request.stop:
        args["stop"] = list(request.stop)
    return args


def _usage(completion) -> Usage:
    usage = completion.usage
    if usage is None:
        return Usage()
    cached = getattr(usage.prompt_tokens_details, "cached_tokens", None) or 0
    reasoning = getattr(usage.completion_tokens_details, "reasoning_tokens", None) or 0
    return Usage(usage.prompt_tokens, usage.completion_tokens, cached, reasoning)


class OpenAICompatibleProvider:
    def __init__(self, name: str, client: openai.OpenAI, models: dict[str, ModelCapabilities], sandbox: bool):
        self.name = name
        self.client = client
        self.models = models
        self.sandbox = sandbox

    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            completion = self.client.chat.completions.create(
                **_call_arguments(request, self.models[request.model]), timeout=timeout
            )
        except openai.APIError as exc:
            raise self._classify(exc, request.model) from exc
        choice = completion.choices[0]
        latency = time.monotonic() - started
        return ChatResponse(
            content=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            usage=_usage(completion),
            model=request.model,
            provider=self.name,
            provider_request_id=completion._request_id or completion.id,
            latency=latency,
            time_to_first_token=latency,
            sandbox=self.sandbox,
        )

    def _classify(self, exc: openai.APIError, model: str) -> ProviderError:
        kind, status, retry_after = _kind_of(exc)
        return ProviderError(
            kind, _safe_message(exc), provider=self.name, model=model, status=status, retry_after=retry_after
        )


def _kind_of(exc: openai.APIError) -> tuple[ErrorKind, int | None, float | None]:
    if isinstance(exc, openai.APITimeoutError):
        return ErrorKind.TIMEOUT, None, None
    if isinstance(exc, openai.APIConnectionError):
        return ErrorKind.CONNECTION, None, None
    if not isinstance(exc, openai.APIStatusError):
        return ErrorKind.SERVER_ERROR, None, None
    status = exc.status_code
    code = (exc.code or "") if isinstance(exc.code, str) else ""
    if status == 429:
        return ErrorKind.RATE_LIMITED, status, parse_retry_after(exc.response.headers.get("retry-after"))
    if status in (401, 403):
        return ErrorKind.AUTH, status, None
    if status == 404:
        return ErrorKind.NOT_FOUND, status, None
    if code == "context_length_exceeded":
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED, status, None
    if code == "content_filter" or code == "content_policy_violation":
        return ErrorKind.CONTENT_FILTERED, status, None
    if status in (503, 529):
        return ErrorKind.OVERLOADED, status, parse_retry_after(exc.response.headers.get("retry-after"))
    if status >= 500:
        return ErrorKind.SERVER_ERROR, status, None
    return ErrorKind.BAD_REQUEST, status, None


def _safe_message(exc: openai.APIError) -> str:
    """The provider's own explanation, without echoing request headers or keys."""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(message or exc.message or type(exc).__name__)[:500]
