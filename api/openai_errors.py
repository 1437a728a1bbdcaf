"""OpenAI's error shape at its /v1 door: {"error": {"message", "type", "code", "param"}}, the
orchestrator's own errors converted into it, and a request the door refused written in it."""

from __future__ import annotations

from api.door_request import ErrorAnswer, Refused


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    return {"message": message, "type": error_type(status), "code": code, "param": param}


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 402:
        return "insufficient_quota"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_exceeded"
    if status == 503:
        return "service_unavailable"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


# The request parameter behind each capability routing found no model for.
_CAPABILITY_PARAMS = {"tools": "tools", "structured_output": "response_format", "logprobs": "logprobs",
                      "vision": "messages", "code": "messages"}
NO_RETRY = {"x-should-retry": "false"}  # the header OpenAI's SDKs obey before retrying


def from_refused(error: Refused) -> ErrorAnswer:
    return ErrorAnswer(error.status, {"error": openai_error(error.status, error.message, error.code, error.param)},
                       error.headers)


def from_orchestrator(status: int, error: dict) -> ErrorAnswer:
    """One of our errors ({"code", "message", "details"} with its status) as OpenAI answers the
    same case: an exhausted budget is a 429 `insufficient_quota` not to be retried, a content
    filter a 400 `content_filter` (the SDKs have typed errors for both, none for a 402)."""
    code, message = error.get("code"), error.get("message") or ""
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    reason, param = details.get("reason"), None
    if status == 401:
        code = "invalid_api_key"
    elif status == 402:
        return ErrorAnswer(429, {"error": openai_error(402, message, "insufficient_quota")}, NO_RETRY)
    elif status == 422 and code == "content_filtered":
        status, code = 400, "content_filter"
    elif status == 429:
        code = "rate_limit_exceeded"
    elif reason == "unknown_model":
        code = "model_not_found"
    elif reason == "context":
        code = "context_length_exceeded"
    elif reason == "capability":
        code = "unsupported_value"
        param = next((_CAPABILITY_PARAMS[n] for n in details.get("missing") or () if n in _CAPABILITY_PARAMS), None)
    return ErrorAnswer(status, {"error": openai_error(status, message, code, param)})
