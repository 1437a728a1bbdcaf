"""The sandbox's batch APIs through the real SDKs: OpenAI files and batches, Anthropic message
batches, Gemini batch jobs; their completion delay, per-item failures, expiry and cancellation
set through the fault rules."""

from __future__ import annotations

import io
import json

import requests
from google.genai import types

from sandbox.conversation import Conversation
from sandbox.reply import reply_to
from tests.processes import wait_until

GPT, CLAUDE, GEMINI = "gpt-4o-mini", "claude-3-5-haiku-20241022", "gemini-2.5-flash"
QUESTIONS = ["What is TCP?", "What is UDP?", "What is QUIC?"]


def rule(sandbox, fault: str, model: str, **params) -> None:
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"model": model, "fault": fault, **params},
                  timeout=5).raise_for_status()


def expected(question: str, max_tokens: int = 50) -> str:
    return reply_to(Conversation.of([], [("user", question)]), max_tokens).text


def openai_batch(oai, model: str = GPT, **options):
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": q}]}}
             for i, q in enumerate(QUESTIONS)]
    uploaded = oai.files.create(file=("in.jsonl", io.BytesIO("\n".join(map(json.dumps, lines)).encode())),
                                purpose="batch")
    return oai.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
                              **options)


def jsonl(text: str) -> dict[str, dict]:
    return {line["custom_id"]: line for line in map(json.loads, text.splitlines())}


def test_openai_batch_answers_each_line_after_its_delay(sandbox, oai):
    rule(sandbox, "batch_delay", GPT, seconds=0.3)
    batch = openai_batch(oai)
    assert batch.status == "in_progress" and batch.request_counts.total == 3 and batch.output_file_id is None
    done = wait_until(lambda: (b := oai.batches.retrieve(batch.id)).status == "completed" and b, 5, "the batch")
    assert done.request_counts.completed == 3 and done.error_file_id is None
    output = jsonl(oai.files.content(done.output_file_id).text)
    for i, question in enumerate(QUESTIONS):
        response = output[f"q{i}"]["response"]
        assert response["status_code"] == 200
        assert response["body"]["choices"][0]["message"]["content"] == expected(question)
    assert [a["client_request_id"] for a in requests.get(f"{sandbox.url}/_sandbox/attempts").json()["attempts"]] == [
        "q0", "q1", "q2"]


