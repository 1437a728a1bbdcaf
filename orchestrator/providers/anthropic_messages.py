"""Anthropic's Messages API through the anthropic SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Generator

import anthropic

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import ChatRequest, ChatResponse, StreamDelta, StreamEnd, StreamEvent, Usage
from orchestrator.providers.base import SdkProvider, alternating_turns, request_headers, system_text
from orchestrator.providers.errors import STREAM_BREAKS, classify, interrupted, retry_after

_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}
# The HTTP status each error type stands for (docs.anthropic.com, "Errors"): an error event
# in a stream that had begun comes with a 200.
_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}


def _call_arguments(request: ChatRequest) -> dict:
    # The Messages API of the current SDK takes no sampling temperature or top_p: not forwarded.
    args = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in alternating_turns(request.messages)],
    }
    system = system_text(request)
    if system:
        args["system"] = system
    if request.stop:
        args["stop_sequences"] = list(request.stop)
    return args


def _usage(usage: dict) -> Usage:
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Usage((usage.get("input_tokens") or 0) + cached + written, usage.get("output_tokens") or 0, cached)


class AnthropicProvider(SdkProvider):
    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            message = self.client.messages.create(**_call_arguments(request), extra_headers=request_headers(request),
                                                  timeout=timeout)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc
        self._refuse_refusal(message.stop_reason, request.model)
        return self._response(
            request, started, "".join(block.text for block in message.content if block.type == "text"),
            _FINISH_REASONS.get(message.stop_reason, "stop"), _usage(message.usage.model_dump()),
            message._request_id or message.id,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]:
        try:
            yield from self._posted_stream("/v1/messages", {**_call_arguments(request), "stream": True}, request, timeout)
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, response, model: str) -> Generator[StreamEvent, None, None]:
        """The events of the stream, from their `data` lines (each names its own type); a
        malformed one is skipped: only message_stop tells a complete answer from a cut one."""
        input_usage, output_tokens, stop_reason, finished = {}, 0, None, False
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            kind = event.get("type")
            if kind == "message_start":
                input_usage = (event.get("message") or {}).get("usage") or {}
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield StreamDelta(delta["text"])
            elif kind == "message_delta":
                stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                output_tokens = (event.get("usage") or {}).get("output_tokens") or output_tokens
            elif kind == "message_stop":
                finished = True
            elif kind == "error":
                raise self._in_band_error(event.get("error") or {}, model)
        if not finished:
            raise self._incomplete(model)
        self._refuse_refusal(stop_reason, model)
        usage = _usage(input_usage)
        yield StreamEnd(_FINISH_REASONS.get(stop_reason, "stop"), Usage(usage.input_tokens, output_tokens,
                                                                       usage.cached_tokens),
                        response.headers.get("request-id"))

    def _in_band_error(self, error: dict, model: str) -> ProviderError:
        """An error event after the stream began (an overload, mostly), as the status its type stands for."""
        status = _ERROR_STATUS.get(error.get("type"), 500)
        message = str(error.get("message") or "the provider reported an error mid-stream")
        return ProviderError(classify(status, error.get("type"), message), message, provider=self.name, model=model,
                             status=status)

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
            return ProviderError(ErrorKind.SERVER_ERROR, str(exc), provider=self.name, model=model)
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = str(error.get("message") or exc.message)
        return ProviderError(
            classify(exc.status_code, error.get("type"), message),
            message,
            provider=self.name,
            model=model,
            status=exc.status_code,
            retry_after=retry_after(exc.response.headers),
        )
