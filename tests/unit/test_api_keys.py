"""API keys and the public paths, without Redis."""

import hashlib
import re

import pytest

from api import create_app
from api.auth import is_public
from orchestrator.store.users import generate_key, hash_key

SPEC = "/api/v1/orchestrator/openapi.json"


def test_a_key_is_the_prefix_and_40_random_url_safe_characters():
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"orch-[A-Za-z0-9_-]{40}", key) for key in keys)


def test_a_key_is_stored_as_its_sha256():
    key = generate_key()
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert key not in hash_key(key)


@pytest.mark.parametrize(
    "path, public",
    [
        ("/api/v1/orchestrator/health", True),
        ("/api/v1/orchestrator/health/live", True),
        ("/api/v1/orchestrator/openapi.json", True),
        ("/docs", True),
        ("/docs/index.css", True),
        ("/metrics", True),
        ("/api/v1/orchestrator/healthz", False),
        ("/docsx", False),
        ("/api/v1/orchestrator/chat/execute", False),
        ("/api/v1/orchestrator/admin/users", False),
    ],
)
def test_only_health_docs_and_metrics_are_public(path, public):
    assert is_public(path) is public


def test_the_spec_requires_a_bearer_key_except_on_health():
    spec = create_app().test_client().get(SPEC).get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`",
    }
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/api/v1/orchestrator/health"]["get"]["security"] == []
    execute = spec["paths"]["/api/v1/orchestrator/chat/execute"]["post"]
    assert "security" not in execute
    assert execute["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert execute["responses"]["429"] == {"$ref": "#/components/responses/RateLimited"}
    assert "Retry-After" in spec["components"]["responses"]["RateLimited"]["headers"]
