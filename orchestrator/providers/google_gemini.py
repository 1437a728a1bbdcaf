"""Google's Gemini API through the google-genai SDK."""

from __future__ import annotations

import time
from collections.abc import Generator

from google.genai import errors as genai_errors
from google.genai import types

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import ChatRequest, ChatResponse, StreamDelta, StreamEnd, StreamEvent, Usage
from orchestrator.providers.base import SdkProvider, alternating_turns, request_headers, system_text
from orchestrator.providers.errors import STREAM_BREAKS, classify, interrupted, retry_after

_FILTERED = {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "RECITATION"}
_ROLES = {"user": "user", "assistant": "model"}


def _contents(request: ChatRequest) -> list[types.Content]:
    return [
        types.Content(role=_ROLES[m.role], parts=[types.Part(text=m.content)])
        for m in alternating_turns(request.messages)
    ]


def _config(request: ChatRequest, timeout: float) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction=system_text(request),
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=request.max_tokens,
        stop_sequences=list(request.stop) or None,
        http_options=types.HttpOptions(timeout=int(timeout * 1000), headers=request_headers(request) or None),
    )


def _usage(metadata) -> Usage:
    if metadata is None:
        return Usage()
    thoughts = metadata.thoughts_token_count or 0
    return Usage(
        metadata.prompt_token_count or 0,
        (metadata.candidates_token_count or 0) + thoughts,
        metadata.cached_content_token_count or 0,
        thoughts,
    )


def _finish_reason(name: str | None) -> str:
    return {"STOP": "stop", "MAX_TOKENS": "length"}.get(name or "STOP", "stop")


class GeminiProvider(SdkProvider):
    def complete(self, request: ChatRequest, timeout: float) -> ChatResponse:
        started = time.monotonic()
        try:
            response = self.client.models.generate_content(
                model=request.model, contents=_contents(request), config=_config(request, timeout)
            )
        except genai_errors.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc
        reason = self._finish(response, request.model)
        return self._response(
            request, started, response.text or "", _finish_reason(reason), _usage(response.usage_metadata),
            response.response_id,
        )

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]:
        try:
            responses = self.client.models.generate_content_stream(
                model=request.model, contents=_contents(request), config=_config(request, timeout)
            )
            try:
                yield from self._events(responses, request.model)
            finally:
                responses.close()  # closing the stream early cancels the upstream call
        except genai_errors.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc

    def _events(self, responses, model: str) -> Generator[StreamEvent, None, None]:
        reason, usage, response_id = None, None, None
        for response in responses:
            response_id = response.response_id or response_id
            usage = response.usage_metadata or usage
            reason = self._finish(response, model) or reason
            if response.candidates and response.candidates[0].content and response.candidates[0].content.parts:
                text = "".join(part.text or "" for part in response.candidates[0].content.parts)
                if text:
                    yield StreamDelta(text)
        if reason is None:
            raise self._incomplete(model)
        yield StreamEnd(_finish_reason(reason), _usage(usage), response_id)

    def _finish(self, response: types.GenerateContentResponse, model: str) -> str | None:
        """The candidate's finish reason; a safety block raises content_filtered."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            raise ProviderError(ErrorKind.CONTENT_FILTERED, f"the prompt was blocked ({feedback.block_reason.value})",
                                provider=self.name, model=model)
        if not response.candidates or response.candidates[0].finish_reason is None:
            return None
        reason = response.candidates[0].finish_reason.value
        if reason in _FILTERED:
            raise ProviderError(ErrorKind.CONTENT_FILTERED, f"the answer was blocked ({reason})",
                                provider=self.name, model=model)
        return reason

    def _error(self, exc: genai_errors.APIError, model: str) -> ProviderError:
        message = str(exc.message or exc)
        headers = getattr(exc.response, "headers", None) or {}
        return ProviderError(
            classify(exc.code or 500, exc.status, message),
            message,
            provider=self.name,
            model=model,
            status=exc.code,
            retry_after=retry_after(headers),
        )
