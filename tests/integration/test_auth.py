"""Every endpoint but health and docs needs a valid key; admin endpoints need the admin key;
a user reaches only their own resources."""

from __future__ import annotations

import re

import pytest

from api.auth import is_public

PREFIX = "/api/v1/orchestrator"


@pytest.fixture
def users(app, redis_client):
    return app.extensions["orchestrator"].users


@pytest.fixture
def call(app, redis_client):
    """call(method, path, key=None, **kwargs): one request with that key (or none)."""

    def request(method: str, path: str, key: str | None = None, headers: dict | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {key}"} if key else headers
        return app.test_client().open(path, method=method, headers=headers, **kwargs)

    return request


def endpoints(app, under: str = "") -> list[tuple[str, str]]:
    """(method, path) of every non-public endpoint, path parameters filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or is_public(rule.rule) or not rule.rule.startswith(PREFIX + under):
            continue
        path = re.sub(r"<[^>]+>", "nobody", rule.rule)
        found.extend((method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return found


def statuses(call, app, key=None, under: str = "", **kwargs) -> dict:
    return {(method, path): call(method, path, key, **kwargs).status_code for method, path in endpoints(app, under)}


def test_there_are_endpoints_to_protect(app):
    paths = {path for _, path in endpoints(app)}
    assert {f"{PREFIX}/chat/execute", f"{PREFIX}/preferences", f"{PREFIX}/admin/users"} <= paths


def test_every_endpoint_without_a_key_is_401(app, call):
    assert set(statuses(call, app, json={}).values()) == {401}
    reply = call("POST", f"{PREFIX}/chat/execute", json={"message": "hi"})
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.get_json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer <key>" in reply.get_json()["error"]["message"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer two words", "orch-abc", ""])
def test_a_malformed_header_is_401(call, header):
    reply = call("GET", f"{PREFIX}/preferences", headers={"Authorization": header})
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_every_endpoint_with_a_revoked_key_is_401(app, call, users):
    user, issued = users.create("revoked")
    users.revoke(issued.info.id)
    assert set(statuses(call, app, issued.key, json={}).values()) == {401}
    reply = call("GET", f"{PREFIX}/preferences", issued.key)
    assert "invalid or revoked" in reply.get_json()["error"]["message"]
    assert reply.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_an_unknown_key_is_401(call):
    reply = call("GET", f"{PREFIX}/preferences", "orch-" + "x" * 40)
    assert reply.status_code == 401
    assert "invalid or revoked" in reply.get_json()["error"]["message"]


def test_health_and_docs_need_no_key(call):
    assert call("GET", f"{PREFIX}/health").status_code in (200, 503)
    assert call("GET", f"{PREFIX}/openapi.json").status_code == 200
    assert call("GET", "/docs").status_code == 200


def test_admin_endpoints_refuse_a_user_key_with_403(app, call, api_key):
    refused = statuses(call, app, api_key, under="/admin", json={"name": "x"})
    assert len(refused) == 6 and set(refused.values()) == {403}
    assert "ADMIN_API_KEY" in call("GET", f"{PREFIX}/admin/users", api_key).get_json()["error"]["message"]


def test_the_admin_manages_users_and_keys(call, settings):
    admin = settings.admin_api_key
    created = call("POST", f"{PREFIX}/admin/users", admin, json={"name": "bob", "monthly_budget": 25})
    assert created.status_code == 201, created.text
    user, key = created.get_json()["user"], created.get_json()["key"]
    assert user["name"] == "bob" and user["monthly_budget"] == 25 and user["admin"] is False
    assert key["key"].startswith(key["prefix"]) and key["revoked"] is False
    assert call("GET", f"{PREFIX}/preferences", key["key"]).get_json()["monthly_budget"] == 25

    listed = call("GET", f"{PREFIX}/admin/users", admin).get_json()
    assert user["id"] in [u["id"] for u in listed]

    second = call("POST", f"{PREFIX}/admin/users/{user['id']}/keys", admin)
    assert second.status_code == 201
    keys = call("GET", f"{PREFIX}/admin/users/{user['id']}/keys", admin).get_json()
    assert [k["id"] for k in keys] == [key["id"], second.get_json()["id"]]
    assert all("key" not in k for k in keys)
    assert keys[0]["last_used_at"] is not None and keys[1]["last_used_at"] is None

    revoked = call("DELETE", f"{PREFIX}/admin/keys/{key['id']}", admin)
    assert revoked.status_code == 200 and revoked.get_json()["revoked"] is True
    assert call("GET", f"{PREFIX}/preferences", key["key"]).status_code == 401
    assert call("GET", f"{PREFIX}/preferences", second.get_json()["key"]).status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [("POST", "/admin/users/usr_nobody/keys"), ("GET", "/admin/users/usr_nobody/keys"), ("DELETE", "/admin/keys/key_x")],
)
def test_the_admin_gets_404_for_what_does_not_exist(call, settings, method, path):
    reply = call(method, PREFIX + path, settings.admin_api_key)
    assert reply.status_code == 404
    assert reply.get_json()["error"]["code"] == "not_found"


def test_a_user_sees_and_changes_only_their_own_preferences(call, users):
    _, alice = users.create("alice")
    _, bob = users.create("bob")
    changed = call("POST", f"{PREFIX}/preferences/update", alice.key, json={"cost_sensitivity": 0.9})
    assert changed.status_code == 200
    assert call("GET", f"{PREFIX}/preferences", bob.key).get_json()["cost_sensitivity"] == 0.5
    call("POST", f"{PREFIX}/preferences/update", bob.key, json={"cost_sensitivity": 0.1})
    assert call("GET", f"{PREFIX}/preferences", alice.key).get_json()["cost_sensitivity"] == 0.9


def test_a_request_is_recorded_as_its_callers(app, client, users):
    reply = client.post(f"{PREFIX}/chat/execute", json={"message": "Whose request is this?"})
    assert reply.status_code == 200, reply.text
    record = app.extensions["orchestrator"].requests.get(reply.get_json()["request_id"])
    owner = users.get(record["owner"])
    assert owner is not None and owner.name == "test user"