def test_openai_batch_item_failures_go_to_the_error_file(sandbox, oai):
    rule(sandbox, "batch_delay", GPT, seconds=0)
    rule(sandbox, "server_error", GPT, count=1)
    done = oai.batches.retrieve(openai_batch(oai).id)
    assert done.status == "completed" and (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    errors = jsonl(oai.files.content(done.error_file_id).text)
    assert errors["q0"]["response"]["status_code"] == 500
    assert set(jsonl(oai.files.content(done.output_file_id).text)) == {"q1", "q2"}


def test_openai_batch_expires_and_cancels(sandbox, oai):
    rule(sandbox, "batch_delay", GPT, seconds=0, count=1)
    rule(sandbox, "batch_expire", GPT, after_items=1, count=1)
    expired = oai.batches.retrieve(openai_batch(oai).id)
    assert expired.status == "expired" and expired.request_counts.failed == 2
    assert {k: v["error"]["code"] for k, v in jsonl(oai.files.content(expired.error_file_id).text).items()} == {
        "q1": "batch_expired", "q2": "batch_expired"}

    rule(sandbox, "batch_delay", GPT, seconds=60)
    cancelling = oai.batches.cancel(openai_batch(oai).id)
    assert cancelling.status == "cancelling"
    cancelled = oai.batches.retrieve(cancelling.id)
    assert cancelled.status == "cancelled" and cancelled.output_file_id is None
    assert {v["error"]["code"] for v in jsonl(oai.files.content(cancelled.error_file_id).text).values()} == {
        "batch_cancelled"}


def claude_requests(model: str = CLAUDE) -> list[dict]:
    return [{"custom_id": f"q{i}", "params": {"model": model, "max_tokens": 50,
                                              "messages": [{"role": "user", "content": q}]}}
            for i, q in enumerate(QUESTIONS)]


def test_anthropic_message_batch_results(sandbox, claude):
    rule(sandbox, "batch_delay", CLAUDE, seconds=0.3)
    rule(sandbox, "rate_limit", CLAUDE, count=1)
    batch = claude.messages.batches.create(requests=claude_requests())
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
    ended = wait_until(lambda: (b := claude.messages.batches.retrieve(batch.id)).processing_status == "ended" and b,
                       5, "the batch")
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (2, 1)
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert results["q0"].type == "errored" and results["q0"].error.error.type == "rate_limit_error"
    assert results["q1"].type == "succeeded" and results["q1"].message.content[0].text == expected(QUESTIONS[1])


def test_anthropic_message_batch_cancel_and_expiry(sandbox, claude):
    rule(sandbox, "batch_delay", CLAUDE, seconds=60, count=1)
    canceling = claude.messages.batches.cancel(claude.messages.batches.create(requests=claude_requests()).id)
    assert canceling.processing_status == "canceling"
    ended = claude.messages.batches.retrieve(canceling.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 3
    assert {r.result.type for r in claude.messages.batches.results(ended.id)} == {"canceled"}

    rule(sandbox, "batch_delay", CLAUDE, seconds=0)
    rule(sandbox, "batch_expire", CLAUDE, after_items=2)
    expired = claude.messages.batches.retrieve(claude.messages.batches.create(requests=claude_requests()).id)
    assert (expired.request_counts.succeeded, expired.request_counts.expired) == (2, 1)


def gemini_requests() -> list[types.InlinedRequest]:
    return [types.InlinedRequest(contents=q, metadata={"key": f"q{i}"},
                                 config=types.GenerateContentConfig(max_output_tokens=50))
            for i, q in enumerate(QUESTIONS)]


def test_gemini_batch_job_inlined_responses(sandbox, gemini):
    rule(sandbox, "batch_delay", GEMINI, seconds=0.3)
    rule(sandbox, "unavailable", GEMINI, count=1)
    job = gemini.batches.create(model=GEMINI, src=gemini_requests())
    assert job.state == types.JobState.JOB_STATE_RUNNING and job.name.startswith("batches/")
    done = wait_until(lambda: (j := gemini.batches.get(name=job.name)).done and j, 5, "the batch")
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    responses = {r.metadata["key"]: r for r in done.dest.inlined_responses}
    assert responses["q0"].error.code == 503
    assert responses["q2"].response.text == expected(QUESTIONS[2])


def test_gemini_batch_job_cancel_and_expiry(sandbox, gemini):
    rule(sandbox, "batch_delay", GEMINI, seconds=60, count=1)
    job = gemini.batches.create(model=GEMINI, src=gemini_requests())
    gemini.batches.cancel(name=job.name)
    cancelled = gemini.batches.get(name=job.name)
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED and not cancelled.dest.inlined_responses

    rule(sandbox, "batch_delay", GEMINI, seconds=0)
    rule(sandbox, "batch_expire", GEMINI, after_items=1)
    expired = gemini.batches.get(name=gemini.batches.create(model=GEMINI, src=gemini_requests()).name)
    assert expired.state == types.JobState.JOB_STATE_EXPIRED
    assert [r.metadata["key"] for r in expired.dest.inlined_responses] == ["q0"]


def test_openai_batches_listed_newest_first_by_pages_with_their_metadata(sandbox, oai):
    rule(sandbox, "batch_delay", GPT, seconds=60)
    made = [openai_batch(oai, metadata={"n": str(n)}).id for n in range(3)]
    first = oai.batches.list(limit=2)
    assert [b.id for b in first.data] == made[:0:-1] and first.has_more
    assert [(b.id, b.metadata) for b in oai.batches.list(limit=2)] == [
        (batch_id, {"n": str(n)}) for n, batch_id in reversed(list(enumerate(made)))]  # the SDK pages on


def test_anthropic_message_batches_listed_newest_first_by_pages(sandbox, claude):
    made = [claude.messages.batches.create(requests=claude_requests()).id for _ in range(3)]
    first = claude.messages.batches.list(limit=2)
    assert [b.id for b in first.data] == made[:0:-1] and first.has_more and first.last_id == made[1]
    assert [b.id for b in claude.messages.batches.list(limit=2)] == made[::-1]
    assert {b.request_counts.processing + b.request_counts.succeeded for b in first.data} == {3}


def test_gemini_batch_jobs_listed_by_pages_with_their_display_names(sandbox, gemini):
    made = [gemini.batches.create(model=GEMINI, src=gemini_requests(),
                                  config=types.CreateBatchJobConfig(display_name=f"job {n}")).name for n in range(3)]
    listed = list(gemini.batches.list(config=types.ListBatchJobsConfig(page_size=2)))
    assert [(job.name, job.display_name) for job in listed] == [(name, f"job {n}") for n, name in
                                                                reversed(list(enumerate(made)))]
    assert all(job.create_time is not None for job in listed)
