"""A real sandbox and a real Celery worker for the whole session; the API in-process, called
with a new user's API key in each test."""

from __future__ import annotations

import pytest
import redis
import requests

from orchestrator.config import get_settings
from orchestrator.store.fleet import Fleet
from tests.processes import free_port, orchestrator, wait_until


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def redis_client(settings):
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"integration tests need Redis at {settings.redis_url}: {exc}")
    return client


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def sandbox(settings, logs):
    process = orchestrator("sandbox", "sandbox", log_dir=logs)
    wait_until(lambda: requests.get(f"{settings.sandbox_url}/health", timeout=1).ok, 20, "the sandbox")
    yield settings.sandbox_url
    process.stop()


@pytest.fixture(scope="session")
def served(worker, logs):
    """The API under gunicorn, as `orchestrator web` runs it (one process for the session); yields its root URL."""
    port = free_port()
    process = orchestrator("web", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1", log_dir=logs)
    root = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{root}/api/v1/orchestrator/health", timeout=2).status_code == 200, 30,
               "the web process")
    yield root
    process.stop()


@pytest.fixture(scope="session")
def worker(settings, redis_client, sandbox, logs):
    process = orchestrator("worker", "worker", "--concurrency", "8", log_dir=logs)
    fleet = Fleet(redis_client, settings.redis_prefix)
    try:
        wait_until(lambda: fleet.alive() or process.popen.poll() is not None, 30, "a worker heartbeat")
    finally:
        if process.popen.poll() is not None:
            pytest.fail(f"the worker exited:\n{process.log()}")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def clean_keys(request, settings):
    """Delete this session's keys around each test that touches Redis."""
    if "redis_client" not in request.fixturenames:
        yield
        return
    client = request.getfixturevalue("redis_client")
    yield
    # Keep what the session's worker holds: its heartbeat (refreshed every few seconds, not
    # per test) and the broker's bindings and unacked messages (declared once, at start).
    kept = (f"{settings.redis_prefix}workers", f"{settings.redis_prefix}_kombu", f"{settings.redis_prefix}unacked")
    for key in client.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
        if not key.startswith(kept):
            client.delete(key)


@pytest.fixture(scope="session")
def app(settings):
    from api import create_app

    return create_app()


@pytest.fixture
def api_key(app, redis_client):
    """A new user's API key (clean_keys deletes users and keys after each test)."""
    _, issued = app.extensions["orchestrator"].users.create("test user")
    return issued.key


@pytest.fixture
def client(app, worker, api_key):
    """The API in-process, sending a valid user's key with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client


@pytest.fixture(scope="session")
def webhook():
    """An HTTP server at ALERT_WEBHOOK_URL that keeps every alert POSTed to it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conftest import WEBHOOK_PORT

    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", WEBHOOK_PORT), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture
def services(app):
    """The in-process API's Services (its Redis stores, catalog, router)."""
    return app.extensions["orchestrator"]


@pytest.fixture
def fresh_sandbox(sandbox):
    """The sandbox without faults or logged attempts, before and after the test."""
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    yield sandbox
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
