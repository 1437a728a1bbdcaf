"""Google's Gemini API through the google-genai SDK."""

from __future__ import annotations

import base64
import json
import mimetypes
import time
import uuid
from collections.abc import Generator
from urllib.parse import urlsplit

from google.genai import errors as genai_errors
from google.genai import types

from orchestrator.core.embedding import encode_vector
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import (
    AUTO_TOOLS,
    JSON_SCHEMA,
    NO_TOOLS,
    REQUIRED_TOOL,
    TOOL,
    ChatRequest,
    ChatResponse,
    Image,
    Message,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    ToolCall,
    Usage,
)
from orchestrator.providers.base import (
    Embedded,
    SdkProvider,
    alternating_turns,
    finish_reason_of,
    request_headers,
    system_text,
    tool_arguments,
    tool_names,
)
from orchestrator.providers.errors import STREAM_BREAKS, classify, interrupted, retry_after

_FILTERED = {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "RECITATION"}
_ROLES = {"user": "user", "assistant": "model"}


# The most texts one batchEmbedContents call takes; more are sent in several calls.
EMBED_BATCH = 100
_MODES = {AUTO_TOOLS: "AUTO", NO_TOOLS: "NONE", REQUIRED_TOOL: "ANY"}
_HINTS = ("seed", "presence_penalty", "frequency_penalty", "top_k")


def _image(image: Image) -> types.Part:
    if image.base64_data is not None:
        return types.Part(inline_data=types.Blob(mime_type=image.media_type, data=base64.b64decode(image.base64_data)))
    media_type = mimetypes.guess_type(urlsplit(image.url).path)[0] or "image/jpeg"
    return types.Part(file_data=types.FileData(file_uri=image.url, mime_type=media_type))


def _tool_response(message: Message, names: dict[str, str]) -> types.Part:
    """A tool's result as a function response: a JSON object as it is, anything else as its text;
    a failed call's as its error."""
    try:
        result = json.loads(message.content)
    except ValueError:
        result = None
    if message.is_error:
        response = {"error": result if isinstance(result, dict) else message.content}
    else:
        response = result if isinstance(result, dict) else {"result": message.content}
    name = message.name or names.get(message.tool_call_id or "", "tool")
    return types.Part(function_response=types.FunctionResponse(id=message.tool_call_id, name=name, response=response))


def _parts(message: Message, names: dict[str, str]) -> list[types.Part]:
    if message.role == TOOL:
        return [_tool_response(message, names)]
    parts = [types.Part(text=message.content)] if message.content else []
    parts.extend(_image(image) for image in message.images)
    parts.extend(types.Part(function_call=types.FunctionCall(id=c.id, name=c.name, args=tool_arguments(c)))
                 for c in message.tool_calls)
    return parts


def contents_of(request: ChatRequest) -> list[types.Content]:
    names = tool_names(request.messages)
    return [
        types.Content(role=_ROLES[turn.role], parts=[part for m in turn.messages for part in _parts(m, names)])
        for turn in alternating_turns(request.messages)
    ]


def _tools(request: ChatRequest) -> dict:
    if not request.tools:
        return {}
    declarations = [types.FunctionDeclaration(name=t.name, description=t.description,
                                              parameters_json_schema=t.parameters) for t in request.tools]
    choice = request.tool_choice
    calling = types.FunctionCallingConfig(mode=_MODES[choice.mode],  # type: ignore[arg-type]
                                          allowed_function_names=[choice.function] if choice.function else None)
    return {"tools": [types.Tool(function_declarations=declarations)],
            "tool_config": types.ToolConfig(function_calling_config=calling)}


def _response_format(request: ChatRequest) -> dict:
    """Gemini's JSON mode; not with tools offered, which it refuses: the answer is checked all the same."""
    form = request.response_format
    if form is None or request.offers_tools:
        return {}
    schema = {"response_json_schema": form.schema} if form.type == JSON_SCHEMA and form.schema else {}
    return {"response_mime_type": "application/json", **schema}


