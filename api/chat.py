"""Chat: execute a request through the worker fleet and answer with its result."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api import services
from api.errors import ApiError, ErrorResponseSchema
from api.schemas import ChatRequestSchema, ChatResultSchema
from workers.app import app as celery_app
from workers.queues import CHAT_QUEUE, DEFAULT_PRIORITY, kombu_priority

blp = Blueprint("chat", __name__, description="Route and execute chat requests")

ANONYMOUS = "anonymous"


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def run_chat(body: dict) -> dict:
    """Enqueue one chat request on the chat queue and wait for its terminal event."""
    svc = services()
    request_id = new_request_id()
    payload = {
        "messages": [{"role": "user", "content": body["message"]}],
        "system_prompt": body.get("system_prompt"),
        "temperature": body.get("temperature"),
        "max_tokens": body.get("max_tokens"),
        "strategy": body["strategy"],
        "budget_limit": body.get("budget_limit"),
        "owner": ANONYMOUS,
    }
    svc.requests.create(request_id, ANONYMOUS, "chat")
    celery_app.send_task(
        "orchestrator.execute_chat",
        args=[request_id, payload],
        task_id=request_id,
        queue=CHAT_QUEUE,
        priority=kombu_priority(DEFAULT_PRIORITY),
    )
    outcome = svc.requests.wait_terminal(request_id, svc.settings.request_timeout)
    if outcome is None:
        raise ApiError(
            504, "gateway_timeout", f"No answer within {svc.settings.request_timeout:g}s; is a worker running?",
            details={"request_id": request_id},
        )
    kind, data = outcome
    if kind == "error":
        raise ApiError(data["status"], data["code"], data["message"], data.get("details"))
    return data


@blp.route("/execute")
class ChatExecute(MethodView):
    @blp.arguments(ChatRequestSchema)
    @blp.response(200, ChatResultSchema)
    @blp.alt_response(413, schema=ErrorResponseSchema, description="Body larger than MAX_BODY_BYTES")
    @blp.alt_response(422, schema=ErrorResponseSchema, description="Invalid request or no suitable model")
    @blp.alt_response(502, schema=ErrorResponseSchema, description="Every provider attempt failed")
    @blp.alt_response(503, schema=ErrorResponseSchema, description="Redis or the providers unavailable")
    @blp.alt_response(504, schema=ErrorResponseSchema, description="No answer within the time budget")
    def post(self, body: dict):
        """Execute a chat request with optimal model selection and fallback."""
        return run_chat(body)
