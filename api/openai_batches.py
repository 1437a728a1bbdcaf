"""OpenAI's Files and Batch APIs at /v1: OpenAI SDK batch code runs against the orchestrator unchanged.

    POST /v1/files (multipart: file, purpose=batch)   GET /v1/files[/{id}[/content]]   DELETE /v1/files/{id}
    POST /v1/batches {input_file_id, endpoint: /v1/chat/completions, completion_window: 24h, metadata?}
    GET  /v1/batches[/{id}]                           POST /v1/batches/{id}/cancel

Each line of the input file, {"custom_id", "method": "POST", "url": "/v1/chat/completions",
"body"}, is read as POST /v1/chat/completions reads its body (api/openai_request.py): its
`model` a catalog model, `auto` or `auto:<strategy>`. The batch is an orchestrator batch
(api/batch.py) whose items run in economy mode (OpenAI's completion window is 24 hours): through
the chosen model's provider's batch API at batch prices, and at once, at the standard price,
for a model whose provider has none. It is the same batch as /api/v1/orchestrator/batch/{id}
shows. Once every item has ended, its output file (`file-{batch}-output`: a line per answered
item with its Chat Completion) and error file (`file-{batch}-errors`: the others, the error in
OpenAI's shape) are made from the items' records when read. Errors are OpenAI's shape: this
module's own, and the orchestrator's converted by api/openai_compat.py.
"""

from __future__ import annotations

import dataclasses
import json
import re

from flask import Blueprint, Response, jsonify, request

from api import services
from api.auth import current_user
from api.batch import ECONOMY_WINDOW, enqueue, own_batch
from api.door_request import Refused, invalid
from api.doors import PREFIX
from api.openai_compat import completion_body
from api.openai_errors import from_orchestrator
from api.openai_request import read_chat
from orchestrator.core.job import RUN_STANDARD, ChatResult, job_from_body, new_batch_id
from workers.queues import DEFAULT_PRIORITY

blp = Blueprint("openai_batches", __name__, url_prefix=PREFIX)

ENDPOINT = "/v1/chat/completions"
PURPOSE = "batch"
OUTPUT, ERRORS = "output", "errors"
_RESULT_FILE = re.compile(r"file-(bat_[0-9a-f]{32})-(output|errors)")
LIST_LIMIT = 100


@blp.before_request
def _batch_body_limit():
    """An input file is a batch: BATCH_MAX_BODY_BYTES instead of MAX_BODY_BYTES."""
    request.max_content_length = services().settings.batch_max_body_bytes


def _not_found(what: str, param: str) -> Refused:
    return Refused(404, f"No such {what}.", param, "not_found")


# --- files ----------------------------------------------------------------------------------

def _file_object(record: dict) -> dict:
    return {"id": record["id"], "object": "file", "bytes": record["bytes"], "created_at": record["created_at"],
            "filename": record["filename"], "purpose": record["purpose"], "status": "processed",
            "expires_at": None, "status_details": None}


def _result_file(file_id: str) -> tuple[dict, str] | None:
    """A batch's output or error file (made from its items when read), if `file_id` names one of the caller's."""
    match = _RESULT_FILE.fullmatch(file_id)
    if match is None:
        return None
    batch = own_batch(match.group(1))
    listed = _batch_object(batch) if batch["openai"] is not None else {}
    if file_id not in (listed.get("output_file_id"), listed.get("error_file_id")):
        raise _not_found(f"file {file_id!r}", "file_id")
    text = "".join(json.dumps(line) + "\n" for line in _result_lines(batch, match.group(2)))
    record = {"id": file_id, "bytes": len(text.encode()), "created_at": int(batch["timing"]["finished_at"] or 0),
              "filename": f"{batch['batch_id']}_{match.group(2)}.jsonl", "purpose": "batch_output"}
    return record, text


def _own_file(file_id: str) -> tuple[dict, str | None]:
    """The caller's file and, for a batch's result file, its text."""
    result = _result_file(file_id)
    if result is not None:
        return result
    record = services().files.get(file_id)
    user = current_user()
    if record is None or (record["owner"] != user.id and not user.admin):
        raise _not_found(f"file {file_id!r}", "file_id")
    return record, None


