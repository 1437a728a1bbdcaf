"""OpenAI's error shape for the /v1 doors: {"error": {"message", "type", "code", "param"}},
the orchestrator's own errors converted into it, and the 400s of a request read at the door."""

from __future__ import annotations

from dataclasses import dataclass

from flask import jsonify


class OpenAIError(Exception):
    """An answer in OpenAI's error shape: `error` is {"message", "type", "code", "param"}."""

    def __init__(self, status: int, error: dict, headers: dict | None = None):
        super().__init__(error["message"])
        self.status = status
        self.error = error
        self.headers = headers or {}


def error_response(error: OpenAIError):
    """The Flask answer to an OpenAIError (each /v1 door's blueprint registers it)."""
    response = jsonify({"error": error.error})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


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


@dataclass(frozen=True)
class Converted:
    status: int
    error: dict
    headers: dict


def from_orchestrator(status: int, code: str | None, message: str, details=None) -> Converted:
    """One of our errors ({"code", "message", "details"} with its status) as OpenAI answers the
    same case: an exhausted budget is a 429 `insufficient_quota` not to be retried, a content
    filter a 400 `content_filter` (the SDKs have typed errors for both, none for a 402)."""
    details = details if isinstance(details, dict) else {}
    reason, param = details.get("reason"), None
    if status == 401:
        code = "invalid_api_key"
    elif status == 402:
        return Converted(429, openai_error(402, message, "insufficient_quota"), NO_RETRY)
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
    return Converted(status, openai_error(status, message, code, param), {})


def invalid(message: str, param: str | None, code: str = "invalid_value") -> OpenAIError:
    return OpenAIError(400, openai_error(400, message, code, param))


def type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def wrong_type(param: str, expected: str, value) -> OpenAIError:
    return invalid(f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
                   param, "invalid_type")
