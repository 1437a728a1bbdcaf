"""Batches: submit many chat requests at once, list, follow and cancel them, download their results.

Each item is its own `execute_chat` task on the `batch` queue, with the request id of its
record (orchestrator/store/batches.py) as task id, at the batch's priority: it takes the routing,
fallback, budget and rate-limit path of an interactive request, and its result and the
batch's counters are written together, once, however often the task is delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView
from marshmallow import fields, validate

from api import services
from api.auth import current_user
from api.errors import ApiError, Blueprint, ErrorResponseSchema, _flatten
from api.schemas import STRATEGIES, CatalogModel, StrictFloat, StrictSchema, _not_blank
from orchestrator.config import get_settings
from orchestrator.core.job import ECONOMY_FALLBACKS, RUN_STANDARD, ChatJob, item_id, new_batch_id
from orchestrator.store.batches import ECONOMY, MODES, STANDARD, item_job
from workers import dispatch
from workers.queues import DEFAULT_PRIORITY

log = logging.getLogger(__name__)

blp = Blueprint("batch", __name__, description="Batches of chat requests: submit, follow, cancel, download")

PAGE_LIMIT = 1_000
JSONL = "application/x-ndjson"
ECONOMY_WINDOW = "24h"  # OpenAI's completion window, the providers' batch window


def _text(description: str) -> fields.Field:
    return fields.String(validate=[validate.Length(min=1), _not_blank],
                         metadata={"description": description, "pattern": r"\S"})


class BatchItemSchema(StrictSchema):
    """One request of a batch: `task` or `message` (exactly one), and optional settings."""

    task = _text("The text to send (the same as `message`; give one of the two)")
    message = _text("The text to send (the same as `task`; give one of the two)")
    strategy = fields.String(validate=validate.OneOf(STRATEGIES), metadata={"description": "Routing strategy"})
    model = CatalogModel(metadata={"description": "Pin this catalog model (its fallbacks still apply)"})
    max_tokens = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=200_000))
    system_prompt = fields.String(allow_none=True)
    temperature = StrictFloat(allow_none=True, validate=validate.Range(min=0, max=2))
    metadata = fields.Dict(keys=fields.String(), allow_none=True,
                           metadata={"description": "Yours, returned with the item's result"})

    @ma.validates_schema
    def _one_text(self, data: dict, **kwargs) -> None:
        if ("task" in data) == ("message" in data):
            raise ma.ValidationError("give the text to send as `task` or as `message`, one of the two.")


class BatchSubmitSchema(StrictSchema):
    requests = fields.List(
        fields.Nested(BatchItemSchema), required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The requests, at most BATCH_MAX_ITEMS; one invalid item rejects the batch",
                  "maxItems": get_settings().batch_max_items},
    )
    priority = fields.Integer(
        strict=True, load_default=DEFAULT_PRIORITY, validate=validate.Range(min=0, max=9),
        metadata={"description": "0 (lowest) to 9 (most urgent); interactive chat always goes first"},
    )
    user = fields.String(allow_none=True, validate=validate.Length(max=256),
                         metadata={"description": "Your end user's id, recorded with every item"})
    mode = fields.String(load_default=STANDARD, validate=validate.OneOf(MODES), metadata={
        "description": "standard: each item called at once, at the standard price. economy: each item routed as "
                       "usual, then sent with others of its model through its provider's batch API, at the batch "
                       "price (about half), answered within 24 hours; a model whose provider has no batch API "
                       "runs at once"})
    completion_window = fields.String(validate=validate.OneOf([ECONOMY_WINDOW]), metadata={
        "description": "24h is economy mode (OpenAI's name for it)"})
    on_upstream_failure = fields.String(load_default=RUN_STANDARD, validate=validate.OneOf(ECONOMY_FALLBACKS), metadata={
        "description": "Economy: an item the provider batch failed or expired runs again at the standard price "
                       "(standard), or ends failed (fail)"})

    @ma.pre_load
    def _not_too_many(self, data, **kwargs):
        limit = services().settings.batch_max_items
        if isinstance(data, dict) and isinstance(data.get("requests"), list) and len(data["requests"]) > limit:
            raise ma.ValidationError(
                f"{len(data['requests'])} requests; a batch holds at most {limit} (BATCH_MAX_ITEMS): split it.",
                "requests",
            )
        return data

    def handle_error(self, error: ma.ValidationError, data, **kwargs) -> None:
        """Name the first invalid item by its index, and why; nothing is queued."""
        messages = _string_keys(error.messages)
        items = messages.get("requests") if isinstance(messages, dict) else None
        if not isinstance(items, dict) or not all(key.isdigit() for key in items):
            return  # not about one item: the usual message
        indexes = sorted(items, key=int)
        first = indexes[0]
        reasons = [line.removeprefix("body: ").rstrip(".") for line in _flatten(items[first])]
        parts = [f"Item {first} of requests is invalid: " + "; ".join(reasons)]
        if len(indexes) > 1:
            shown = ", ".join(indexes[1:11]) + (", ..." if len(indexes) > 11 else "")
            parts.append(f"{len(indexes) - 1} more invalid (items {shown})")
        others = [line.rstrip(".") for line in _flatten({k: v for k, v in messages.items() if k != "requests"})]
        if others:
            parts.append("Also: " + "; ".join(others))
        raise ApiError(422, "validation_error", ". ".join(parts) + ". Nothing was queued.",
                       details={"index": int(first), "errors": messages})


def _string_keys(messages):
    if isinstance(messages, dict):
        return {str(key): _string_keys(value) for key, value in messages.items()}
    return messages


class BatchSubmittedSchema(ma.Schema):
    batch_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "queued"})
    total = fields.Integer(required=True, metadata={"description": "Number of items"})
    priority = fields.Integer(required=True)
    mode = fields.String(required=True, metadata={"description": "standard or economy"})


class BatchCountsSchema(ma.Schema):
    queued = fields.Integer(required=True)
    running = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)


class BatchTimingSchema(ma.Schema):
    created_at = fields.Float(required=True, metadata={"description": "Unix time"})
    started_at = fields.Float(allow_none=True, metadata={"description": "When the first item started"})
    finished_at = fields.Float(allow_none=True, metadata={"description": "When the last item ended"})
    cancelled_at = fields.Float(allow_none=True)
    elapsed = fields.Float(required=True, metadata={"description": "Seconds from submission to the end (or now)"})


class EconomySchema(ma.Schema):
    state = fields.String(required=True, metadata={
        "description": "pending (routed, waiting to be submitted), submitting (on its way to its provider), "
                       "submitted (in a provider batch), standard (the provider batch failed it: running at the "
                       "standard price)"})
    model = fields.String(required=True)
    provider_batch = fields.String(allow_none=True, metadata={"description": "The provider batch's id"})
    since = fields.Float(required=True, metadata={"description": "Unix time it entered this state"})


class ProviderBatchSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "The provider's batch id"})
    provider = fields.String(required=True)
    model = fields.String(required=True)
    total = fields.Integer(required=True, metadata={"description": "Items of this batch and others in it"})
    status = fields.String(required=True, metadata={"description": "The provider's word for its state"})
    submitted_at = fields.Float(required=True)
    cancel_sent_at = fields.Float(allow_none=True)
    ended_at = fields.Float(allow_none=True, metadata={"description": "When it was seen ended"})
    collected_at = fields.Float(allow_none=True, metadata={"description": "When its results were written"})


class BatchItemResultSchema(ma.Schema):
    index = fields.Integer(required=True, metadata={"description": "Position in the submitted requests"})
    request_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "queued, running, completed, failed, cancelled"})
    content = fields.String(allow_none=True)
    model = fields.String(allow_none=True)
    cost = fields.Float(required=True, metadata={"description": "USD"})
    usage = fields.Dict(allow_none=True)
    finish_reason = fields.String(allow_none=True)
    attempts = fields.List(fields.Dict(), required=True)
    error = fields.Dict(allow_none=True, metadata={"description": "status, code and message of a failed item"})
    metadata = fields.Dict(allow_none=True)
    started_at = fields.Float(allow_none=True)
    finished_at = fields.Float(allow_none=True)
    economy = fields.Nested(EconomySchema, allow_none=True,
                            metadata={"description": "An economy item's way through its provider's batch API"})


class BatchSummarySchema(ma.Schema):
    batch_id = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "description": "queued, running, completed, partially_completed, failed or cancelled"})
    priority = fields.Integer(required=True)
    total = fields.Integer(required=True)
    counts = fields.Nested(BatchCountsSchema, required=True)
    progress = fields.Float(required=True, metadata={"description": "Items ended, 0 to 1"})
    cost = fields.Float(required=True, metadata={"description": "USD spent so far"})
    timing = fields.Nested(BatchTimingSchema, required=True)


class BatchStatusSchema(BatchSummarySchema):
    mode = fields.String(required=True, metadata={"description": "standard or economy"})
    provider_batches = fields.List(fields.Nested(ProviderBatchSchema), required=True, metadata={
        "description": "Economy: the provider batches its items went to, oldest first"})
    results = fields.List(fields.Nested(BatchItemResultSchema), required=True)
    offset = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    next_offset = fields.Integer(allow_none=True, metadata={"description": "The next page's offset; null at the end"})


class ListedBatchSchema(BatchSummarySchema):
    owner = fields.String(required=True, metadata={"description": "The user who submitted it"})


class BatchListSchema(ma.Schema):
    batches = fields.List(fields.Nested(ListedBatchSchema), required=True)


class BatchListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PageSchema(StrictSchema):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=0, max=PAGE_LIMIT))


@blp.before_request
def _batch_body_limit():
    """A batch is larger than a chat request: BATCH_MAX_BODY_BYTES instead of MAX_BODY_BYTES."""
    limit = services().settings.batch_max_body_bytes
    if request.content_length and request.content_length > limit:
        raise ApiError(413, "payload_too_large",
                       f"The batch is larger than {limit} bytes (BATCH_MAX_BODY_BYTES); split it.")
    request.max_content_length = limit


def _send(batch_id: str, items: Iterable[tuple[int, ChatJob]], priority: int) -> None:
    dispatch.enqueue_batch_items(((item_id(batch_id, index), job) for index, job in items), priority)


def economy_asked(body: dict) -> bool:
    """Economy mode, asked by its name or by OpenAI's: a completion window of 24 hours."""
    return body["mode"] == ECONOMY or body.get("completion_window") == ECONOMY_WINDOW


