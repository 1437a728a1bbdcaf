"""RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW per key, shared by every API process."""

from __future__ import annotations

import dataclasses

import pytest

from api import create_app
from orchestrator.runtime.services import Services
from orchestrator.store.rate_limit import RateLimiter

PREFERENCES = "/api/v1/orchestrator/preferences"
LIMIT = 3


@pytest.fixture
def limited_apps(settings, redis_client):
    """Two API instances (as two processes would be) on the same Redis, LIMIT requests a minute."""
    limited = dataclasses.replace(settings, rate_limit_requests=LIMIT, rate_limit_window=60)
    return [create_app(Services.from_settings(limited)) for _ in range(2)]


@pytest.fixture
def key(limited_apps):
    _, issued = limited_apps[0].extensions["orchestrator"].users.create("limited")
    return issued.key


def get(app, key, path=PREFERENCES):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {key}"})


def test_the_limit_is_shared_by_two_apps_and_the_next_request_gets_429(limited_apps, key):
    replies = [get(limited_apps[i % 2], key) for i in range(LIMIT + 1)]
    assert [r.status_code for r in replies] == [200] * LIMIT + [429]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == [str(n) for n in range(LIMIT - 1, -1, -1)] + ["0"]
    assert all(r.headers["X-RateLimit-Limit"] == str(LIMIT) for r in replies)

    refused = replies[-1]
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Reset"] == refused.headers["Retry-After"]
    assert f"More than {LIMIT} requests in 60s" in refused.get_json()["error"]["message"]


def test_each_key_has_its_own_limit(limited_apps, key):
    for _ in range(LIMIT):
        get(limited_apps[0], key)
    _, other = limited_apps[0].extensions["orchestrator"].users.create("other")
    assert get(limited_apps[1], other.key).status_code == 200


def test_health_and_the_admin_key_are_not_limited(limited_apps, settings):
    app = limited_apps[0]
    for _ in range(LIMIT + 2):
        assert "X-RateLimit-Limit" not in app.test_client().get("/api/v1/orchestrator/health").headers
        reply = get(app, settings.admin_api_key, "/api/v1/orchestrator/admin/users")
        assert reply.status_code == 200 and "X-RateLimit-Limit" not in reply.headers


def test_a_refused_request_is_not_counted(redis_client, settings):
    limiter = RateLimiter(redis_client, settings.redis_prefix, limit=2, window=60)
    assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, False, False]
    assert redis_client.zcard(limiter.key("k")) == 2
    assert 0 < redis_client.pttl(limiter.key("k")) <= 60_000


def test_requests_older_than_the_window_no_longer_count(redis_client, settings):
    limiter = RateLimiter(redis_client, settings.redis_prefix, limit=1, window=60)
    assert limiter.hit("k").allowed
    now_ms = int(redis_client.time()[0]) * 1000
    # Age the one request past the window, as 60 seconds would.
    redis_client.zadd(limiter.key("k"), {member: now_ms - 61_000 for member in redis_client.zrange(limiter.key("k"), 0, -1)})
    assert limiter.hit("k").allowed


def test_a_key_whose_user_is_gone_is_refused_and_not_counted(limited_apps, key, redis_client, settings):
    users = limited_apps[0].extensions["orchestrator"].users
    identity = users.authenticate(key)
    redis_client.delete(users.user_key(identity.user.id))
    assert get(limited_apps[0], key).status_code == 401
    assert not redis_client.exists(f"{settings.redis_prefix}ratelimit:{identity.key_id}")
