"""One error taxonomy for every provider. The rest of the system reads only this.

Each adapter maps its SDK's exceptions to a ProviderError whose `kind` says what went
wrong and, through its policy, whether the same model may be tried again, another model
may be tried, or neither.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import httpx2


@dataclass(frozen=True)
class Policy:
    retry_same: bool  # the same model may answer if asked again
    fallback: bool  # another model may answer
    http_status: int  # what the caller sees when this is the last error


class ErrorKind(str, enum.Enum):
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    CONTENT_FILTERED = "content_filtered"
    NOT_FOUND = "not_found"

    @property
    def policy(self) -> Policy:
        return _POLICIES[self]


_POLICIES = {
    ErrorKind.RATE_LIMITED: Policy(retry_same=True, fallback=True, http_status=503),
    ErrorKind.OVERLOADED: Policy(retry_same=True, fallback=True, http_status=503),
    ErrorKind.SERVER_ERROR: Policy(retry_same=True, fallback=True, http_status=502),
    ErrorKind.TIMEOUT: Policy(retry_same=False, fallback=True, http_status=504),
    ErrorKind.CONNECTION: Policy(retry_same=True, fallback=True, http_status=502),
    ErrorKind.AUTH: Policy(retry_same=False, fallback=True, http_status=502),
    ErrorKind.BAD_REQUEST: Policy(retry_same=False, fallback=False, http_status=400),
    ErrorKind.CONTEXT_LENGTH_EXCEEDED: Policy(retry_same=False, fallback=True, http_status=400),
    ErrorKind.CONTENT_FILTERED: Policy(retry_same=False, fallback=False, http_status=422),
    ErrorKind.NOT_FOUND: Policy(retry_same=False, fallback=True, http_status=502),
}


class ProviderError(Exception):
    """A provider call failed; `kind` classifies it, `message` is safe to show the caller."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after

    def as_dict(self) -> dict:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "retry_after": self.retry_after,
        }


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
    """A stream broken after it began: a timeout, a dropped connection or an unreadable chunk."""
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(ErrorKind.TIMEOUT, "the provider stopped sending before the answer was complete",
                             provider=provider, model=model)
    if isinstance(exc, httpx2.HTTPError):
        return ProviderError(ErrorKind.CONNECTION, "the connection broke before the answer was complete",
                             provider=provider, model=model)
    return ProviderError(ErrorKind.SERVER_ERROR, f"the provider sent an unreadable stream ({type(exc).__name__})",
                         provider=provider, model=model)


STREAM_BREAKS = (httpx2.HTTPError, ValueError)  # what the SDKs let escape from a broken stream


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds; None when absent or a date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
