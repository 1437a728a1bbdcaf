"""Structured logs, and the request id that follows a request from the API to the worker.

`REQUEST_ID` is a context variable: the API sets it for each HTTP request (from the
caller's X-Request-ID when it is well formed, else a new one) and returns it in the
X-Request-ID response header; tasks the API enqueues carry it in a message header, and
the worker sets it again around each task (workers/observability.py), so every log line
of that request, in either process, names it. With LOG_FORMAT=json (the default) each
line is one JSON object: time, level, logger, message, request_id, task_id, and the
exception's traceback when there is one; with LOG_FORMAT=text, a plain line with the ids.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("task_id", default=None)
HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(header: str | None) -> str:
    """The caller's id when it is well formed, else a new one."""
    return header if header and _WELL_FORMED.match(header) else uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Puts the request and task ids on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.task_id = TASK_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "task_id": getattr(record, "task_id", None),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s task_id=%(task_id)s] %(message)s"


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """One handler on the root logger, to stderr, in the chosen format, with the ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