def submit(body: dict) -> dict:
    svc = services()
    owner = current_user().id
    batch_id = new_batch_id()
    priority, items, end_user = body["priority"], body["requests"], body.get("user")
    economy = body["on_upstream_failure"] if economy_asked(body) else None
    jobs = [item_job(item, owner, svc.settings, batch_id, priority, end_user, economy) for item in items]
    enqueue(batch_id, owner, priority, jobs, [item.get("metadata") for item in items], end_user)
    return {"batch_id": batch_id, "status": "queued", "total": len(items), "priority": priority,
            "mode": ECONOMY if economy else STANDARD}


def enqueue(batch_id: str, owner: str, priority: int, jobs: list[ChatJob], metadata: list,
            end_user: str | None = None, openai: dict | None = None) -> None:
    """Record the batch and its items, then send every item's task (this door's and the OpenAI door's)."""
    svc = services()
    svc.batches.create(batch_id, owner, priority, jobs, metadata, end_user, openai)
    try:
        _send(batch_id, enumerate(jobs), priority)
        svc.batches.mark_sent(batch_id)
    except Exception:
        try:  # the items not sent would wait forever: end them all, the batch shows cancelled
            svc.batches.cancel(batch_id, len(jobs))
        except Exception:
            pass
        raise


def own_batch(batch_id: str) -> dict:
    """The caller's batch; the admin key may read and cancel anyone's."""
    batch = services().batches.get(batch_id)
    user = current_user()
    if batch is None or (batch.pop("owner") != user.id and not user.admin):
        raise ApiError(404, "not_found", f"No batch {batch_id!r} of yours (results are kept RESULT_TTL seconds).")
    return batch


