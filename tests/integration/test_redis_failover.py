"""Redis under Sentinel: a master, a replica and three sentinels of this test's own; a web
server and chat and batch workers that find the master through the sentinels. The master is
killed (SIGKILL) under about 20 chat requests a second with a batch running. Measured: the
window in which clients get errors. Checked: it is at most 10 s with these Sentinel timings;
no request that was answered, and no item of the accepted batch, is lost; nothing is billed
twice (the budget's spend is exactly the sum of what the requests that ended were billed);
the stack serves again without a restart. The figures go to bench/RESULTS.md ("Failover")."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from redis.sentinel import Sentinel

from orchestrator.core.catalog import Catalog
from orchestrator.core.types import Usage
from orchestrator.store.budgets import MICRO, Budgets
from orchestrator.store.connection import Replicas
from orchestrator.store.keyspace import Keys
from orchestrator.store.ledger import Ledger
from orchestrator.store.users import Users
from tests.integration.test_batch_fleet import slow
from tests.processes import Process, free_port, orchestrator, wait_until

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on the PATH")

MASTER = "failover"
DOWN_AFTER_MS = 1000  # how long a master must be unreachable for the sentinels to agree it is down
FAILOVER_TIMEOUT_MS = 10_000
RATE = 20  # chat requests a second
BEFORE_KILL, AFTER_KILL = 5.0, 20.0  # seconds of load before and after the kill
CHAT_MODEL, BATCH_MODEL = "gpt-4o-mini", "gpt-4o"
BATCH_ITEMS, BATCH_CALL_SECONDS = 120, 0.4
MAX_WINDOW = 10.0


def redis_server(name: str, port: int, log_dir: Path, *args: str) -> Process:
    return Process(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(log_dir), *args], log_dir)


def sentinel(index: int, port: int, master_port: int, work: Path) -> Process:
    conf = work / f"sentinel-{index}.conf"  # a sentinel rewrites its file as it learns the set
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {work}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
                    f"sentinel parallel-syncs {MASTER} 1\n")
    return Process(f"sentinel-{index}", ["redis-server", str(conf), "--sentinel"], work)


@dataclass
class Call:
    sent: float
    ended: float
    status: int
    body: dict


class Load:
    """Chat requests at RATE a second, each in a thread of its own, until stopped."""

    def __init__(self, base: str, auth: dict):
        self.base, self.auth = base, auth
        self.calls: list[Call] = []
        self.sent = 0
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=RATE * 40)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[Call]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)
        return sorted(self.calls, key=lambda call: call.sent)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._call, self.sent)
            self.sent += 1
            self._stop.wait(max(0.0, start + self.sent / RATE - time.monotonic()))  # the pace, open loop

    def _call(self, n: int) -> None:
        sent = time.time()
        try:
            reply = requests.post(f"{self.base}/chat/execute", headers=self.auth, timeout=60,
                                  json={"message": f"failover question {n}", "model": CHAT_MODEL})
            status, body = reply.status_code, reply.json()
        except (requests.RequestException, ValueError) as exc:
            status, body = 0, {"error": repr(exc)}
        self.calls.append(Call(sent, time.time(), status, body))


@pytest.fixture
def sentinel_set(logs, tmp_path):
    """A master and its replica, three sentinels watching them; yields (processes, sentinels)."""
    master_port, replica_port = free_port(), free_port()
    processes = {"master": redis_server("redis-master", master_port, tmp_path),
                 "replica": redis_server("redis-replica", replica_port, tmp_path,
                                         "--replicaof", "127.0.0.1", str(master_port))}
    ports = [free_port() for _ in range(3)]
    processes |= {f"sentinel-{i}": sentinel(i, port, master_port, tmp_path) for i, port in enumerate(ports)}
    sentinels = [("127.0.0.1", port) for port in ports]

    def ready() -> bool:  # every sentinel knows the replica and the two other sentinels
        for host, port in sentinels:
            state = redis.Redis(host=host, port=port, decode_responses=True).sentinel_master(MASTER)
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return redis.Redis(port=replica_port, decode_responses=True).info("replication")["master_link_status"] == "up"

    try:
        wait_until(ready, 30, "the sentinels to know the replica and each other")
        yield processes, sentinels
    finally:
        for process in processes.values():
            process.stop(signal.SIGKILL)


def master_address(sentinels: list[tuple[str, int]]) -> tuple[str, int]:
    return Sentinel(sentinels, socket_timeout=1).discover_master(MASTER)


def billed_micro(record: dict, catalog: Catalog) -> int:
    """What ending this request billed (finish.lua): a batch item keeps it; a chat request's
    is its answer's usage priced as the worker prices it, to the micro-dollar as it rounds."""
    if "cost_micro" in record:
        return int(record["cost_micro"])
    if not record.get("result"):
        return 0
    response = json.loads(record["result"])["response"]
    usage = Usage(**{name: response["usage"][name] for name in ("input_tokens", "output_tokens", "cached_tokens",
                                                                "reasoning_tokens")})
    return round(catalog.get(response["model"]).cost(usage) * MICRO)


