"""Chat: execute a request through the worker fleet and answer with its result."""

from __future__ import annotations

import time

from flask.views import MethodView

from api import services
from api.auth import current_user
from api.errors import ApiError, Blueprint, ErrorResponseSchema
from api.event_stream import no_answer
from api.schemas import ChatRequestSchema, ChatResultSchema, RoutingDecisionSchema
from orchestrator.core.job import ChatJob, ChatResult, job_from_body, new_request_id
from orchestrator.core.router import NoSuitableModel
from workers import dispatch

blp = Blueprint("chat", __name__, description="Route and execute chat requests")

WAIT_GRACE = 5.0


def enqueue_chat(body: dict, stream: bool = False, request_id: str | None = None, record: dict | None = None,
                 **form) -> tuple[str, ChatJob]:
    """Record one chat request and put it on the chat queue; its id and job. With `stream`,
    the worker publishes the answer's chunks as they come; `form` holds the job fields of
    the answer's form (tools, response_format, ...: core/job.py) the OpenAI doors read. A door
    may choose the request's id, and keep `record` fields with its record."""
    svc = services()
    request_id = request_id or new_request_id()
    owner = current_user().id
    job = job_from_body(body, owner, svc.settings, stream=stream, **form)
    svc.requests.create(request_id, owner, "chat", job.user, record)
    dispatch.enqueue_chat(request_id, job)
    return request_id, job


def run_chat(body: dict, **enqueued) -> ChatResult:
    """Enqueue one chat request (`enqueued`: enqueue_chat's other arguments) and wait for its terminal event."""
    return _result(*enqueue_chat(body, **enqueued))


def run_chats(body: dict, n: int, **form) -> list[ChatResult]:
    """`n` answers to the same request (OpenAI's `n`, by fan-out): enqueued together, each
    routed, billed and falling over on its own; the first error is the answer's."""
    return [_result(request_id, job) for request_id, job in [enqueue_chat(body, **form) for _ in range(n)]]


def _result(request_id: str, job: ChatJob) -> ChatResult:
    return ChatResult.from_json(wait_result(request_id, job.deadline))


def wait_result(request_id: str, deadline: float) -> dict:
    """The result a worker publishes for the request (as JSON), or its error raised as an ApiError."""
    # The worker publishes an error by the deadline; the grace covers a request still queued then.
    waited = deadline - time.time() + WAIT_GRACE
    outcome = services().requests.wait_terminal(request_id, waited)
    if outcome is None:
        error = no_answer(waited, request_id=request_id)
        raise ApiError(error["status"], error["code"], error["message"], error["details"])
    kind, data = outcome
    if kind == "error":
        raise ApiError(data["status"], data["code"], data["message"], data.get("details"))
    return data


def _refusals(view):
    """The 4xx answers of a well-formed request that cannot be served."""
    for status, description in (
        (402, "Every model that fits could cost more than the budget left"),
        (404, "The pinned model is not in the catalog"),
        (413, "Body larger than MAX_BODY_BYTES, or a conversation no model's context holds"),
        (422, "Invalid request: the message names each field to fix"),
    ):
        view = blp.alt_response(status, schema=ErrorResponseSchema, description=description)(view)
    return view


@blp.route("/execute")
class ChatExecute(MethodView):
    @blp.arguments(ChatRequestSchema())
    @blp.response(200, ChatResultSchema)
    @_refusals
    @blp.alt_response(502, schema=ErrorResponseSchema, description="Every provider attempt failed")
    @blp.alt_response(503, schema=ErrorResponseSchema, description="Redis or the providers unavailable")
    @blp.alt_response(504, schema=ErrorResponseSchema, description="No answer within the time budget")
    def post(self, body: dict):
        """Execute a chat request with optimal model selection and fallback."""
        return run_chat(body).to_json()


@blp.route("/route")
class ChatRoute(MethodView):
    @blp.arguments(ChatRequestSchema())
    @blp.response(200, RoutingDecisionSchema)
    @_refusals
    def post(self, body: dict):
        """Route a message to the optimal model without executing it."""
        svc = services()
        try:
            return svc.router.route(
                job_from_body(body, current_user().id, svc.settings).chat_request(svc.settings),
                body["strategy"],
                pinned=body.get("model"),
                budget_limit=body.get("budget_limit"),
            ).as_dict()
        except NoSuitableModel as exc:
            raise ApiError(exc.http_status, "no_suitable_model", str(exc), {"reason": exc.reason, "missing": list(exc.missing)}) from None
