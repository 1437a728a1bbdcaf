"""The stack as `make run` starts it (`orchestrator up`: Redis if none, the demo user's key,
then the Procfile), driven over HTTP with that key: a chat answered by the sandbox, Flower
listing the worker and the task, and Ctrl-C stopping everything it started."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from tests.processes import free_port, orchestrator, wait_until


def stack_processes(run_dir: str) -> list[int]:
    """Every live process started with this stack's RUN_DIR in its environment: `up`, the
    processes it supervises, their own children and the private Redis all inherit it."""
    marker = f"RUN_DIR={run_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on the PATH to start a private Redis")
    ports = {name: free_port() for name in ("redis", "api", "flower", "sandbox")}
    run_dir = tmp_path_factory.mktemp("run")  # not the repository's .run, where `make run` keeps its key
    env = {
        # Nothing answers on this port, so `up` must start a private Redis itself.
        "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "SANDBOX_URL": f"http://127.0.0.1:{ports['sandbox']}",
        "API_PORT": str(ports["api"]),
        "FLOWER_PORT": str(ports["flower"]),
        "FLOWER_UNAUTHENTICATED_API": "true",
        "RUN_DIR": str(run_dir),
    }
    process = orchestrator("up", "up", log_dir=tmp_path_factory.mktemp("e2e"), env=env)
    api = f"http://127.0.0.1:{ports['api']}/api/v1/orchestrator"
    try:
        wait_until(lambda: requests.get(f"{api}/health", timeout=2).status_code == 200, 90, "a healthy stack")
    except TimeoutError:
        process.stop(signal.SIGINT)
        pytest.fail(f"the stack did not come up:\n{process.log()}")
    key_file = run_dir / "demo-api-key"
    yield {"process": process, "api": api, "flower": f"http://127.0.0.1:{ports['flower']}", "key_file": key_file,
           "key": key_file.read_text().strip(), **env}
    process.stop(signal.SIGINT)


def test_the_demo_key_is_private_to_its_owner_and_printed(stack):
    assert stat.S_IMODE(stack["key_file"].stat().st_mode) == 0o600
    wait_until(lambda: stack["key"] in stack["process"].log(), 10, "the ready panel with the demo key")


def test_chat_needs_the_key_and_is_answered_and_flower_lists_worker_and_task(stack):
    execute = f"{stack['api']}/chat/execute"
    assert requests.post(execute, json={"message": "Explain machine learning"}, timeout=10).status_code == 401
    reply = requests.post(execute, json={"message": "Explain machine learning"},
                          headers={"Authorization": f"Bearer {stack['key']}"}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["response"]["content"] and body["response"]["sandbox"] is True
    assert body["response"]["usage"]["output_tokens"] > 0

    workers = wait_until(lambda: requests.get(f"{stack['flower']}/api/workers?refresh=1", timeout=10).json(), 30, "Flower's workers")
    assert any(name.startswith("worker-") for name in workers)
    task = wait_until(
        lambda: requests.get(f"{stack['flower']}/api/task/info/{body['request_id']}", timeout=5).json(),
        30, "Flower to list the task",
    )
    assert task["name"] == "orchestrator.execute_chat"
    assert task["args"] == repr([body["request_id"]])  # the request id, never the user's prompt
    queues = requests.get(f"{stack['flower']}/api/queues/length", timeout=10).json()["active_queues"]
    assert {q["name"] for q in queues} == {"chat", "batch"}  # Flower reads the broker's queues


def test_the_brief_demo_runs_against_the_stack(stack):
    api_root = stack["api"].removesuffix("/api/v1/orchestrator")
    result = subprocess.run([sys.executable, "examples/advanced_orchestrator_demo.py"], capture_output=True, text=True,
                            env={**os.environ, "ORCHESTRATOR_URL": api_root, "ORCHESTRATOR_API_KEY": stack["key"]},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Model used:" in result.stdout and "Example 2:" in result.stdout
    assert "medical domain -> claude-sonnet-4-20250514" in result.stdout


def test_a_killed_worker_is_started_again(stack):
    """kill -9 of one process (here the worker) does not stop the stack: the supervisor starts
    it again, and the next chat is answered by the new worker."""
    fleet = redis.Redis.from_url(stack["REDIS_URL"], decode_responses=True)

    def worker_pids() -> set[int]:
        return {int(name.split("-", 1)[1].split("@")[0]) for name in fleet.zrange(f"{os.environ['REDIS_PREFIX']}workers", 0, -1)
                if name.startswith("worker-")}

    (killed,) = wait_until(worker_pids, 30, "the worker's heartbeat")
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: worker_pids() - {killed}, 60, "a new worker")
    reply = requests.post(f"{stack['api']}/chat/execute", json={"message": "Still there?"},
                          headers={"Authorization": f"Bearer {stack['key']}"}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert "starting it again" in stack["process"].log()


def test_ctrl_c_stops_everything_it_started(stack):
    process = stack["process"]
    private_redis = redis.Redis.from_url(stack["REDIS_URL"])
    assert private_redis.ping()
    assert len(stack_processes(stack["RUN_DIR"])) >= 5  # up, its Redis, the API, a worker, Flower, the sandbox
    process.stop(signal.SIGINT)
    assert process.popen.returncode is not None
    with pytest.raises(redis.ConnectionError):
        private_redis.ping()
    assert stack_processes(stack["RUN_DIR"]) == []


def test_sigterm_to_up_alone_stops_everything_it_started(tmp_path):
    """What systemd or a container runtime sends: SIGTERM to `up` only, not to its group."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on the PATH to start a private Redis")
    ports = {name: free_port() for name in ("redis", "api", "flower", "sandbox")}
    env = {"REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0", "SANDBOX_URL": f"http://127.0.0.1:{ports['sandbox']}",
           "API_PORT": str(ports["api"]), "FLOWER_PORT": str(ports["flower"]), "RUN_DIR": str(tmp_path / "run")}
    process = orchestrator("up-term", "up", log_dir=tmp_path, env=env)
    try:
        api = f"http://127.0.0.1:{ports['api']}/api/v1/orchestrator"
        wait_until(lambda: requests.get(f"{api}/health", timeout=2).status_code == 200, 90, "a healthy stack")
        private_redis = redis.Redis.from_url(env["REDIS_URL"])
        os.kill(process.pid, signal.SIGTERM)
        process.popen.wait(40)
        with pytest.raises(redis.ConnectionError):
            private_redis.ping()
        assert stack_processes(env["RUN_DIR"]) == []
    finally:
        process.stop(signal.SIGKILL)
