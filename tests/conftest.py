"""Test settings. They are set before any orchestrator module reads the environment.

Integration and e2e tests use the real Redis at REDIS_URL on database 15 (TEST_REDIS_DB
picks another, so two checkouts can run their suites at once) under their own key prefix,
which is deleted around each test (a FLUSHDB would also drop the broker's queue bindings
that running workers declared).
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

from tests.processes import free_port


def _test_redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit(parts._replace(path="/" + os.environ.get("TEST_REDIS_DB", "15")))


SANDBOX_PORT = free_port()
WEBHOOK_PORT = free_port()  # tests/integration/conftest.py's `webhook` receives alerts there
os.environ.update(
    {
        "REDIS_URL": _test_redis_url(),
        "REDIS_PREFIX": f"orchtest{os.getpid()}:",
        "SANDBOX_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
        "SANDBOX_LATENCY_SCALE": "0",
        "REQUEST_TIMEOUT": "20",
        "CIRCUIT_OPEN_SECONDS": "2",
        "OPENAI_API_KEY": "",
        "ANTHROPIC_API_KEY": "",
        "GOOGLE_API_KEY": "",
        "MODELS_FILE": "",
        "ADMIN_API_KEY": secrets.token_urlsafe(30),
        "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{WEBHOOK_PORT}/alerts",
    }
)
