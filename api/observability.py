"""The request id of every HTTP request (X-Request-ID), in the logs and on the tasks it enqueues.

The caller's X-Request-ID is kept when well formed (letters, digits, . _ : -, up to 128),
otherwise a new one is made; it is set in orchestrator/runtime/logs.py's context for the request's
log lines, added to every Celery task the request publishes (workers/observability.py's
publish hook) and returned in the X-Request-ID response header (unless the endpoint set
its own, as the OpenAI-compatible one does).
"""

from __future__ import annotations

from flask import Flask, g, request

import workers.observability  # noqa: F401  (connects the hook that puts the id on published tasks)
from orchestrator.runtime import logs


def _begin() -> None:
    g.request_id = logs.request_id_from(request.headers.get(logs.HEADER))
    g.request_id_token = logs.REQUEST_ID.set(g.request_id)


def _header(response):
    request_id = g.get("request_id")
    if request_id and logs.HEADER not in response.headers:
        response.headers[logs.HEADER] = request_id
    return response


def _end(exc=None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        logs.REQUEST_ID.reset(token)


def register_request_ids(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_header)
    app.teardown_request(_end)
