"""How the adapters read their SDKs' failures into the taxonomy (orchestrator/core/errors.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx2

from orchestrator.core.errors import ErrorKind, ProviderError

_CONTEXT_LENGTH = re.compile(
    r"context_length_exceeded|maximum context length|prompt is too long|input token count .* exceeds"
    r"|exceeds the maximum number of tokens|too many tokens",
    re.IGNORECASE,
)
_CONTENT_FILTER = re.compile(r"content_filter|content management policy|usage polic|safety|content_policy", re.IGNORECASE)


def classify(status: int, code: str | None, message: str) -> ErrorKind:
    """The taxonomy entry for an HTTP error answer from any provider."""
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 408:
        return ErrorKind.TIMEOUT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    text = f"{code or ''} {message}"
    if _CONTEXT_LENGTH.search(text):
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if _CONTENT_FILTER.search(text):
        return ErrorKind.CONTENT_FILTERED
    return ErrorKind.BAD_REQUEST


def interrupted(exc: Exception, provider: str, model: str) -> ProviderError:
    """A call broken on our side of the wire: a timeout, a dropped connection or an unreadable
    chunk, or a request that could not even be encoded (the request's fault, not the model's)."""
    if isinstance(exc, UnicodeError):
        return ProviderError(ErrorKind.BAD_REQUEST, "the request holds text that cannot be encoded as UTF-8 "
                             "(an unpaired surrogate?)", provider=provider, model=model)
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(ErrorKind.TIMEOUT, "the provider stopped sending before the answer was complete",
                             provider=provider, model=model)
    if isinstance(exc, httpx2.HTTPError):
        return ProviderError(ErrorKind.CONNECTION, "the connection broke before the answer was complete",
                             provider=provider, model=model)
    return ProviderError(ErrorKind.SERVER_ERROR, f"the provider sent an unreadable stream ({type(exc).__name__})",
                         provider=provider, model=model)


STREAM_BREAKS = (httpx2.HTTPError, ValueError)  # what the SDKs let escape from a broken call


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the provider asks us to wait: `retry-after-ms` (OpenAI's), else `retry-after` in
    seconds or as an HTTP date; None when absent or unreadable. Never negative."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
