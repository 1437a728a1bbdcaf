"""The sandbox plays keyless providers only when it is on: with any real key set (and
SANDBOX left to auto), a model without credentials is unavailable, and says why."""

from __future__ import annotations

import dataclasses

import fakeredis
import pytest

from orchestrator.config import load_settings
from orchestrator.runtime.services import Services

CLAUDE = "claude-3-5-haiku-20241022"


def settings(**values):
    base = dataclasses.replace(load_settings(read_dotenv=False), openai_api_key=None, anthropic_api_key=None,
                               google_api_key=None, redis_prefix="t:", sandbox="auto")
    return dataclasses.replace(base, **values)


@pytest.mark.parametrize(("values", "on"), [
    ({}, True),  # no key at all: the demo
    ({"openai_api_key": "sk-real"}, False),
    ({"openai_api_key": "sk-real", "sandbox": "on"}, True),
    ({"sandbox": "off"}, False),
])
def test_when_the_sandbox_is_on(values, on):
    assert settings(**values).sandbox_on is on


def test_with_only_an_openai_key_no_other_provider_is_played_by_the_sandbox():
    services = Services.from_settings(settings(openai_api_key="sk-real"))
    assert {m.provider for m in services.catalog} == {"openai"}
    assert CLAUDE in services.unavailable and "ANTHROPIC_API_KEY" in services.unavailable[CLAUDE]
    assert "SANDBOX=on" in services.unavailable[CLAUDE]


def test_the_api_says_why_a_model_is_unavailable():
    from api import create_app

    services = Services.from_settings(settings(openai_api_key="sk-real"))
    services.redis = fakeredis.FakeRedis(decode_responses=True)
    client = create_app(services).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {services.users.create('u')[1].key}"
    reply = client.post("/api/v1/orchestrator/chat/route", json={"message": "hi", "model": CLAUDE})
    assert reply.status_code == 404 and "unavailable" in reply.get_json()["error"]["message"]
    assert "ANTHROPIC_API_KEY" in reply.get_json()["error"]["message"]
    capabilities = client.get("/api/v1/orchestrator/models/capabilities").get_json()
    assert CLAUDE in capabilities["unavailable"] and all(m["provider"] == "openai" for m in capabilities["models"])
    routed = client.post("/api/v1/orchestrator/chat/route", json={"message": "hi", "strategy": "quality_optimal"})
    assert routed.status_code == 200 and routed.get_json()["chosen_provider"] == "openai"
    assert all(provider == "openai" for provider, _ in routed.get_json()["fallback_models"])
