"""One chat request end to end: API -> chat queue -> real worker -> openai SDK -> sandbox."""

from __future__ import annotations

import requests


def direct_answer(sandbox: str, model: str, messages: list[dict], max_tokens: int) -> dict:
    """What the sandbox answers when called directly, without the orchestrator."""
    reply = requests.post(f"{sandbox}/v1/chat/completions", timeout=10,
                          json={"model": model, "messages": messages, "max_tokens": max_tokens})
    return reply.json()


def test_execute_answers_through_worker_and_sandbox(client, redis_client, settings, sandbox):
    reply = client.post(
        "/api/v1/orchestrator/chat/execute",
        json={"message": "Explain machine learning", "strategy": "balanced", "max_tokens": 1000},
    )
    assert reply.status_code == 200, reply.get_json()
    body = reply.get_json()
    # The sandbox's deterministic answer to exactly this conversation came back.
    direct = direct_answer(sandbox, body["model_used"], [{"role": "user", "content": "Explain machine learning"}], 1000)
    assert body["response"]["content"] == direct["choices"][0]["message"]["content"]
    assert body["response"]["usage"]["output_tokens"] == direct["usage"]["completion_tokens"]
    assert body["response"]["sandbox"] is True
    assert body["model_used"] == body["response"]["model"] == body["routing_decision"]["chosen_model"]
    assert body["response"]["cost"] > 0
    assert body["routing_decision"]["reasoning"].startswith("balanced strategy: cost: $")
    # The request record says the worker finished it.
    record = redis_client.hgetall(f"{settings.redis_prefix}req:{body['request_id']}")
    assert record["status"] == "completed"


def test_system_prompt_and_max_tokens_reach_the_provider(client, sandbox):
    reply = client.post(
        "/api/v1/orchestrator/chat/execute",
        json={"message": "Write a Python function for binary search", "system_prompt": "You are a coding expert",
              "temperature": 0.2, "max_tokens": 5, "model": "gpt-4o"},
    )
    body = reply.get_json()
    assert reply.status_code == 200, body
    direct = direct_answer(sandbox, "gpt-4o", [{"role": "system", "content": "You are a coding expert"},
                                              {"role": "user", "content": "Write a Python function for binary search"}], 5)
    assert body["response"]["content"] == direct["choices"][0]["message"]["content"]
    assert body["response"]["usage"]["output_tokens"] == 5
    assert body["response"]["finish_reason"] == "length"


def test_a_request_is_served_after_redis_forgot_its_scripts(client, redis_client):
    """A restarted Redis knows no Lua script: the worker's round trip loads its scripts again."""
    redis_client.script_flush()
    reply = client.post("/api/v1/orchestrator/chat/execute", json={"message": "hello"})
    assert reply.status_code == 200, reply.get_json()


def test_a_worker_that_cannot_read_its_inputs_ends_the_request_with_a_500(client, redis_client, settings, app):
    """Not a hang until the deadline: the error reaches the caller at once."""
    owner = app.extensions["orchestrator"].users.list_all()[-1].id
    redis_client.set(f"{settings.redis_prefix}conv:{owner}:broken", "not a list")  # the history read fails
    reply = client.post("/api/v1/orchestrator/chat/execute", json={"message": "hello", "conversation_id": "broken"})
    assert reply.status_code == 500 and reply.get_json()["error"]["code"] == "internal_error", reply.get_json()


def test_a_finished_request_is_not_answered_twice(client, settings):
    from orchestrator.core.job import ChatJob
    from workers.tasks import services

    reply = client.post("/api/v1/orchestrator/chat/execute", json={"message": "hello"})
    request_id = reply.get_json()["request_id"]
    store = services().requests
    events_before = store.redis.xlen(store.events_key(request_id))
    # A redelivered task for the same request id changes nothing.
    services().executor.run(request_id, ChatJob.from_json({"messages": [{"role": "user", "content": "other"}]}))
    assert store.redis.xlen(store.events_key(request_id)) == events_before
    assert store.get(request_id)["result"]["response"]["content"] == reply.get_json()["response"]["content"]


def test_a_job_this_worker_cannot_read_ends_at_once_with_a_500(services, worker):
    from orchestrator.core.job import JOB_VERSION
    from workers.app import app as celery_app
    from workers.dispatch import EXECUTE_CHAT

    services.requests.create("req_from_the_future", "admin", "chat")
    job = {"messages": [{"role": "user", "content": "hi"}], "version": JOB_VERSION + 1}
    celery_app.send_task(EXECUTE_CHAT, args=["req_from_the_future", job], task_id="req_from_the_future",
                         queue="chat")
    kind, error = services.requests.wait_terminal("req_from_the_future", timeout=15)
    assert kind == "error" and (error["status"], error["code"]) == (500, "unreadable_job")
    assert "newer than this worker's" in error["message"]
