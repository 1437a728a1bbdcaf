"""Batches across real processes: a web server and workers of this module's own (under their
own key prefix, so no other worker takes their tasks), started per test as each needs them.

Priorities between batches and before chat, a worker killed mid-batch (SIGKILL), provider
rate limits shared by the workers, the Python client and the CLI."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from orchestrator.store.budgets import Budgets
from orchestrator.store.fleet import Fleet
from orchestrator.store.users import Users
from orchestrator_client import BatchOrchestratorService
from tests.integration.test_monitoring import key, samples
from tests.processes import ROOT, free_port, orchestrator, wait_until
from workers.queues import batch_kombu_priority

ENDED = ("completed", "partially_completed", "failed", "cancelled")
MICRO = 1_000_000
LIMITED = "limited-model"
LIMIT_WINDOW = 2.0  # PROVIDER_LIMIT_WINDOW of this module's processes, so that limits show in seconds
MODELS = f"""
models:
  {LIMITED}:
    provider: openai
    context_window: 16000
    max_output_tokens: 1000
    capabilities: [streaming]
    latency: {{ttft: 0.1, tokens_per_second: 1000}}
    prices: {{input: 1.0, output: 2.0}}
    limits: {{rpm: 120}}   # 4 calls per {LIMIT_WINDOW:g} s window: 3 for batches, 1 kept for chat