def test_a_master_killed_under_load_fails_over_within_seconds_and_loses_or_bills_twice_nothing(
        sentinel_set, sandbox, fresh_sandbox, logs, settings):
    processes, sentinels = sentinel_set
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}/api/v1/orchestrator"
    old_master = master_address(sentinels)
    env = {"REDIS_SENTINELS": ",".join(f"{host}:{port}" for host, port in sentinels),
           "REDIS_SENTINEL_MASTER": MASTER, "REDIS_URL": "redis://127.0.0.1:6379/0",
           "RATE_LIMIT_REQUESTS": "100000", "VISIBILITY_TIMEOUT": "10"}
    auth: dict = {}  # the user's key, once the user is made
    load = Load(base, auth)
    stack = [orchestrator("web-failover", "web", "--bind", f"127.0.0.1:{web_port}", "--workers", "1",
                          log_dir=logs, env=env),
             orchestrator("worker-failover-chat", "worker", "--queues", "chat", "--concurrency", "16",
                          log_dir=logs, env=env),
             orchestrator("worker-failover-batch", "worker", "--queues", "batch", "--concurrency", "4",
                          log_dir=logs, env=env)]
    try:
        before = redis.Redis(host=old_master[0], port=old_master[1], decode_responses=True)
        _, issued = Users.for_settings(before, settings).create("failover")
        auth["Authorization"] = f"Bearer {issued.key}"
        wait_until(lambda: requests.get(f"{base}/health/ready", timeout=5).status_code == 200, 40, "a ready stack")
        slow(sandbox, BATCH_MODEL, BATCH_CALL_SECONDS)
        batch = requests.post(f"{base}/batch/submit", headers=auth, timeout=30, json={
            "requests": [{"task": f"item {i}", "model": BATCH_MODEL} for i in range(BATCH_ITEMS)]})
        assert batch.status_code == 202, batch.text
        batch_id = batch.json()["batch_id"]
        wait_until(lambda: requests.get(f"{base}/batch/{batch_id}/status", headers=auth, params={"limit": 0},
                                        timeout=10).json()["status"] == "running", 30, "the batch to start")

        load.start()
        wait_until(lambda: load.sent >= RATE * BEFORE_KILL, BEFORE_KILL * 3, "the load before the kill")
        status = requests.get(f"{base}/batch/{batch_id}/status", headers=auth, params={"limit": 0}, timeout=10).json()
        assert status["status"] == "running", status  # the batch is under way when the master dies
        killed = time.time()
        processes["master"].stop(signal.SIGKILL)
        new_master = wait_until(lambda: (address := master_address(sentinels)) != old_master and address,
                                30, "a replica promoted")
        promoted, sent_at_kill = time.time(), load.sent
        wait_until(lambda: load.sent >= sent_at_kill + RATE * AFTER_KILL, AFTER_KILL * 3, "the load after the kill")
        calls = load.stop()

        errors = [call for call in calls if call.status != 200]
        window = max((call.sent for call in errors), default=killed) - killed
        after = redis.Redis(host=new_master[0], port=new_master[1], decode_responses=True)
        ended = wait_until(lambda: (body := requests.get(
            f"{base}/batch/{batch_id}/status", headers=auth, params={"limit": 0}, timeout=10).json())["counts"][
            "running"] == 0 and body["status"] in ("completed", "partially_completed", "failed") and body,
            120, "the batch to end")
        print(f"\nFAILOVER figures: {len(calls)} chat requests at {RATE}/s; master killed {BEFORE_KILL:.0f} s in; "
              f"replica promoted after {promoted - killed:.2f} s; {len(errors)} errors "
              f"({sorted({call.status for call in errors})}), sent from "
              f"{min((c.sent for c in errors), default=killed) - killed:+.2f} s to {window:+.2f} s of the kill; "
              f"slowest answer {max(c.ended - c.sent for c in calls if c.status == 200):.2f} s; "
              f"batch of {BATCH_ITEMS}: {ended['counts']}")

        assert processes["master"].popen.poll() is not None and new_master != old_master
        assert window <= MAX_WINDOW, [(round(c.sent - killed, 2), c.status, c.body) for c in errors]
        assert len(calls) >= RATE * (BEFORE_KILL + AFTER_KILL) * 0.9
        assert all(call.status in (0, 503, 504) for call in errors), [(c.status, c.body) for c in errors]

        keys = Keys(settings.redis_prefix)
        answered = [call.body["request_id"] for call in calls if call.status == 200]
        records = {request_id: after.hgetall(keys.record(request_id)) for request_id in answered}
        lost = [request_id for request_id, record in records.items() if record.get("status") != "completed"]
        assert not lost, f"{len(lost)} answered requests have no answer on the new master"
        assert ended["status"] == "completed" and ended["counts"]["completed"] == BATCH_ITEMS, ended

        everything = [after.hgetall(key) for key in after.scan_iter(match=keys.record("*"), count=1000)]
        assert Budgets(after, settings.redis_prefix).usage(issued.info.user_id)[0] == pytest.approx(
            sum(billed_micro(record, Catalog.load(None)) for record in everything) / MICRO, abs=1e-9)

        assert all(process.popen.poll() is None for process in stack), "a process of the stack died"
        assert requests.get(f"{base}/health/ready", timeout=5).status_code == 200
        again = requests.post(f"{base}/chat/execute", headers=auth, timeout=30, json={"message": "after the failover"})
        assert again.status_code == 200, again.text
    finally:
        load.stop()
        for process in stack:
            process.stop()


def test_a_requests_end_waits_for_the_replica(sentinel_set, settings, caplog):
    """The ledger's terminal write is followed by a WAIT: with the replica up it returns at
    once, acknowledged; with the replica stopped (SIGSTOP) it returns after the timeout and
    says the write stands on the master only."""
    processes, sentinels = sentinel_set
    host, port = master_address(sentinels)
    ledger = Ledger(redis.Redis(host=host, port=port, decode_responses=True), settings.redis_prefix, 60,
                    Replicas(count=1, timeout=0.5))
    error = {"status": 500, "code": "test", "message": "ended", "details": {}}
    with caplog.at_level(logging.WARNING, logger="orchestrator.store.connection"):
        started = time.monotonic()
        assert ledger.fail("req-acknowledged", error)
        assert time.monotonic() - started < 0.4 and not caplog.records
        os.kill(processes["replica"].pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert ledger.fail("req-unacknowledged", error)
            assert time.monotonic() - started >= 0.5
        finally:
            os.kill(processes["replica"].pid, signal.SIGCONT)
    assert [record.getMessage() for record in caplog.records] == [
        "a write waited 0.5s for 1 Redis replicas and reached 0: it stands on the master only"]
