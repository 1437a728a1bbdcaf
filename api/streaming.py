"""Streaming chat as Server-Sent Events, read from the request's Redis stream.

POST /chat/stream enqueues the request and streams its events: `decision` (the routing
decision, with the request id), `chunk` ({"text"}) as the model writes, then `final`
(model, usage, cost, attempts, the whole content) or `error`. Each event's id is its Redis
stream entry id: GET /chat/stream/{request_id} with a Last-Event-ID header resumes after
it, without loss. Comment lines keep an idle connection alive. A caller who disconnects
before the end and does not resume within RESUME_GRACE seconds cancels the request: the
worker stops the provider call, and only what was generated is paid.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from flask import Response, request
from flask.views import MethodView

from api import services
from api.auth import current_user
from api.chat import WAIT_GRACE, enqueue_chat
from api.errors import ApiError, Blueprint, ErrorResponseSchema
from api.event_stream import Event, follow, no_answer
from api.schemas import ChatRequestSchema
from orchestrator.core.decision import Decision
from orchestrator.core.job import ChatResult
from orchestrator.store.requests import TERMINAL_EVENTS, RequestStore

blp = Blueprint("streaming", __name__, description="Stream chat responses as Server-Sent Events")

HEARTBEAT_SECONDS = 5.0  # also how soon a silent stream notices its caller left
RESUME_GRACE = 3.0  # seconds a disconnected caller has to resume before the work stops
EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")
SSE_DOC = {
    "200": {
        "description": "text/event-stream of `decision`, `chunk`, then `final` or `error` events; "
        "`data` is JSON, `id` the event's stream entry id",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "event": {"type": "string"}, "data": {"type": "string"}},
                }
            }
        },
    }
}


def sse_events(store: RequestStore, request_id: str, after: str, deadline: float) -> Iterator[str]:
    terminal = False
    for event in follow(store, request_id, after, deadline, HEARTBEAT_SECONDS, RESUME_GRACE):
        if event is None:
            yield ": keep-alive\n\n"
            continue
        entry_id, kind, data = event
        terminal = kind in TERMINAL_EVENTS
        yield f"id: {entry_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
    if not terminal:
        yield _timeout_event(request_id)


def _timeout_event(request_id: str) -> str:
    return f"event: error\ndata: {json.dumps(no_answer(request_id=request_id))}\n\n"


def sse_response(events: Iterator[str], request_id: str) -> Response:
    return Response(
        events,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Request-ID": request_id},
    )


@dataclass
class OpenedStream:
    """A streamed request enqueued and followed up to the first piece of its answer (a door's
    stream starts only then, so that an error until then can still be an HTTP status)."""

    request_id: str
    decision: Decision | None  # the routing decision event's, when one came
    first: Event | None  # the first chunk, or the terminal event; None: nothing came in time
    events: Iterator[Event | None]  # what follows `first`; closing it before the end cancels the request

    @property
    def chosen_model(self) -> str:
        return self.decision.chosen_model if self.decision is not None else ""

    def failure(self) -> dict | None:
        """The error ({"status", "code", "message", "details"}) that ended the request before its
        first piece, the stream then closed; None when the answer began."""
        if self.first is not None and self.first[1] != "error":
            return None
        self.events.close()
        return self.first[2] if self.first is not None else no_answer(request_id=self.request_id)


def open_stream(body: dict, **enqueued) -> OpenedStream:
    """Enqueue as /chat/stream does (`enqueued`: enqueue_chat's other arguments, the job fields
    of the answer's form among them) and follow the request's events up to the first piece of
    the answer."""
    request_id, job = enqueue_chat(body, stream=True, **enqueued)
    events = follow(services().requests, request_id, "0-0", job.deadline + WAIT_GRACE, HEARTBEAT_SECONDS,
                    RESUME_GRACE)
    decision: Decision | None = None
    for item in events:
        if item is None:
            continue
        if item[1] != "decision":
            return OpenedStream(request_id, decision, item, events)
        decision = Decision.from_json(item[2])
    return OpenedStream(request_id, decision, None, events)


class DoorStream(Protocol):
    """How one door writes a streamed answer in its wire format."""

    keep_alive: str  # what a silence of HEARTBEAT_SECONDS sends

    def start(self) -> str: ...

    def text(self, chunk: dict) -> Iterator[str]:
        """A `chunk` event's text ({"text", "model"})."""
        ...

    def ending(self, result: ChatResult) -> Iterator[str]:
        """The end of an answer: the `final` event's result (tool calls, finish, usage)."""
        ...

    def error(self, error: dict) -> str:
        """An in-band error, after the answer began: an `error` event's data."""
        ...

    def refusal(self, error: dict) -> Response:
        """The answer to an error before the answer began, with its HTTP status."""
        ...


def door_response(opened: OpenedStream, door: DoorStream) -> Response:
    """A door's answer to a streamed request: the error that ended it before its first piece
    as an HTTP status, else the stream (door_events)."""
    failure = opened.failure()
    if failure is not None:
        response = door.refusal(failure)
    else:
        response = sse_response(door_events(opened, door), opened.request_id)
        response.headers["x-orchestrator-strategy"] = opened.decision.strategy if opened.decision is not None else ""
    response.headers["x-request-id"] = opened.request_id
    return response


def door_events(opened: OpenedStream, door: DoorStream) -> Iterator[str]:
    """An answer that began, in a door's wire format: its start, each chunk's text, then its
    ending or an in-band error (never a clean ending after an incomplete answer)."""
    try:
        yield door.start()
        for item in itertools.chain([opened.first], opened.events):
            if item is None:
                yield door.keep_alive
                continue
            _, kind, data = item
            if kind == "chunk" and data.get("text"):
                yield from door.text(data)
            elif kind == "final":
                yield from door.ending(ChatResult.from_json(data))
                return
            elif kind == "error":
                yield door.error(data)
                return
        yield door.error(no_answer())
    finally:
        opened.events.close()  # a caller who left before the end cancels the request (api/event_stream.py)


@blp.route("/stream")
class ChatStream(MethodView):
    @blp.arguments(ChatRequestSchema())
    @blp.doc(responses=SSE_DOC)
    @blp.alt_response(422, schema=ErrorResponseSchema, description="Invalid request: the message names each field")
    def post(self, body: dict):
        """Stream a chat response with intelligent model selection."""
        request_id, job = enqueue_chat(body, stream=True)
        events = sse_events(services().requests, request_id, "0-0", job.deadline + WAIT_GRACE)
        return sse_response(events, request_id)


@blp.route("/stream/<string:request_id>")
class ChatStreamResume(MethodView):
    @blp.doc(responses=SSE_DOC)
    @blp.alt_response(400, schema=ErrorResponseSchema, description="A Last-Event-ID that is not an event id")
    @blp.alt_response(404, schema=ErrorResponseSchema, description="No such request of yours")
    def get(self, request_id: str):
        """Resume a stream: the events after the Last-Event-ID header (all of them without it)."""
        store = services().requests
        record = store.get(request_id)
        if record is None or record.get("owner") != current_user().id:
            raise ApiError(404, "not_found", f"No request {request_id!r} of yours.")
        after = request.headers.get("Last-Event-ID", "0-0")
        if not EVENT_ID.fullmatch(after):
            raise ApiError(400, "bad_request", f"Last-Event-ID {after!r} is not an event id such as 1764100000000-0.")
        deadline = time.time() + services().settings.request_timeout + WAIT_GRACE
        store.resume(request_id)
        return sse_response(sse_events(store, request_id, after, deadline), request_id)