"""


class Stack:
    """This module's web server, its workers, and an HTTP client with a user's key."""

    def __init__(self, prefix: str, env: dict, logs: Path, settings):
        self.prefix, self.env, self.logs = prefix, env, logs
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.url}/api/v1/orchestrator"
        self.workers = []
        self.web = orchestrator("batch-web", "web", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                                log_dir=logs, env=env)
        _, issued = Users(self.redis, prefix, default_budget=100).create("batch-fleet")
        self.user_id, self.key = issued.info.user_id, issued.key
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        wait_until(lambda: requests.get(f"{self.base}/health", timeout=2).status_code in (200, 503), 30, "the web")

    def start_worker(self, name: str, *args: str, env: dict | None = None):
        return self.start_workers([(name, args)], env)[0]

    def start_workers(self, specs: list[tuple[str, tuple]], env: dict | None = None) -> list:
        """Start workers together and wait for each one's first heartbeat."""
        started = [orchestrator(name, "worker", *args, log_dir=self.logs, env={**self.env, **(env or {})})
                   for name, args in specs]
        self.workers.extend(started)
        fleet = Fleet(self.redis, self.prefix)
        for process in started:
            mine = f"worker-{process.pid}@"
            try:
                wait_until(lambda mine=mine, process=process: any(h.startswith(mine) for h in fleet.alive())
                           or process.popen.poll() is not None,
                           40, f"worker {process.name}")
            finally:
                if process.popen.poll() is not None:
                    pytest.fail(f"worker {process.name} exited:\n{process.log()}")
        return started

    def stop_workers(self) -> None:
        for process in self.workers:
            process.stop(signal.SIGKILL)  # idle by now: no warm shutdown to wait for
        self.workers.clear()
        self.redis.delete(f"{self.prefix}workers")

    def submit(self, items: list[dict], priority: int = 5) -> str:
        reply = self.http.post(f"{self.base}/batch/submit", json={"requests": items, "priority": priority}, timeout=30)
        assert reply.status_code == 202, reply.text
        return reply.json()["batch_id"]

    def status(self, batch_id: str, **page) -> dict:
        reply = self.http.get(f"{self.base}/batch/{batch_id}/status", params=page, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def wait_ended(self, batch_id: str, timeout: float = 40) -> dict:
        def ended():
            body = self.status(batch_id, limit=0)
            return body if body["status"] in ENDED and body["counts"]["running"] == 0 else None
        return wait_until(ended, timeout, f"batch {batch_id} to end", interval=0.1)

    def results(self, batch_id: str) -> list[dict]:
        return self.status(batch_id, limit=1000)["results"]

    def close(self) -> None:
        self.stop_workers()
        self.web.stop(signal.SIGKILL)  # nothing in flight by now
        for name in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            self.redis.delete(name)


@pytest.fixture(scope="module")
def stack(sandbox, logs, settings, tmp_path_factory):
    models = tmp_path_factory.mktemp("batch-models") / "models.yaml"
    models.write_text(MODELS)
    prefix = f"orchbatch{os.getpid()}:"
    env = {"REDIS_PREFIX": prefix, "MODELS_FILE": str(models), "PROVIDER_LIMIT_WINDOW": str(LIMIT_WINDOW),
           "RATE_LIMIT_REQUESTS": "100000"}
    stack = Stack(prefix, env, logs, settings)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture
def fleet(stack, sandbox):
    """The stack with no worker running (the test starts its own) and a sandbox without
    faults or attempts. These tests come first in the module, before `two_workers`."""
    assert not stack.workers, "a test that starts its own workers runs before the shared ones"
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    yield stack
    stack.stop_workers()
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def two_workers(stack):
    """Two ordinary workers (the last tests of the module share them)."""
    stack.start_workers([("batch-pair-1", ("--concurrency", "4")), ("batch-pair-2", ("--concurrency", "4"))])
    yield stack


@pytest.fixture
def shared(two_workers, sandbox):
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    yield two_workers
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()


def slow(sandbox: str, model: str, seconds: float) -> None:
    requests.post(f"{sandbox}/_sandbox/faults", timeout=5,
                  json={"model": model, "fault": "slow_first_token", "seconds": seconds}).raise_for_status()


def attempts(sandbox: str, model: str | None) -> list[dict]:
    return requests.get(f"{sandbox}/_sandbox/attempts", params={"model": model}, timeout=5).json()["attempts"]


def sent(attempt: dict) -> str:
    return attempt["messages"][-1]["content"]


def test_metrics_tell_how_long_the_oldest_waiting_item_has_waited(fleet, sandbox):
    """No worker takes the batch queue: /metrics counts the items and ages the oldest, its
    age growing from one scrape to the next; a worker then drains the queue, and both fall to 0."""
    batch_id = fleet.submit([{"task": f"waiting {i}", "model": "gpt-4o-mini"} for i in range(3)], priority=2)
    level = str(batch_kombu_priority(2))
    depth, age = key("orchestrator_queue_depth", queue="batch", level=level), \
        key("orchestrator_queue_oldest_age_seconds", queue="batch", level=level)

    def scrape() -> dict:
        return samples(requests.get(f"{fleet.url}/metrics", timeout=10).text)

    first = scrape()
    assert first[depth] == 3
    assert 0 < first[age] < 30
    assert first[key("orchestrator_queue_oldest_age_seconds", queue="chat", level=level)] == 0
    wait_until(lambda: scrape()[age] > first[age] + 0.5, 10, "the oldest item's age to grow")

    fleet.start_worker("batch-drain", "--concurrency", "2", "--queues", "batch")
    assert fleet.wait_ended(batch_id)["status"] == "completed"
    drained = scrape()
    assert (drained[depth], drained[age]) == (0, 0)


def test_a_priority_9_batch_overtakes_an_earlier_priority_1_batch(fleet, sandbox):
    """One worker on the batch queue only, one item at a time: a slow priority-1 batch is
    submitted first, then a priority-9 batch; the latter runs before the rest of the former."""
    model = "gpt-4o-mini"
    slow(sandbox, model, 0.4)
    fleet.start_worker("batch-prio", "--concurrency", "1", "--queues", "batch")
    low = fleet.submit([{"task": f"low {i}", "model": model} for i in range(5)], priority=1)
    wait_until(lambda: attempts(sandbox, model), 20, "the first low-priority item to start")
    high_submitted = time.time()
    high = fleet.submit([{"task": f"high {i}", "model": model} for i in range(3)], priority=9)
    for batch_id in (low, high):
        assert fleet.wait_ended(batch_id)["status"] == "completed"

    log = attempts(sandbox, model)
    order = [sent(a) for a in log]
    before = [sent(a) for a in log if a["time"] < high_submitted]
    assert before == ["low 0"], order  # the one item running when the urgent batch came
    assert order == ["low 0", "high 0", "high 1", "high 2", "low 1", "low 2", "low 3", "low 4"]
    started = {r["index"]: r["started_at"] for r in fleet.results(high)}
    assert max(started.values()) < min(r["started_at"] for r in fleet.results(low)[1:])


def test_chat_is_served_before_queued_batch_items(fleet, sandbox):
    """One worker on both queues (`chat` first, as `orchestrator worker` starts it), one call
    at a time, busy with a priority-9 batch: a chat request goes before the queued items."""
    model = "gpt-4o-mini"
    slow(sandbox, model, 0.4)
    fleet.start_worker("batch-chat", "--concurrency", "1")  # --queues chat,batch, the default
    batch_id = fleet.submit([{"task": f"batch {i}", "model": model} for i in range(4)], priority=9)
    wait_until(lambda: attempts(sandbox, model), 20, "the first batch item to start")
    reply = fleet.http.post(f"{fleet.base}/chat/execute", json={"message": "chat now", "model": model}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert fleet.wait_ended(batch_id)["status"] == "completed"
    order = [sent(a) for a in attempts(sandbox, model)]
    assert order == ["batch 0", "chat now", "batch 1", "batch 2", "batch 3"]


def test_a_worker_killed_mid_batch_leaves_every_item_done_once_and_billed_once(fleet, sandbox):
    """SIGKILL a worker with items in flight: their tasks are delivered again (after a short
    visibility timeout) to a new worker. Every item ends once, the counters are exact, and
    the budget holds exactly the sum of the items' costs."""
    model = "gpt-4o"
    slow(sandbox, model, 0.6)
    quick = {"VISIBILITY_TIMEOUT": "3"}
    first = fleet.start_worker("batch-kill-1", "--concurrency", "4", env=quick)
    spent_before, _ = Budgets(fleet.redis, fleet.prefix).usage(fleet.user_id)
    total = 12
    batch_id = fleet.submit([{"task": f"item {i}", "model": model} for i in range(total)])

    def mid_call():  # a second round of four calls waiting in the sandbox: no thread is taking a task
        return sum(1 for a in attempts(sandbox, model) if a["status"] is None) == 4 and len(
            attempts(sandbox, model)) == 8
    wait_until(mid_call, 30, "a second round of calls in flight")
    first.stop(signal.SIGKILL)
    # The killed worker's unacknowledged tasks go back to the queue once older than the
    # visibility timeout, when a worker starts (or at its periodic sweep).
    unacked = f"{fleet.prefix}unacked_index"
    wait_until(lambda: all(time.time() - score > 3.5 for _, score in fleet.redis.zrange(unacked, 0, -1,
                                                                                        withscores=True)),
               15, "the killed worker's tasks to pass the visibility timeout")
    fleet.start_worker("batch-kill-2", "--concurrency", "4", env=quick)

    done = fleet.wait_ended(batch_id, timeout=60)
    assert done["status"] == "completed"
    assert done["counts"] == {"queued": 0, "running": 0, "completed": total, "failed": 0, "cancelled": 0}
    results = fleet.results(batch_id)
    assert [r["index"] for r in results] == list(range(total))
    assert all(r["status"] == "completed" and len(r["attempts"]) == 1 for r in results)

    calls = collections.Counter(sent(a) for a in attempts(sandbox, model))
    assert set(calls) == {f"item {i}" for i in range(total)}
    assert max(calls.values()) == 2  # the killed calls, made again after redelivery, and no more
    costs = sum(round(r["cost"] * MICRO) for r in results)
    assert round(done["cost"] * MICRO) == costs
    spent, reserved = Budgets(fleet.redis, fleet.prefix).usage(fleet.user_id)
    assert round((spent - spent_before) * MICRO) == costs and reserved == 0  # nothing billed twice, none held
    hours = fleet.redis.scan_iter(match=f"{fleet.prefix}stats:{model}:h*")
    assert sum(int(fleet.redis.hget(key, "ok") or 0) for key in hours) == total  # each answer counted once


def test_provider_rate_limits_make_items_wait_not_fail(shared, sandbox):
    """A model limited to 120 rpm, counted per 2 s window (4 calls, 3 of them for batches),
    and two workers: the items wait for slots and all succeed, and the provider never sees
    more than the limit in any window."""
    fleet = shared
    total = 9
    batch_id = fleet.submit([{"task": f"limited {i}", "model": LIMITED} for i in range(total)])
    done = fleet.wait_ended(batch_id, timeout=40)
    assert done["status"] == "completed" and done["counts"]["completed"] == total

    arrivals = sorted(a["time"] for a in attempts(sandbox, LIMITED))
    assert len(arrivals) == total  # no 429 and no retry: each item called the model once
    busiest = max(sum(1 for t in arrivals if start <= t < start + LIMIT_WINDOW) for start in arrivals)
    assert busiest <= 3, [round(t - arrivals[0], 3) for t in arrivals]  # the batch lane's 3 of the 4 calls
    assert arrivals[-1] - arrivals[0] >= 2 * LIMIT_WINDOW  # 9 calls at 3 a window: they waited
    assert all(len(r["attempts"]) == 1 for r in fleet.results(batch_id))


def test_python_client_and_cli(shared, tmp_path):
    fleet = shared
    service = BatchOrchestratorService(fleet.url, fleet.key)

    async def use_the_client():
        batch_id = await service.submit_batch(["What is 2 + 2?", {"task": "Name a colour", "metadata": {"k": 1}}],
                                              user_id=42, priority=8)
        ended = await service.wait_for_batch(batch_id, poll_interval=0.1, timeout=30)
        return batch_id, ended, await service.get_batch_status(batch_id), await service.get_batch_results(batch_id)

    batch_id, ended, status, results = asyncio.run(use_the_client())
    assert ended["status"] == "completed" and status["priority"] == 8
    assert [r["metadata"] for r in results] == [None, {"k": 1}] and all(r["content"] for r in results)

    requests_file = tmp_path / "requests.jsonl"
    requests_file.write_text('{"task": "Say one"}\n\n{"task": "Say two", "max_tokens": 20}\n')
    env = {**os.environ, "ORCHESTRATOR_URL": fleet.url, "ORCHESTRATOR_API_KEY": fleet.key}
    cli = [sys.executable, "-m", "orchestrator.runtime.cli", "batch"]
    run = subprocess.run([*cli, "submit", str(requests_file), "--priority", "7", "--wait", "--poll", "0.2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "completed" in run.stdout and "Submitted batch bat_" in run.stdout
    cli_batch = run.stdout.split("Submitted batch ", 1)[1].split(":", 1)[0]
    shown = subprocess.run([*cli, "status", cli_batch], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "completed" in shown.stdout
    missing = subprocess.run([*cli, "status", "bat_missing"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=30)
    assert missing.returncode == 1 and "not_found" in missing.stderr
