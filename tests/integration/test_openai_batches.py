"""OpenAI's /v1/files and /v1/batches driven by the official openai SDK against the running stack
(gunicorn, the session's worker and sandbox): files.create, batches.create, batches.retrieve,
files.content; lines for catalog models and auto strategies, run in economy mode through the
sandbox's batch APIs; an item the provider batch fails in the error file; cancel; OpenAI's errors."""

from __future__ import annotations

import io
import json

import openai
import pytest
import requests

from tests.integration.test_openai_compat import web  # noqa: F401 (the module's gunicorn fixture)
from tests.processes import wait_until

PASSES = 40  # seconds: a few of the fleet's periodic passes, then the answers' collection

pytestmark = pytest.mark.usefixtures("fresh_sandbox")


@pytest.fixture
def client(web, api_key):  # noqa: F811
    with openai.OpenAI(base_url=web, api_key=api_key, max_retries=0, timeout=30) as client:
        yield client


def rule(sandbox: str, fault: str, model: str, **params) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", json={"model": model, "fault": fault, **params},
                  timeout=5).raise_for_status()


def upload(client, bodies: dict[str, dict]):
    lines = [{"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
             for custom_id, body in bodies.items()]
    return client.files.create(file=("requests.jsonl", io.BytesIO("\n".join(map(json.dumps, lines)).encode())),
                               purpose="batch")


def ask(model: str, text: str) -> dict:
    return {"model": model, "max_tokens": 40, "messages": [{"role": "user", "content": text}]}


def jsonl(text: str) -> dict[str, dict]:
    return {line["custom_id"]: line for line in map(json.loads, text.splitlines())}


def finished(client, batch_id: str):
    return wait_until(lambda: (b := client.batches.retrieve(batch_id)).status in ("completed", "cancelled") and b,
                      PASSES, f"batch {batch_id}", interval=1)


def test_the_openai_sdk_batch_round_trip(client, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", "*", seconds=0)
    rule(fresh_sandbox, "content_filter", "claude-3-5-haiku-20241022", count=1)
    bodies = {"pinned": ask("gpt-4o-mini", "Name a colour"), "auto": ask("auto", "Name a fruit"),
              "cheap": ask("auto:cost_optimal", "Name a tree"),
              "refused": ask("claude-3-5-haiku-20241022", "Name a river")}
    uploaded = upload(client, bodies)
    assert client.files.retrieve(uploaded.id).bytes == uploaded.bytes
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "in_progress" and batch.request_counts.total == 4 and batch.metadata == {"job": "nightly"}

    done = finished(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
    output = jsonl(client.files.content(done.output_file_id).text)
    assert set(output) == {"pinned", "auto", "cheap"}
    for line in output.values():
        completion = openai.types.chat.ChatCompletion.model_validate(line["response"]["body"])
        assert line["response"]["status_code"] == 200 and completion.choices[0].message.content
    assert output["pinned"]["response"]["body"]["model"] == "gpt-4o-mini"
    errors = jsonl(client.files.content(done.error_file_id).text)
    assert errors["refused"]["response"]["body"]["error"]["code"] == "content_filter"
    attempts = requests.get(f"{fresh_sandbox}/_sandbox/attempts", timeout=5).json()["attempts"]
    assert len(attempts) == 4 and all(a["client_request_id"].startswith(batch.id) for a in attempts)
    assert batch.id in {b.id for b in client.batches.list()}


def test_cancel_and_errors_in_openais_shape(client, fresh_sandbox):
    rule(fresh_sandbox, "batch_delay", "*", seconds=120)
    uploaded = upload(client, {"a": ask("gpt-4o-mini", "Name a colour"), "b": ask("gpt-4o-mini", "Name a bird")})
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.output_file_id is None and done.request_counts.failed == 2
    assert {line["error"]["code"] for line in jsonl(client.files.content(done.error_file_id).text).values()} == {
        "batch_cancelled"}

    bad = upload(client, {"x": ask("no-such-model", "Hi")})
    with pytest.raises(openai.BadRequestError) as refused:  # a bad input file: 400, naming the line
        client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "Line 1" in refused.value.message and refused.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("bat_" + "0" * 32)
    with pytest.raises(openai.BadRequestError) as wrong:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    assert wrong.value.param == "endpoint"
