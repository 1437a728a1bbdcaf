"""The /v1 prefix and its doors in two wire formats: OpenAI's (Chat Completions,
api/openai_compat.py; Responses, api/responses.py) and Anthropic's (Messages,
api/anthropic_compat.py). Which wire format a request came through decides the shape
of every error answer under /v1, whoever wrote it (authentication and rate limiting run
before any view; the worker's errors come through api/chat.py): they are rewritten after
the fact, keeping their headers (Retry-After, WWW-Authenticate).
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

from api import anthropic_errors, openai_errors
from api.door_request import Refused
from orchestrator.core.job import ChatResult

PREFIX = "/v1"
ANTHROPIC_PATH = f"{PREFIX}/messages"


def under_prefix(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def speaks_anthropic() -> bool:
    """Whether the request came through Anthropic's door: its paths, or Anthropic's headers
    (its SDKs send `anthropic-version` on every call, GET /v1/models included)."""
    path = request.path
    return (path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/")
            or "anthropic-version" in request.headers or "x-api-key" in request.headers)


def _orchestrator_error(response: Response) -> dict | None:
    """The error of an answer in the orchestrator's shape ({"error": {"code", "message", ...}})."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if not isinstance(error, dict) or "type" in error or body.get("type") == "error":
        return None
    return error


def _door():
    return anthropic_errors if speaks_anthropic() else openai_errors


def _refused(error: Refused) -> Response:
    return _door().from_refused(error).response()


def _in_the_doors_shape(response: Response) -> Response:
    if response.status_code < 400 or not under_prefix(request.path) or not response.is_json:
        return response
    error = _orchestrator_error(response)
    if error is None:
        return response
    converted = _door().from_orchestrator(response.status_code, error)
    response.set_data(json.dumps(converted.body))
    response.status_code = converted.status
    response.headers.update(converted.headers)
    return response


def routing_headers(results: list[ChatResult]) -> dict:
    """Who answered at what cost, on a door's non-streamed answer: the first answer's routing,
    and the cost and attempts of them all (OpenAI's `n` asks for several)."""
    first = results[0]
    return {
        "x-orchestrator-model": first.model_used,
        "x-orchestrator-provider": first.response.provider,
        "x-orchestrator-cost": f"{sum(r.response.cost for r in results):.6f}",
        "x-orchestrator-attempts": str(sum(len(r.attempts) for r in results)),
        "x-orchestrator-strategy": first.routing_decision.strategy,
        "x-request-id": first.request_id,
    }


def register_doors(app: Flask) -> None:
    """A request a door refused answers in that door's shape, as does every other error under /v1."""
    app.register_error_handler(Refused, _refused)
    app.after_request(_in_the_doors_shape)
