"""Gemini's batch mode (the Gemini API's batches, with inlined requests).

    POST /{version}/models/{model}:batchGenerateContent
         {"batch": {"displayName"?, "inputConfig": {"requests": {"requests": [{"request", "metadata"?}]}}}}
    GET  /{version}/batches/{id}          the batch as a long-running operation: {"name", "metadata": {...,
         "state": BATCH_STATE_*, "output": {"inlinedResponses": {"inlinedResponses": [...]}}}, "done"}
    POST /{version}/batches/{id}:cancel   {}
    GET  /{version}/batches?pageSize=&pageToken=   {"operations": [...], "nextPageToken"?}, newest first

Each inlined response carries its request's metadata, and {"response"} or {"error"}; a request
never answered (the batch expired or was cancelled) has no response.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from aiohttp import web

from sandbox.batch_jobs import CANCELLED, COMPLETED, EXPIRED, BatchJob, Item, Outcome, page_size
from sandbox.gemini_wire import GeminiWire
from sandbox.state import STATE_KEY

_WIRE = GeminiWire()
_STATES = {"in_progress": "BATCH_STATE_RUNNING", COMPLETED: "BATCH_STATE_SUCCEEDED", EXPIRED: "BATCH_STATE_EXPIRED",
           CANCELLED: "BATCH_STATE_CANCELLED"}
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
DEFAULT_PAGE, MAX_PAGE = 50, 1000  # jobs a page of the list


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": name}}, status=status)


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _response(item: Item) -> dict:
    assert item.outcome is not None
    entry = {"response": item.outcome.body} if item.outcome.ok else {"error": item.outcome.body["error"]}
    return {**entry, "metadata": item.body.get("metadata") or {}}


def _operation(job: BatchJob) -> dict:
    name = f"batches/{job.id}"
    metadata = {
        "@type": _TYPE, "name": name, "model": f"models/{job.extra['model']}",
        "displayName": job.extra.get("display_name") or job.id, "state": _STATES[job.state],
        "createTime": _time(job.created), "updateTime": _time(job.ended_at or job.created),
        "batchStats": {"requestCount": str(len(job.items)), "successfulRequestCount": str(job.count(ok=True)),
                       "failedRequestCount": str(job.count(ok=False)),
                       "pendingRequestCount": str(0 if job.ended else job.unanswered)},
    }
    if job.ended:
        metadata["endTime"] = _time(job.ended_at)
        answered = [_response(item) for item in job.items if item.outcome is not None]
        metadata["output"] = {"inlinedResponses": {"inlinedResponses": answered}}
    return {"name": name, "metadata": metadata, "done": job.ended}


def _items(body, model: str) -> list[Item]:
    batch = body.get("batch") if isinstance(body, dict) else None
    requests = (((batch or {}).get("inputConfig") or {}).get("requests") or {}).get("requests")
    if not isinstance(requests, list) or not requests:
        raise ValueError("batch.inputConfig.requests.requests must be a non-empty list")
    items = []
    for number, entry in enumerate(requests):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise ValueError(f"batch.inputConfig.requests.requests[{number}].request is required")
        key = str((entry.get("metadata") or {}).get("key", number))
        items.append(Item(key, model, {**entry["request"], "metadata": entry.get("metadata")}))
    return items


def _job(request: web.Request) -> BatchJob:
    job = request.app[STATE_KEY].batches.get(request.match_info["batch_id"])
    if job is None or job.api != _WIRE.api:
        raise web.HTTPNotFound(text=json.dumps({"error": {"code": 404, "status": "NOT_FOUND", "message":
                                                          f"batches/{request.match_info['batch_id']} not found"}}),
                               content_type="application/json")
    return job


async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(_operation(_job(request)))


async def list_jobs(request: web.Request) -> web.Response:
    """GET /{version}/batches (at v1 a route shared with OpenAI's batches: sandbox/server.py);
    the page token is the last job of the page before."""
    size = page_size(request.query.get("pageSize"), DEFAULT_PAGE, MAX_PAGE)
    if size is None:
        return _error(400, "INVALID_ARGUMENT", f"pageSize must be between 1 and {MAX_PAGE}")
    jobs, more = request.app[STATE_KEY].batches.newest_first(_WIRE.api, request.query.get("pageToken"), size)
    page: dict = {"operations": [_operation(job) for job in jobs]}
    if more:
        page["nextPageToken"] = jobs[-1].id
    return web.json_response(page)


def add_routes(router: web.UrlDispatcher, answer_alone) -> None:
    async def create(request: web.Request) -> web.Response:
        state, model = request.app[STATE_KEY], request.match_info["model"]
        body = await request.json()
        try:
            items = _items(body, model)
        except ValueError as exc:
            return _error(400, "INVALID_ARGUMENT", str(exc))

        def answer(item: Item) -> Outcome:
            call = {key: value for key, value in item.body.items() if key not in ("metadata", "model")}
            return Outcome(*answer_alone(state, _WIRE, call, {"model": model, "action": "generateContent"},
                                         item.custom_id))

        job = state.batches.create(f"{uuid.uuid4().hex[:20]}", _WIRE.api, items, state.rules, answer, model=model,
                                   display_name=body["batch"].get("displayName"))
        return web.json_response(_operation(job))

    async def cancel(request: web.Request) -> web.Response:
        _job(request).cancel()
        return web.json_response({})

    router.add_post("/{version:v1|v1beta}/models/{model}:batchGenerateContent", create)
    router.add_get("/v1beta/batches/{batch_id:[^/:]+}", retrieve)  # /v1/batches/{id}: sandbox/server.py
    router.add_get("/v1beta/batches", list_jobs)  # /v1/batches: sandbox/server.py
    router.add_post("/{version:v1|v1beta}/batches/{batch_id:[^/:]+}:cancel", cancel)
