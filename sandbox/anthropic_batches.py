"""Anthropic's Message Batches API.

    POST /v1/messages/batches {"requests": [{"custom_id", "params": <a Messages request>}]}
    GET  /v1/messages/batches/{id}           a MessageBatch: processing_status, request_counts, results_url
    GET  /v1/messages/batches/{id}/results   JSONL, once ended: {"custom_id", "result": {"type":
         "succeeded", "message"} | {"type": "errored", "error"} | {"type": "canceled"} | {"type": "expired"}}
    POST /v1/messages/batches/{id}/cancel    processing_status "canceling"; ended at the next look
    GET  /v1/messages/batches?after_id=&limit=   newest first: {"data", "has_more", "first_id", "last_id"}
         (before_id, paging towards newer batches, is not played)
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web

from sandbox.anthropic_wire import AnthropicWire
from sandbox.batch_jobs import CANCELLED, EXPIRED, BatchJob, Item, Outcome, page_size
from sandbox.state import STATE_KEY

_WIRE = AnthropicWire()
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000  # batches a page of the list


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _counts(job: BatchJob) -> dict:
    unanswered = job.unanswered
    return {"processing": 0 if job.ended else unanswered, "succeeded": job.count(ok=True),
            "errored": job.count(ok=False), "canceled": unanswered if job.state == CANCELLED else 0,
            "expired": unanswered if job.state == EXPIRED else 0}


def _batch(request: web.Request, job: BatchJob, canceling: bool = False) -> dict:
    created = datetime.fromtimestamp(job.created, UTC)
    results = f"{request.url.origin()}/v1/messages/batches/{job.id}/results" if job.ended else None
    return {
        "id": job.id, "type": "message_batch",
        "processing_status": "canceling" if canceling else ("ended" if job.ended else "in_progress"),
        "request_counts": _counts(job), "ended_at": _time(job.ended_at),
        "created_at": _time(job.created), "expires_at": _time((created + timedelta(days=1)).timestamp()),
        "archived_at": None, "cancel_initiated_at": _time(job.cancelled_at), "results_url": results,
    }


def _result(job: BatchJob, item: Item) -> dict:
    outcome = item.outcome
    if outcome is None:
        result = {"type": "canceled" if job.state == CANCELLED else "expired"}
    elif outcome.ok:
        result = {"type": "succeeded", "message": outcome.body}
    else:
        result = {"type": "errored", "error": outcome.body}
    return {"custom_id": item.custom_id, "result": result}


def _job(request: web.Request) -> BatchJob:
    job = request.app[STATE_KEY].batches.get(request.match_info["batch_id"])
    if job is None or job.api != _WIRE.api:
        raise web.HTTPNotFound(text=json.dumps({"type": "error", "error": {
            "type": "not_found_error", "message": f"No message batch {request.match_info['batch_id']}"}}),
            content_type="application/json")
    return job


def _items(body) -> list[Item]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise ValueError("requests: Field required (a non-empty list)")
    items = []
    for number, entry in enumerate(requests):
        if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
            raise ValueError(f"requests.{number}.params: Field required")
        if not _CUSTOM_ID.match(str(entry.get("custom_id") or "")):
            raise ValueError(f"requests.{number}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
        items.append(Item(entry["custom_id"], str(entry["params"].get("model")), entry["params"]))
    return items


def add_routes(router: web.UrlDispatcher, answer_alone) -> None:
    async def create(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        try:
            items = _items(await request.json())
        except ValueError as exc:
            return _error(400, "invalid_request_error", str(exc))

        def answer(item: Item) -> Outcome:
            return Outcome(*answer_alone(state, _WIRE, item.body, {}, item.custom_id))

        job = state.batches.create(f"msgbatch_{uuid.uuid4().hex[:24]}", _WIRE.api, items, state.rules, answer)
        return web.json_response(_batch(request, job))

    async def retrieve(request: web.Request) -> web.Response:
        return web.json_response(_batch(request, _job(request)))

    async def list_batches(request: web.Request) -> web.Response:
        limit = page_size(request.query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
        if limit is None:
            return _error(400, "invalid_request_error", f"limit: must be between 1 and {MAX_LIMIT}")
        jobs, more = request.app[STATE_KEY].batches.newest_first(_WIRE.api, request.query.get("after_id"), limit)
        data = [_batch(request, job) for job in jobs]
        return web.json_response({"data": data, "has_more": more, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def results(request: web.Request) -> web.Response:
        job = _job(request)
        if not job.ended:
            return _error(404, "not_found_error", f"Results for batch {job.id} are not available yet: it has not ended.")
        lines = "".join(json.dumps(_result(job, item)) + "\n" for item in job.items)
        return web.Response(text=lines, content_type="application/binary")

    async def cancel(request: web.Request) -> web.Response:
        job = _job(request)
        job.cancel()
        return web.json_response(_batch(request, job, canceling=job.state == CANCELLED))

    router.add_post("/v1/messages/batches", create)
    router.add_get("/v1/messages/batches", list_batches)
    router.add_get("/v1/messages/batches/{batch_id}", retrieve)
    router.add_get("/v1/messages/batches/{batch_id}/results", results)
    router.add_post("/v1/messages/batches/{batch_id}/cancel", cancel)
