"""With Redis stopped the gateway answers 503 with a clear message; when Redis returns it
serves again without restarting anything."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import redis
import requests

from orchestrator.store.users import Users
from tests.processes import Process, free_port, orchestrator, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on the PATH")


def start_redis(port: int, log_dir) -> Process:
    return Process(
        f"redis-{port}",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(log_dir)],
        log_dir,
    )


def bearer(redis_port: int, settings) -> dict:
    """The header of a new user's key, in the Redis on that port."""
    users = Users.for_settings(redis.Redis(port=redis_port, decode_responses=True), settings)
    return {"Authorization": f"Bearer {users.create('outage')[1].key}"}


def test_redis_outage_gives_503_and_recovers(sandbox, logs, settings):
    redis_port, web_port = free_port(), free_port()
    env = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    base = f"http://127.0.0.1:{web_port}/api/v1/orchestrator"
    redis_server = start_redis(redis_port, logs)
    web = orchestrator("web-outage", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "1",
                       log_dir=logs, env=env)
    worker = orchestrator("worker-outage", "worker", "--concurrency", "2", log_dir=logs, env=env)
    try:
        wait_until(lambda: requests.get(f"{base}/health", timeout=5).status_code == 200, 30, "a healthy stack")
        auth = bearer(redis_port, settings)
        assert requests.post(f"{base}/chat/execute", json={"message": "before"}, headers=auth, timeout=30).status_code == 200

        redis_server.stop()
        health = requests.get(f"{base}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        assert any("Redis unreachable" in reason for reason in health.json()["reasons"])
        chat = requests.post(f"{base}/chat/execute", json={"message": "during"}, headers=auth, timeout=30)
        assert chat.status_code == 503
        assert chat.json()["error"]["code"] == "redis_unavailable"
        assert "REDIS_URL" in chat.json()["error"]["message"]

        redis_server = start_redis(redis_port, logs)
        wait_until(lambda: requests.get(f"{base}/health", timeout=5).status_code == 200, 60, "recovery")
        # This Redis keeps nothing across a restart, users and keys included: a key issued now
        # shows that authentication, as everything else, works again without a restart.
        auth = bearer(redis_port, settings)
        after = requests.post(f"{base}/chat/execute", json={"message": "after"}, headers=auth, timeout=30)
        assert after.status_code == 200, after.text
        assert after.json()["response"]["content"]
    finally:
        for process in (web, worker, redis_server):
            process.stop()


def test_an_answer_in_hand_outlives_a_redis_outage_and_is_billed_once(sandbox, logs, settings, tmp_path):
    """Redis stops while a worker waits for a slow answer, and comes back (with its data) after
    the answer arrived: the worker publishes and bills it then, instead of dropping it with the
    request left running for a day."""
    redis_port, web_port = free_port(), free_port()
    env = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}

    def durable_redis() -> Process:  # an append-only file, so the restart finds the request again
        return Process(f"redis-durable-{redis_port}",
                       ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "yes", "--appendfsync", "always", "--dir", str(tmp_path)], logs)

    redis_server = durable_redis()
    web = orchestrator("web-held", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "1", log_dir=logs, env=env)
    worker = orchestrator("worker-held", "worker", "--concurrency", "2", log_dir=logs, env=env)
    store = redis.Redis(port=redis_port, decode_responses=True)
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    try:
        base = f"http://127.0.0.1:{web_port}/api/v1/orchestrator"
        wait_until(lambda: requests.get(f"{base}/health", timeout=5).status_code == 200, 30, "a healthy stack")
        users = Users.for_settings(store, settings)
        user, issued = users.create("held")
        requests.post(f"{sandbox}/_sandbox/faults", json={"model": "gpt-4o-mini", "fault": "slow_first_token",
                                                          "seconds": 3}, timeout=5).raise_for_status()
        replies = []
        caller = threading.Thread(target=lambda: replies.append(requests.post(
            f"{base}/chat/execute", json={"message": "slow one", "model": "gpt-4o-mini"},
            headers={"Authorization": f"Bearer {issued.key}"}, timeout=60)), daemon=True)
        caller.start()

        def attempts() -> list[dict]:
            return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": "gpt-4o-mini"},
                                timeout=5).json()["attempts"]

        wait_until(lambda: attempts() or replies, 20, "the provider call to start")
        assert not replies, replies[0].text
        request_id = next(key.split(":", 2)[-1] for key in store.scan_iter(f"{settings.redis_prefix}req:*"))
        redis_server.stop()
        wait_until(lambda: attempts()[0]["ended"] == "completed", 20, "the answer to arrive while Redis is away")
        redis_server = durable_redis()
        record_key = f"{settings.redis_prefix}req:{request_id}"
        wait_until(lambda: store.hget(record_key, "status") == "completed", 30, "the held answer to be published")
        spent = store.hget(f"{settings.redis_prefix}budget:{user.id}:{time.strftime('%Y-%m', time.gmtime())}",
                           "spent_micro")
        assert spent is not None and int(spent) > 0
        assert len(attempts()) == 1  # published from the answer in hand, not asked again
    finally:
        requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
        for process in (web, worker, redis_server):
            process.stop()
