"""Anthropic's error shape at its /v1 door: {"type": "error", "error": {"type", "message"}} with
Anthropic's status for each type, the orchestrator's own errors converted into it, and a
request the door refused written in it."""

from __future__ import annotations

from api.door_request import ErrorAnswer, Refused

# Anthropic's error types and their statuses (docs.anthropic.com, "Errors").
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               504: "timeout_error", 529: "overloaded_error"}
# Our statuses Anthropic does not use, as the status Anthropic gives the same case: a content
# filter and an invalid value are 400s; every provider failing is Anthropic's own failure; no
# provider available is an overload.
_STATUSES = {402: 400, 422: 400, 502: 500, 503: 529}
CREDIT_TOO_LOW = "Your credit balance is too low to run this request"


def anthropic_error(status: int, message: str) -> dict:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def from_refused(error: Refused) -> ErrorAnswer:
    """Anthropic's errors have no `param`: the message names the field, as Anthropic's do ("field: problem")."""
    named = error.param is None or error.param in error.message
    message = error.message if named else f"{error.param}: {error.message}"
    return ErrorAnswer(error.status, anthropic_error(error.status, message), error.headers)


def from_orchestrator(status: int, error: dict) -> ErrorAnswer:
    """One of our errors ({"code", "message", "details"} with its status) as Anthropic answers the
    same case: a budget refusal is Anthropic's low credit balance (a 400, with our advice)."""
    message = error.get("message") or ""
    if status == 402:
        message = f"{CREDIT_TOO_LOW}: {message}"
    status = _STATUSES.get(status, status)
    return ErrorAnswer(status, anthropic_error(status, message))
