"""OpenAI's Responses API at /v1: POST /v1/responses and GET /v1/responses/{id}, for the OpenAI
Agents SDK, Codex and newer OpenAI code (base_url="http://host:port/v1", an orchestrator key).

- The body is read by api/responses_request.py and goes through the chat pipeline as the
  Chat Completions door's does (api/chat.py, api/openai_compat.py): same queue, worker,
  routing, fallbacks, budgets and accounting.
- A response's id is its request's (`resp_<hex>` for `req_<hex>`). With `store` (the default)
  the request keeps its conversation under that id in the orchestrator's conversation store
  (orchestrator/store/conversations.py): everything before it, its input and its answer. A
  later request's `previous_response_id` puts that conversation before its own input (forks
  included: each response keeps its own). `instructions` are not carried over, as OpenAI's.
  The request's record keeps what the Response object echoes, for GET; a response made with
  `store: false` can be neither read back nor continued.
- A stream waits for the first piece of the answer: an error until then is an HTTP status;
  after it, the Responses events of api/responses_output.py, written by the stream loop all
  doors share (api/streaming.py). Errors, this door's refusals among them, are converted to
  OpenAI's shape as the Chat Completions door's are (api/doors.py, api/openai_errors.py).

Like the other /v1 routes these are not in the OpenAPI spec (OpenAI's spec documents them).
"""

from __future__ import annotations

import json
import time

from flask import Blueprint, jsonify

from api import services
from api.auth import current_user
from api.chat import run_chat
from api.door_request import Refused, json_body
from api.doors import PREFIX, routing_headers
from api.openai_errors import from_orchestrator
from api.openai_params import check_turns
from api.responses_output import ResponseEvents, ResponseObject, request_id_of, response_id
from api.responses_request import ResponsesRequest, read_responses
from api.streaming import door_response, open_stream
from orchestrator.core.job import ChatResult, new_request_id
from orchestrator.core.types import Message
from orchestrator.store.connection import one_trip

blp = Blueprint("responses", __name__, url_prefix=PREFIX)

ECHO_FIELD = "responses"  # the request record's field holding what the Response object echoes


def _not_found(kind: str, response: str, param: str | None = None) -> Refused:
    return Refused(404, f"{kind} with id '{response}' not found.", param, "not_found")


def _history(previous: str) -> tuple[Message, ...]:
    """The stored conversation up to and including response `previous`, or a 404."""
    svc, owner = services(), current_user().id
    history = one_trip(svc.redis, lambda trip: svc.conversations.history_in(trip, owner, previous))
    if not history:
        raise _not_found("Previous response", previous, "previous_response_id")
    return history


def _prepared(request: ResponsesRequest, request_id: str, echo: dict) -> tuple[dict, dict]:
    """The chat body (the whole conversation) and where enqueue_chat places the request: its
    id, and the record fields a stored response keeps for GET."""
    history = _history(request.previous_response_id) if request.previous_response_id else ()
    messages = history + request.turns
    check_turns(messages, "input")
    stored = response_id(request_id) if request.store else None
    body = {**request.body, "messages": messages, "conversation_id": stored}
    return body, {"request_id": request_id, "record": {ECHO_FIELD: json.dumps(echo)} if stored else None}


@blp.post("/responses")
def create_response():
    request = read_responses(json_body())
    request_id = new_request_id()
    echo = {**request.echo, "created_at": int(time.time()), "previous_response_id": request.previous_response_id,
            "store": request.store}
    body, placed = _prepared(request, request_id, echo)
    response = ResponseObject(request_id, echo)
    if not request.stream:
        result = run_chat(body, **placed, **request.form)
        return jsonify(response.answered(result)), 200, routing_headers([result])
    opened = open_stream(body, **placed, **request.form)
    return door_response(opened, ResponseEvents(response, opened.chosen_model))


@blp.get("/responses/<response>")
def retrieve_response(response: str):
    """A stored response as it stands: queued, in progress, or ended (its answer or its error)."""
    request_id = request_id_of(response)
    record = services().requests.get(request_id) if request_id else None
    if not request_id or not record or record.get("owner") != current_user().id or ECHO_FIELD not in record:
        raise _not_found("Response", response)
    answer = ResponseObject(request_id, json.loads(record[ECHO_FIELD]))
    if record["status"] == "completed":
        return jsonify(answer.answered(ChatResult.from_json(record["result"])))
    if record["status"] in ("failed", "cancelled"):
        failure = record["result"]
        error = from_orchestrator(failure.get("status", 500), failure).body["error"]
        return jsonify({**answer.failed(error), "status": record["status"]})
    return jsonify(answer.pending("queued" if record["status"] == "queued" else "in_progress"))
