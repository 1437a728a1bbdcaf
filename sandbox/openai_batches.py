"""OpenAI's Files and Batch APIs: a JSONL file of Chat Completions calls uploaded, a batch made
of it, polled, cancelled, and its output and error files downloaded.

    POST /v1/files (multipart: file, purpose)     GET /v1/files[/{id}[/content]]     DELETE /v1/files/{id}
    POST /v1/batches {input_file_id, endpoint, completion_window, metadata?}
    GET  /v1/batches[/{id}]                        POST /v1/batches/{id}/cancel
    GET  /v1/batches?after=&limit=                 newest first: {"data", "first_id", "last_id", "has_more"}

A line of the input file is {"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}. When the batch ends, answered lines go to its output file ({"id", "custom_id",
"response": {"status_code": 200, "request_id", "body"}, "error": null}), failed ones to its error
file (the same with the error's status and body), and lines never answered to the error file
too, with `error` {"code": "batch_expired" | "batch_cancelled"}.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

from sandbox.batch_jobs import CANCELLED, EXPIRED, BatchJob, Item, Outcome, page_size
from sandbox.openai_wire import OpenAIWire
from sandbox.state import STATE_KEY, SandboxState

ENDPOINT = "/v1/chat/completions"
WINDOW = 24 * 3600
DEFAULT_LIMIT, MAX_LIMIT = 20, 100  # batches a page of the list
_WIRE = OpenAIWire()
_STATUS = {"in_progress": "in_progress", "completed": "completed", EXPIRED: "expired", CANCELLED: "cancelled"}
_UNANSWERED = {EXPIRED: ("batch_expired", "This request could not be executed before the completion window expired."),
               CANCELLED: ("batch_cancelled", "This request was not executed because the batch was cancelled.")}


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def as_json(self) -> dict:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    return web.json_response(_error_body(message, param), status=status)


def _error_body(message: str, param: str | None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


def _not_found(message: str, param: str | None) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps(_error_body(message, param)), content_type="application/json")


def _store(state: SandboxState, filename: str, purpose: str, data: bytes) -> StoredFile:
    stored = StoredFile(f"file-{uuid.uuid4().hex[:24]}", filename, purpose, data, int(time.time()))
    state.files[stored.id] = stored
    return stored


async def upload(request: web.Request) -> web.Response:
    form = await request.post()
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(purpose, str) or not purpose:
        return _error(400, "Missing required parameter: 'purpose'.", "purpose")
    if not isinstance(upload, web.FileField):
        return _error(400, "Missing required parameter: 'file'.", "file")
    return web.json_response(_store(request.app[STATE_KEY], upload.filename, purpose, upload.file.read()).as_json())


def _file(request: web.Request) -> StoredFile:
    stored = request.app[STATE_KEY].files.get(request.match_info["file_id"])
    if stored is None:
        raise _not_found(f"No such File object: {request.match_info['file_id']}", "id")
    return stored


async def list_files(request: web.Request) -> web.Response:
    files = [f.as_json() for f in request.app[STATE_KEY].files.values()]
    return web.json_response({"object": "list", "data": files, "has_more": False})


async def retrieve_file(request: web.Request) -> web.Response:
    return web.json_response(_file(request).as_json())


async def file_content(request: web.Request) -> web.Response:
    return web.Response(body=_file(request).data, content_type="application/octet-stream")


async def delete_file(request: web.Request) -> web.Response:
    stored = _file(request)
    del request.app[STATE_KEY].files[stored.id]
    return web.json_response({"id": stored.id, "object": "file", "deleted": True})


def _items(data: bytes) -> list[Item]:
    items = []
    for number, line in enumerate(data.decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(entry, dict) or entry.get("url") != ENDPOINT or not isinstance(entry.get("body"), dict):
            raise ValueError(f"line {number}: each line needs custom_id, method POST, url {ENDPOINT} and a body")
        items.append(Item(str(entry.get("custom_id")), str(entry["body"].get("model")), entry["body"]))
    if not items:
        raise ValueError("the input file holds no requests")
    return items


def _timestamps(job: BatchJob) -> dict:
    created, ended = int(job.created), job.ended_at and int(job.ended_at)
    return {
        "created_at": created, "in_progress_at": created, "expires_at": created + WINDOW,
        "finalizing_at": ended if job.state == "completed" else None,
        "completed_at": ended if job.state == "completed" else None, "failed_at": None,
        "expired_at": ended if job.state == EXPIRED else None,
        "cancelling_at": job.cancelled_at and int(job.cancelled_at),
        "cancelled_at": job.cancelled_at and int(job.cancelled_at),
    }


def _line(item: Item, outcome: Outcome | None, reason: str) -> dict:
    line = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": item.custom_id, "response": None, "error": None}
    if outcome is not None:
        line["response"] = {"status_code": outcome.status, "request_id": f"req_{uuid.uuid4().hex}",
                            "body": outcome.body}
    else:
        code, message = _UNANSWERED[reason]
        line["error"] = {"code": code, "message": message}
    return line


def _write_results(state: SandboxState, job: BatchJob) -> None:
    """The output and error files of a batch that has ended, once (each only when it has lines)."""
    if not job.ended or "output_file_id" in job.extra:
        return
    answered = [_line(i, i.outcome, job.state) for i in job.items if i.outcome is not None and i.outcome.ok]
    failed = [_line(i, i.outcome, job.state) for i in job.items if i.outcome is None or not i.outcome.ok]
    for name, lines in (("output_file_id", answered), ("error_file_id", failed)):
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        job.extra[name] = _store(state, f"{job.id}_{name[:-8]}.jsonl", "batch_output", data).id if lines else None


def _batch(state: SandboxState, job: BatchJob, status: str | None = None) -> dict:
    _write_results(state, job)
    failed = job.count(ok=False) + (job.unanswered if job.ended else 0)
    return {
        "id": job.id, "object": "batch", "endpoint": ENDPOINT, "errors": None,
        "input_file_id": job.extra["input_file_id"], "completion_window": "24h",
        "status": status or _STATUS[job.state],
        "output_file_id": job.extra.get("output_file_id"), "error_file_id": job.extra.get("error_file_id"),
        **_timestamps(job),
        "request_counts": {"total": len(job.items), "completed": job.count(ok=True), "failed": failed},
        "metadata": job.extra.get("metadata"),
    }


def _job(request: web.Request) -> BatchJob:
    job = request.app[STATE_KEY].batches.get(request.match_info["batch_id"])
    if job is None or job.api != _WIRE.api:
        raise _not_found(f"No batch found with id '{request.match_info['batch_id']}'.", None)
    return job


async def retrieve(request: web.Request) -> web.Response:
    """GET /v1/batches/{id} (a route shared with Gemini's jobs: sandbox/server.py)."""
    return web.json_response(_batch(request.app[STATE_KEY], _job(request)))


async def list_batches(request: web.Request) -> web.Response:
    """GET /v1/batches (a route shared with Gemini's jobs: sandbox/server.py)."""
    state = request.app[STATE_KEY]
    limit = page_size(request.query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    if limit is None:
        return _error(400, f"limit must be between 1 and {MAX_LIMIT}.", "limit")
    jobs, more = state.batches.newest_first(_WIRE.api, request.query.get("after"), limit)
    data = [_batch(state, job) for job in jobs]
    return web.json_response({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None, "has_more": more})


def add_routes(router: web.UrlDispatcher, answer_alone) -> None:
    async def create(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        body = await request.json()
        if body.get("endpoint") != ENDPOINT:
            return _error(400, f"This sandbox batches {ENDPOINT} only.", "endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be 24h.", "completion_window")
        stored = state.files.get(body.get("input_file_id"))
        if stored is None:
            return _error(404, f"No such File object: {body.get('input_file_id')}", "input_file_id")
        try:
            items = _items(stored.data)
        except ValueError as exc:
            return _error(400, f"The input file is invalid: {exc}.", "input_file_id")

        def answer(item: Item) -> Outcome:
            return Outcome(*answer_alone(state, _WIRE, item.body, {}, item.custom_id))

        job = state.batches.create(f"batch_{uuid.uuid4().hex[:24]}", _WIRE.api, items, state.rules, answer,
                                   input_file_id=stored.id, metadata=body.get("metadata"))
        return web.json_response(_batch(state, job))

    async def cancel(request: web.Request) -> web.Response:
        job = _job(request)
        job.cancel()
        state = request.app[STATE_KEY]
        return web.json_response(_batch(state, job, "cancelling" if job.state == CANCELLED else None))

    router.add_post("/v1/files", upload)
    router.add_get("/v1/files", list_files)
    router.add_get("/v1/files/{file_id}", retrieve_file)
    router.add_get("/v1/files/{file_id}/content", file_content)
    router.add_delete("/v1/files/{file_id}", delete_file)
    router.add_post("/v1/batches", create)
    router.add_post("/v1/batches/{batch_id}/cancel", cancel)