@blp.post("/files")
def upload_file():
    upload, purpose = request.files.get("file"), request.form.get("purpose")
    if purpose != PURPOSE:
        raise invalid(f"'purpose' must be '{PURPOSE}': this gateway keeps batch input files only.", "purpose")
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    try:
        text = upload.read().decode()
    except UnicodeDecodeError:
        raise invalid("The file is not UTF-8 text: a batch input file is JSON Lines.", "file") from None
    record = services().files.create(current_user().id, upload.filename or "input.jsonl", purpose, text)
    return jsonify(_file_object(record))


@blp.get("/files")
def list_files():
    files = services().files.of_owner(current_user().id, LIST_LIMIT)
    return jsonify({"object": "list", "data": [_file_object(f) for f in files], "has_more": False})


@blp.get("/files/<file_id>")
def retrieve_file(file_id: str):
    return jsonify(_file_object(_own_file(file_id)[0]))


@blp.get("/files/<file_id>/content")
def file_content(file_id: str):
    record, text = _own_file(file_id)
    if text is None:
        text = services().files.content(file_id) or ""
    return Response(text, mimetype="application/jsonl")


@blp.delete("/files/<file_id>")
def delete_file(file_id: str):
    record, text = _own_file(file_id)
    if text is not None:
        raise invalid("A batch's output and error files last as long as the batch.", "file_id")
    services().files.delete(file_id, record["owner"])
    return jsonify({"id": file_id, "object": "file", "deleted": True})


# --- batches --------------------------------------------------------------------------------

def _line_error(number: int, error: Refused) -> Refused:
    return Refused(400, f"Line {number} of the input file: {error.message}", error.param, error.code)


def _lines(text: str) -> list[tuple[str, dict]]:
    """(custom_id, body) of every line, each checked; the first bad line refuses the batch."""
    lines, seen = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise invalid(f"Line {number} of the input file is not JSON.", "input_file_id") from None
        if not isinstance(entry, dict) or entry.get("url") != ENDPOINT or entry.get("method", "POST") != "POST" \
                or not isinstance(entry.get("body"), dict) or not isinstance(entry.get("custom_id"), str):
            raise invalid(f"Line {number} of the input file needs custom_id, method POST, url {ENDPOINT} and a body.",
                          "input_file_id")
        if entry["custom_id"] in seen:
            raise invalid(f"Line {number}: custom_id {entry['custom_id']!r} is not unique.", "input_file_id")
        seen.add(entry["custom_id"])
        lines.append((entry["custom_id"], entry["body"]))
    if not lines:
        raise invalid("The input file holds no requests.", "input_file_id")
    if len(lines) > services().settings.batch_max_items:
        raise invalid(f"The input file holds {len(lines)} requests; a batch holds at most "
                      f"{services().settings.batch_max_items} (BATCH_MAX_ITEMS).", "input_file_id")
    return lines


def _jobs(lines: list[tuple[str, dict]], batch_id: str, owner: str) -> list:
    svc, jobs = services(), []
    for number, (_, body) in enumerate(lines, 1):
        try:
            chat = read_chat(body)
        except Refused as error:
            raise _line_error(number, error) from None
        if chat.stream:
            raise _line_error(number, invalid("A batch's requests cannot stream.", "stream"))
        job = job_from_body(chat.body, owner, svc.settings, **chat.form)
        jobs.append(dataclasses.replace(job, deadline=None, batch=batch_id, priority=DEFAULT_PRIORITY,
                                        economy=RUN_STANDARD))
    return jobs