def config_of(request: ChatRequest, timeout: float) -> types.GenerateContentConfig:
    hints = {name: request.options[name] for name in _HINTS if request.options.get(name) is not None}
    return types.GenerateContentConfig(
        system_instruction=system_text(request),
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=request.max_tokens,
        stop_sequences=list(request.stop) or None,
        http_options=types.HttpOptions(timeout=int(timeout * 1000), headers=request_headers(request) or None),
        **_tools(request),
        **_response_format(request),
        **hints,
    )


def _answer(response: types.GenerateContentResponse) -> tuple[str, list[ToolCall]]:
    """A response's text and tool calls (Gemini's calls may come without an id: one is made)."""
    candidate = response.candidates[0] if response.candidates else None
    parts = (candidate.content.parts if candidate and candidate.content else None) or []
    texts = [part.text for part in parts if part.text and not part.thought]
    calls = [ToolCall(part.function_call.id or f"call_{uuid.uuid4().hex[:24]}", part.function_call.name or "",
                      json.dumps(part.function_call.args or {}))
             for part in parts if part.function_call]
    return "".join(texts), calls


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
                model=request.model, contents=contents_of(request), config=config_of(request, timeout)
            )
        except genai_errors.APIError as exc:
            raise self._error(exc, request.model) from exc
        except STREAM_BREAKS as exc:
            raise interrupted(exc, self.name, request.model) from exc
        return self.read(request, started, response)

    def embed(self, model: str, inputs: list[str], dimensions: int | None, timeout: float,
              request_id: str | None) -> Embedded:
        """Vectors by batchEmbedContents, EMBED_BATCH texts a call. Gemini's API counts no
        tokens for them: the caller estimates them."""
        config = types.EmbedContentConfig(
            output_dimensionality=dimensions,
            http_options=types.HttpOptions(timeout=int(timeout * 1000),
                                           headers={"X-Request-ID": request_id} if request_id else None))
        vectors: list[str] = []
        for start in range(0, len(inputs), EMBED_BATCH):
            part = inputs[start:start + EMBED_BATCH]
            try:
                answer = self.client.models.embed_content(model=model, contents=part, config=config)
            except genai_errors.APIError as exc:
                raise self._error(exc, model) from exc
            except STREAM_BREAKS as exc:
                raise interrupted(exc, self.name, model) from exc
            embeddings = answer.embeddings or []
            if len(embeddings) != len(part):
                raise ProviderError(ErrorKind.SERVER_ERROR, f"the provider answered {len(embeddings)} vectors for "
                                    f"{len(part)} inputs", provider=self.name, model=model)
            vectors.extend(encode_vector(e.values or []) for e in embeddings)
        return Embedded(vectors, None)

    def read(self, request: ChatRequest, started: float, response: types.GenerateContentResponse) -> ChatResponse:
        """The answer of a GenerateContentResponse, called or batched; a blocked one raises."""
        reason = self._finish(response, request.model)
        text, calls = _answer(response)
        return self._response(
            request, started, text, _finish_reason(reason), _usage(response.usage_metadata),
            response.response_id, tuple(calls),
        )

    def stream(self, request: ChatRequest, timeout: float) -> Generator[StreamEvent, None, None]:
        try:
            responses = self.client.models.generate_content_stream(
                model=request.model, contents=contents_of(request), config=config_of(request, timeout)
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
        reason, usage, response_id, calls = None, None, None, []
        for response in responses:
            response_id = response.response_id or response_id
            usage = response.usage_metadata or usage
            reason = self._finish(response, model) or reason
            text, called = _answer(response)
            calls.extend(called)
            if text:
                yield StreamDelta(text)
        if reason is None:
            raise self._incomplete(model)
        yield StreamEnd(finish_reason_of(_finish_reason(reason), tuple(calls)), _usage(usage), response_id, tuple(calls))

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
