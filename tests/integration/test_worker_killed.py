"""A worker killed mid-attempt (SIGKILL): the task is delivered again and the request ends
with exactly one answer, counted once."""

from __future__ import annotations

import os
import signal
import threading
import time

import redis
import requests

from orchestrator.store.budgets import Budgets, month_of
from orchestrator.store.users import Users
from tests.processes import free_port, orchestrator, wait_until

MODEL = "claude-3-5-haiku-20241022"


def test_sigkill_mid_request_gives_exactly_one_answer(sandbox, logs, settings):
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    requests.post(f"{sandbox}/_sandbox/faults", timeout=5,
                  json={"model": MODEL, "fault": "slow_first_token", "seconds": 3, "count": 1}).raise_for_status()
    prefix = f"orchkill{os.getpid()}:"
    env = {"REDIS_PREFIX": prefix, "VISIBILITY_TIMEOUT": "3"}
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/orchestrator"
    web = orchestrator("web-kill", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1", log_dir=logs, env=env)
    first = orchestrator("worker-kill-1", "worker", "--concurrency", "2", log_dir=logs, env=env)
    second = None
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        wait_until(lambda: requests.get(f"{base}/health", timeout=5).status_code == 200, 30, "the stack")
        user, issued = Users(client, prefix, default_budget=10).create("kill-test")
        reply = {}
        caller = threading.Thread(target=lambda: reply.update(response=requests.post(
            f"{base}/chat/execute", json={"message": "Tell me about tides", "model": MODEL}, timeout=60,
            headers={"Authorization": f"Bearer {issued.key}"})))
        caller.start()
        attempts = lambda: requests.get(f"{sandbox}/_sandbox/attempts", params={"model": MODEL},  # noqa: E731
                                        timeout=5).json()["attempts"]
        wait_until(lambda: len(attempts()) == 1, 20, "the first attempt to reach the provider")
        first.stop(signal.SIGKILL)
        second = orchestrator("worker-kill-2", "worker", "--concurrency", "2", log_dir=logs, env=env)
        caller.join(60)

        response = reply["response"]
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_used"] == MODEL
        assert len(attempts()) == 2  # the killed attempt and the redelivered one
        events = client.xrange(f"{prefix}events:{body['request_id']}")
        assert [fields["type"] for _, fields in events] == ["final"]
        hours = [k for k in client.scan_iter(match=f"{prefix}stats:{MODEL}:h*")]
        counted = [client.hgetall(k) for k in hours]
        assert sum(int(c.get("ok", 0)) for c in counted) == 1
        assert sum(int(c.get("cost_micro", 0)) for c in counted) == round(body["response"]["cost"] * 1_000_000)
        # The user is billed the answer once, and the killed attempt's reservation is gone.
        budget = Budgets(client, prefix).keys(user.id, month_of(time.time()))
        assert int(client.hget(budget[0], "spent_micro")) == round(body["response"]["cost"] * 1_000_000)
        assert client.hlen(budget[1]) == 0
    finally:
        for process in (web, first, second):
            if process is not None:
                process.stop()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