@blp.post("/batches")
def create_batch():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid("Send a JSON object with input_file_id, endpoint and completion_window.", None, "invalid_json")
    if body.get("endpoint") != ENDPOINT:
        raise invalid(f"'endpoint' must be '{ENDPOINT}'.", "endpoint")
    if body.get("completion_window") != ECONOMY_WINDOW:
        raise invalid(f"'completion_window' must be '{ECONOMY_WINDOW}'.", "completion_window")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object.", "metadata")
    record, _ = _own_file(str(body.get("input_file_id")))
    owner, batch_id = current_user().id, new_batch_id()
    lines = _lines(services().files.content(record["id"]) or "")
    jobs = _jobs(lines, batch_id, owner)
    enqueue(batch_id, owner, DEFAULT_PRIORITY, jobs, [{"custom_id": custom_id} for custom_id, _ in lines],
            openai={"input_file_id": record["id"], "endpoint": ENDPOINT, "metadata": metadata})
    return jsonify(_batch_object(own_batch(batch_id)))


def _ended(batch: dict) -> bool:
    counts = batch["counts"]
    return counts["queued"] == 0 and counts["running"] == 0


def _status(batch: dict) -> str:
    if batch["timing"]["cancelled_at"] is not None:
        return "cancelled" if _ended(batch) else "cancelling"
    return "completed" if _ended(batch) else "in_progress"


def _batch_object(batch: dict) -> dict:
    counts, timing, door = batch["counts"], batch["timing"], batch["openai"]
    status, failed = _status(batch), counts["failed"] + counts["cancelled"]
    ended = status in ("completed", "cancelled")
    seconds: dict = {name: int(value) if value else None for name, value in timing.items()}
    return {
        "id": batch["batch_id"], "object": "batch", "endpoint": door["endpoint"], "errors": None,
        "input_file_id": door["input_file_id"], "completion_window": ECONOMY_WINDOW, "status": status,
        "output_file_id": f"file-{batch['batch_id']}-{OUTPUT}" if ended and counts["completed"] else None,
        "error_file_id": f"file-{batch['batch_id']}-{ERRORS}" if ended and failed else None,
        "created_at": seconds["created_at"], "in_progress_at": seconds["started_at"],
        "expires_at": seconds["created_at"] + 24 * 3600, "finalizing_at": None,
        "completed_at": seconds["finished_at"] if status == "completed" else None, "failed_at": None,
        "expired_at": None, "cancelling_at": seconds["cancelled_at"],
        "cancelled_at": seconds["finished_at"] if status == "cancelled" else None,
        "request_counts": {"total": batch["total"], "completed": counts["completed"], "failed": failed},
        "metadata": door["metadata"],
    }


def _result_lines(batch: dict, kind: str):
    created = int(batch["timing"]["created_at"])
    for status, result, metadata in services().batches.iter_records(batch["batch_id"], batch["total"]):
        custom_id = (metadata or {}).get("custom_id")
        line = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": None, "error": None}
        if status == "completed" and result is not None:
            if kind == OUTPUT:
                answer = ChatResult.from_json(result)
                line["response"] = {"status_code": 200, "request_id": answer.request_id,
                                    "body": completion_body([answer], created)}
                yield line
        elif kind == ERRORS and status == "cancelled":
            line["error"] = {"code": "batch_cancelled", "message": "The batch was cancelled before this request ran."}
            yield line
        elif kind == ERRORS and result is not None:
            converted = from_orchestrator(result["status"], result)
            line["response"] = {"status_code": converted.status, "request_id": None, "body": converted.body}
            yield line


def _own_openai_batch(batch_id: str) -> dict:
    batch = own_batch(batch_id)
    if batch["openai"] is None:
        raise _not_found(f"batch {batch_id!r} made through /v1/batches", "batch_id")
    return batch


@blp.get("/batches")
def list_batches():
    limit = request.args.get("limit", 20, type=int)
    listed = services().batches.of_owner(current_user().id, max(1, min(limit, LIST_LIMIT)))
    data = [_batch_object(batch) for batch in listed if batch["openai"] is not None]
    return jsonify({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None, "has_more": False})


@blp.get("/batches/<batch_id>")
def retrieve_batch(batch_id: str):
    return jsonify(_batch_object(_own_openai_batch(batch_id)))


@blp.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    batch = _own_openai_batch(batch_id)
    if not _ended(batch) and batch["timing"]["cancelled_at"] is None:
        services().batches.cancel(batch_id, batch["total"])
        batch = _own_openai_batch(batch_id)
    return jsonify(_batch_object(batch))

