"""Anthropic's Messages API through the anthropic SDK."""

from __future__ import annotations

import time
from typing import Iterator

import anthropic

from orchestrator.providers.base import (
    ChatRequest,
    ChatResponse,
    SdkProvider,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    Usage,
    alternating_turns,
    request_headers,
    system_text,
)
from orchestrator.providers.errors import (
    STREAM_BREAKS,
    ErrorKind,
    ProviderError,
    classify,
    interrupted,
    parse_retry_after,
)

_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}


def _call_arguments(request: ChatRequest) -> dict:
    # The Messages API of the current SDK takes no sampling temperature or top_p: not forwarded.
    args = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in alternating_turns(request.messages)],
        "extra_headers": request_headers(request),
    }
    system = system_text(request)
    if system:
        args["system"] = system
    if request.stop:
        args["stop_sequences"] = list(request.stop)
    return args


def _usage(usage) -> Usage:
    cached = usage.cache_read_input_tokens or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(usage.input_tokens + cached + written, usage.output_tokens, cached)


class AnthropicProvider(SdkProvider):
    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            message = self.client.messages.create(**_call_arguments(request), timeout=timeout)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        self._refuse_refusal(message.stop_reason, request.model)
        return self._response(
            request, started, "".join(block.text for block in message.content if block.type == "text"),
            _FINISH_REASONS.get(message.stop_reason, "stop"), _usage(message.usage), message._request_id or message.id,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Iterator[StreamEvent]:
        try:
            with self.client.messages.create(**_call_arguments(request), stream=True, timeout=timeout) as events:
                yield from self._events(events, request.model)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, events, model: str) -> Iterator[StreamEvent]:
        input_usage, output_tokens, stop_reason, finished = None, 0, None, False
        for event in events:
            if event.type == "message_start":
                input_usage = event.message.usage
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield StreamDelta(event.delta.text)
            elif event.type == "message_delta":
                stop_reason = event.delta.stop_reason
                output_tokens = event.usage.output_tokens
            elif event.type == "message_stop":
                finished = True
        if not finished:
            raise self._incomplete(model)
        self._refuse_refusal(stop_reason, model)
        usage = _usage(input_usage) if input_usage is not None else Usage()
        yield StreamEnd(
            _FINISH_REASONS.get(stop_reason, "stop"),
            Usage(usage.input_tokens, output_tokens, usage.cached_tokens),
            events.response.headers.get("request-id"),
        )

    def _refuse_refusal(self, stop_reason: str | None, model: str) -> None:
        if stop_reason == "refusal":
            raise ProviderError(ErrorKind.CONTENT_FILTERED, "the model declined to answer (refusal)",
                                provider=self.name, model=model)

    def _error(self, exc: anthropic.APIError, model: str) -> ProviderError:
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderError(ErrorKind.TIMEOUT, "the provider did not answer in time", provider=self.name, model=model)
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderError(ErrorKind.CONNECTION, "could not reach the provider", provider=self.name, model=model)
        if not isinstance(exc, anthropic.APIStatusError):
            return ProviderError(ErrorKind.SERVER_ERROR, str(exc)[:500], provider=self.name, model=model)
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = str(error.get("message") or exc.message)[:500]
        return ProviderError(
            classify(exc.status_code, error.get("type"), message),
            message,
            provider=self.name,
            model=model,
            status=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
        )