def _with_page(batch: dict, offset: int, limit: int) -> dict:
    results = services().batches.results(batch["batch_id"], batch["total"], offset, limit)
    end = offset + len(results)
    return {**batch, "provider_batches": services().provider_batches.of_batch(batch["batch_id"]),
            "results": results, "offset": offset, "limit": limit,
            "next_offset": end if results and end < batch["total"] else None}


def _not_found(view):
    return blp.alt_response(404, schema=ErrorResponseSchema, description="No such batch of yours")(view)


@blp.route("")
class BatchList(MethodView):
    @blp.arguments(BatchListQuerySchema(), location="query", unknown=ma.RAISE)
    @blp.response(200, BatchListSchema)
    def get(self, query: dict):
        """Your newest batches with their progress; the admin key lists every user's unfinished batches."""
        user = current_user()
        batches = services().batches
        listed = batches.open_batches(query["limit"]) if user.admin else batches.of_owner(user.id, query["limit"])
        return {"batches": listed}


@blp.route("/submit")
class BatchSubmit(MethodView):
    @blp.arguments(BatchSubmitSchema())
    @blp.response(202, BatchSubmittedSchema)
    @blp.alt_response(413, schema=ErrorResponseSchema, description="Body larger than BATCH_MAX_BODY_BYTES")
    @blp.alt_response(422, schema=ErrorResponseSchema,
                      description="Invalid batch: the message names the first invalid item's index and why")
    @blp.alt_response(503, schema=ErrorResponseSchema, description="Redis unavailable")
    def post(self, body: dict):
        """Submit a batch of chat requests; answers at once with the batch id."""
        return submit(body)


