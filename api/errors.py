"""JSON errors in one shape: {"error": {"code", "message", "details"}}, never a traceback."""

from __future__ import annotations

import json
import logging

import flask_smorest
import marshmallow as ma
import redis
from flask import Flask, current_app, jsonify, request
from flask_smorest import Api
from kombu.exceptions import OperationalError
from webargs.flaskparser import FlaskParser, abort
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "Machine-readable error code"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong and how to fix it"})
    details = ma.fields.Raw(metadata={"description": "Field errors, provider errors or attempts"})


class ErrorResponseSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details=None, headers: dict | None = None):
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _flatten(messages, path: str = "") -> list[str]:
    """webargs' nested {"json": {"field": ["msg"]}} as "field: msg" lines."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            if key == "json" and not path:
                name = ""
            elif key == "_schema":
                name = path or "body"
            else:
                name = f"{path}.{key}" if path else str(key)
            lines.extend(_flatten(value, name))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path}: {' '.join(messages)}" if path else " ".join(messages)]
    if isinstance(messages, list):
        return [line for item in messages for line in _flatten(item, path)]
    return [f"{path}: {messages}" if path else str(messages)]


class JsonBodyParser(FlaskParser):
    """webargs' reading of a JSON body, with what json.loads raises on hostile bodies (nesting
    past the recursion limit, an integer of thousands of digits) answered as invalid JSON
    rather than a 500, and a chunked body cut at the size limit answered as too large."""

    def _raw_load_json(self, req):
        limit = req.max_content_length
        if limit is not None and req.content_length is None and len(req.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge()
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise  # webargs' own invalid-JSON answer
        except (RecursionError, ValueError):
            abort(400, messages={"json": ["Invalid JSON body: nested too deeply or a number too long."]})


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint reading bodies with JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()


class OrchestratorApi(Api):
    """flask-smorest's Api with errors documented and rendered in the project's shape."""

    ERROR_SCHEMA = ErrorResponseSchema

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        if messages:
            lines = _flatten(messages)
            if error.code == 400 and any("Invalid JSON" in line for line in lines):
                return error_response(400, "invalid_json", "The request body is not valid JSON.")
            message = "Invalid request: " + "; ".join(lines)
            return error_response(error.code, _CODES.get(error.code, "error"), message, details=messages)
        if error.code == 413:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            return error_response(
                413, "payload_too_large", f"The request body is larger than {limit} bytes (MAX_BODY_BYTES); send less."
            )
        # Keep what werkzeug adds, such as the Allow header of a 405.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        return error_response(
            error.code or 500,
            _CODES.get(error.code, "error"),
            data.get("message") or error.description or error.name,
            headers=headers,
        )


# gunicorn refuses larger headers and request lines itself, with a plain-text page; under
# these limits (orchestrator/runtime/cli.py sets gunicorn's above them) the refusal is ours.
MAX_HEADER_BYTES = 16 * 1024
MAX_URL_CHARS = 4096


def register_header_limits(app: Flask) -> None:
    """Oversized headers and URLs refused in the API's error shape, before anything reads them."""

    @app.before_request
    def _bounded():
        size = sum(len(name) + len(value) + 4 for name, value in request.headers.items())
        if size > MAX_HEADER_BYTES:
            return error_response(431, "headers_too_large", f"The request's headers take {size} bytes; send at "
                                  f"most {MAX_HEADER_BYTES} (a long cookie or token is the usual cause).")
        if len(request.full_path) > MAX_URL_CHARS:
            return error_response(414, "url_too_long", f"The URL is longer than {MAX_URL_CHARS} characters; "
                                  "send the data in a JSON body instead.")
        return None


FORM_PATHS = ("/v1/files",)  # the OpenAI door's file upload (api/openai_batches.py): multipart/form-data


def register_error_handlers(app: Flask) -> None:
    @app.before_request
    def _require_json():
        if request.method in ("POST", "PUT", "PATCH") and request.content_length and not request.is_json \
                and request.path not in FORM_PATHS:
            return error_response(
                415, "unsupported_media_type", "Send the body as JSON with the header Content-Type: application/json."
            )

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.errorhandler(redis.RedisError)
    @app.errorhandler(OperationalError)
    def _redis_down(error: Exception):
        log.warning("Redis unavailable: %s", error)
        return error_response(
            503,
            "redis_unavailable",
            "Failed to connect to Redis: check that Redis is running and that REDIS_URL points at it.",
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "The server failed while handling this request.")
