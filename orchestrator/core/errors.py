"""One error taxonomy for every provider. The rest of the system reads only this.

Each adapter maps its SDK's exceptions to a ProviderError whose `kind` says what went
wrong and, through its policy, whether the same model may be tried again, another model
may be tried, or neither.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# What a credential looks like in a provider's error text (OpenAI and Anthropic keys, Google
# API keys, this gateway's own keys, any bearer token). An upstream 401 often quotes the key.
_SECRET = re.compile(
    r"(?i)\bbearer\s+\S+"
    r"|\bsk-[A-Za-z0-9_*.-]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
    r"|\borch-[A-Za-z0-9_-]{16,}"
)
REDACTED = "[redacted]"
# The keys this process was given, whatever their shape; replaced whole (never changed in
# place) so that a thread scrubbing reads one consistent tuple while another adds a key.
_configured: tuple[str, ...] = ()
MAX_MESSAGE_CHARS = 500  # of a provider's error text kept: scrubbed first, so no key is cut in two


def keep_secret(value: str) -> None:
    """Scrub `value` too from now on (a provider key of a shape the patterns do not know)."""
    global _configured
    if len(value) >= 8 and value not in _configured:  # shorter is no secret worth the false matches
        _configured = (*_configured, value)


def scrubbed(text: str) -> str:
    """`text` with every configured key, and anything shaped like a credential, replaced, so
    that it can be logged, stored and shown."""
    for secret in _configured:
        text = text.replace(secret, REDACTED)
    return _SECRET.sub(REDACTED, text)


@dataclass(frozen=True)
class Policy:
    retry_same: bool  # the same model may answer if asked again
    fallback: bool  # another model may answer
    http_status: int  # what the caller sees when this is the last error
    blames_model: bool = True  # says something of the model's health; False when the request caused it


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
    INVALID_OUTPUT = "invalid_output"  # the answer breaks the schema or tools the request gave

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
    ErrorKind.BAD_REQUEST: Policy(retry_same=False, fallback=False, http_status=400, blames_model=False),
    ErrorKind.CONTEXT_LENGTH_EXCEEDED: Policy(retry_same=False, fallback=True, http_status=400, blames_model=False),
    ErrorKind.CONTENT_FILTERED: Policy(retry_same=False, fallback=False, http_status=422, blames_model=False),
    ErrorKind.NOT_FOUND: Policy(retry_same=False, fallback=True, http_status=502),
    # Another model may keep to the schema; one caller's hard schema must not open a circuit for all.
    ErrorKind.INVALID_OUTPUT: Policy(retry_same=False, fallback=True, http_status=502, blames_model=False),
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
        message = scrubbed(message)[:MAX_MESSAGE_CHARS]
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