@blp.route("/<string:batch_id>/status")
class BatchStatus(MethodView):
    @blp.arguments(PageSchema(), location="query")
    @blp.response(200, BatchStatusSchema)
    @_not_found
    def get(self, page: dict, batch_id: str):
        """The batch's status, counts, progress, cost, timing, and a page of its results."""
        batch = own_batch(batch_id)
        return _with_page(batch, page["offset"], page["limit"])


@blp.route("/<string:batch_id>/cancel")
class BatchCancel(MethodView):
    @blp.response(200, BatchStatusSchema)
    @_not_found
    def post(self, batch_id: str):
        """Cancel the batch: items not started end cancelled (no provider called); running ones finish."""
        batch = own_batch(batch_id)
        if batch["status"] not in ("completed", "partially_completed", "failed", "cancelled"):
            services().batches.cancel(batch_id, batch["total"])
            batch = own_batch(batch_id)
        return _with_page(batch, 0, 0)


@blp.route("/<string:batch_id>/results.jsonl")
class BatchResults(MethodView):
    @blp.doc(responses={"200": {"description": "One JSON object a line, per item in submission order "
                                               "(the `results` of the status)",
                                "content": {JSONL: {"schema": {"type": "string"}}}}})
    @_not_found
    def get(self, batch_id: str):
        """Download every item's result as JSON Lines."""
        batch = own_batch(batch_id)
        lines = (json.dumps(item) + "\n" for item in services().batches.iter_results(batch_id, batch["total"]))
        return Response(lines, mimetype=JSONL,
                        headers={"Content-Disposition": f'attachment; filename="{batch_id}.jsonl"'})


def document(api) -> None:
    """The spec says what the schema checks in code: exactly one of `task` and `message`."""
    item = api.spec.components.schemas.get("BatchItem")
    if item is not None:
        item["oneOf"] = [{"required": ["task"]}, {"required": ["message"]}]
