"""BROKER_URL puts Celery's queues on a Redis of their own (here another database of the test
Redis): a web process and a worker of this module's own answer a chat request through it,
no queue key is left in the main Redis, and /health and /metrics read the queues where they are;
a broker nobody answers makes /health say so."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests

from orchestrator.store.fleet import Fleet
from orchestrator.store.users import Users
from tests.processes import free_port, orchestrator, wait_until

pytestmark = pytest.mark.usefixtures("fresh_sandbox")


def other_database(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{(int(parts.path.strip('/') or 0) + 1) % 16}"))


def start_web(logs, env: dict) -> tuple[object, str]:
    port = free_port()
    web = orchestrator(f"broker-web-{port}", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1", log_dir=logs,
                       env=env)
    root = f"http://127.0.0.1:{port}/api/v1/orchestrator"
    wait_until(lambda: requests.get(f"{root}/health/live", timeout=2).ok, 30, "the web")
    return web, root


@pytest.fixture(scope="module")
def apart(settings, sandbox, logs):
    prefix = f"orchbroker{os.getpid()}:"
    broker_url = other_database(settings.redis_url)
    env = {"REDIS_PREFIX": prefix, "BROKER_URL": broker_url}
    main, broker = (redis.Redis.from_url(url, decode_responses=True) for url in (settings.redis_url, broker_url))
    # Chat only: batch items stay on their queue, for /health and /metrics to count where it is.
    worker = orchestrator("broker-worker", "worker", "--concurrency", "2", "--queues", "chat", log_dir=logs, env=env)
    web, root = start_web(logs, env)
    try:
        wait_until(lambda: Fleet(main, prefix).alive() or worker.popen.poll() is not None, 40, "the worker")
        assert worker.popen.poll() is None, worker.log()
        _, issued = Users(main, prefix, default_budget=100).create("apart")
        yield root, issued.key, main, broker, prefix
    finally:
        worker.stop(signal.SIGKILL)
        web.stop(signal.SIGKILL)
        for client in (main, broker):
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)


def test_chat_goes_through_the_broker_apart_and_health_reads_its_queues(apart):
    root, key, main, broker, prefix = apart
    headers = {"Authorization": f"Bearer {key}"}
    reply = requests.post(f"{root}/chat/execute", json={"message": "Hello there"}, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"]["content"]
    assert any(broker.scan_iter(match=f"{prefix}_kombu*")), "the worker's queue bindings are in the broker's Redis"
    assert not any(main.scan_iter(match=f"{prefix}_kombu*")) and not main.exists(f"{prefix}unacked")
    assert main.exists(f"{prefix}req:{reply.json()['request_id']}")  # the request store stays in the main Redis
    batch = requests.post(f"{root}/batch/submit", json={"requests": [{"task": f"item {i}"} for i in range(3)]},
                          headers=headers, timeout=30)
    assert batch.status_code == 202, batch.text
    health = requests.get(f"{root}/health", headers=headers, timeout=10).json()
    assert health["status"] == "healthy" and health["redis"]["broker"]["ok"] is True
    assert sum(health["queues"]["batch"].values()) == 3
    metrics = requests.get(root.replace("/api/v1/orchestrator", "/metrics"), headers=headers, timeout=10).text
    waiting = [line for line in metrics.splitlines()
               if line.startswith("orchestrator_queue_depth{") and 'queue="batch"' in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in waiting) == 3


def test_a_broker_nobody_answers_makes_health_unhealthy(settings, sandbox, logs):
    env = {"REDIS_PREFIX": f"orchbrokerdown{os.getpid()}:", "BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    web, root = start_web(logs, env)
    try:
        reply = requests.get(f"{root}/health", timeout=10)
        assert reply.status_code == 503
        body = reply.json()
        assert body["redis"]["ok"] is True and body["redis"]["broker"]["ok"] is False
        assert any("broker" in reason for reason in body["reasons"])
    finally:
        web.stop(signal.SIGKILL)
