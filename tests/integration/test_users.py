"""Users and keys in the real Redis: keys kept only as hashes, the lookup, the CLI."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from orchestrator.core.strategies import Preferences
from orchestrator.runtime.cli import main
from orchestrator.store.users import NotFound, hash_key

KEY = re.compile(r"orch-[A-Za-z0-9_-]{40}")


@pytest.fixture
def users(app, redis_client):
    return app.extensions["orchestrator"].users


def every_value(client, prefix: str) -> str:
    """Every key name, field and value under the prefix, as one text."""
    texts = []
    for name in client.scan_iter(match=f"{prefix}*"):
        kind = client.type(name)
        texts.append(name)
        if kind == "hash":
            texts.extend(f"{field}={value}" for field, value in client.hgetall(name).items())
        elif kind == "zset":
            texts.extend(client.zrange(name, 0, -1))
        elif kind == "string":
            texts.append(client.get(name))
    return "\n".join(texts)


def test_keys_are_stored_only_as_hashes(users, redis_client, settings):
    _, first = users.create("carol")
    second = users.issue_key(first.info.user_id)
    assert users.authenticate(first.key) and users.authenticate(second.key)
    stored = every_value(redis_client, settings.redis_prefix)
    for issued in (first, second):
        assert issued.key not in stored
        assert issued.key[len(issued.info.prefix):] not in stored
        assert hash_key(issued.key) in stored


def test_a_key_finds_its_user_and_records_its_use(users):
    user, issued = users.create("dave", monthly_budget=12.5)
    identity = users.authenticate(issued.key)
    assert identity.user == user and identity.key_id == issued.info.id
    assert users.keys(user.id)[0].last_used_at is not None


def test_a_revoked_key_no_longer_authenticates_and_stays_listed(users):
    user, issued = users.create("erin")
    users.revoke(issued.info.id)
    assert users.authenticate(issued.key) is None
    assert [(k.id, k.revoked) for k in users.keys(user.id)] == [(issued.info.id, True)]
    assert users.revoke(issued.info.id).revoked is True


@pytest.mark.parametrize(
    "call",
    [
        lambda users: users.issue_key("usr_x"),
        lambda users: users.keys("usr_x"),
        lambda users: users.revoke("key_x"),
        lambda users: users.preferences("usr_x"),
        lambda users: users.update_preferences("usr_x", {"cost_sensitivity": 1.0}),
    ],
)
def test_unknown_users_and_keys_are_not_found(users, redis_client, settings, call):
    with pytest.raises(NotFound):
        call(users)
    assert list(redis_client.scan_iter(match=f"{settings.redis_prefix}user*")) == []


def test_the_admin_key_is_the_admin(users, settings):
    identity = users.authenticate(settings.admin_api_key)
    assert identity.user.admin is True and identity.key_id is None
    assert users.preferences(identity.user.id) == Preferences()


def test_preferences_come_back_as_the_routers(users):
    user, _ = users.create("frank")
    assert users.preferences(user.id) == Preferences()
    users.update_preferences(user.id, {"speed_preference": 0.8, "preferred_models": {"simple": ["gpt-4o-mini"]}})
    users.update_preferences(user.id, {"preferred_models": {"expert": ["o3-mini", "gpt-4"]}})
    assert users.preferences(user.id) == Preferences(
        speed_preference=0.8, preferred_models={"expert": ("o3-mini", "gpt-4"), "simple": ("gpt-4o-mini",)}
    )
    users.update_preferences(user.id, {"preferred_models": {"simple": [], "expert": []}})
    assert users.preferences(user.id).preferred_models is None


def run(*args: str):
    result = CliRunner().invoke(main, ["users", *args])
    return result.exit_code, result.output


def test_the_cli_creates_lists_and_revokes(users, redis_client):
    code, output = run("create", "--name", "grace", "--monthly-budget", "100")
    assert code == 0, output
    key = KEY.search(output).group()
    identity = users.authenticate(key)
    assert identity.user.name == "grace" and identity.user.monthly_budget == 100

    code, output = run("list")
    assert code == 0 and identity.user.id in output and "grace" in output and "$100.00" in output

    code, output = run("new-key", identity.user.id)
    second = KEY.search(output).group()
    assert code == 0 and users.authenticate(second).user.id == identity.user.id

    code, output = run("keys", identity.user.id)
    assert code == 0 and identity.key_id in output and "active" in output
    assert key not in output and second not in output

    code, output = run("revoke", identity.key_id)
    assert code == 0 and identity.key_id in output
    assert users.authenticate(key) is None
    assert "revoked" in run("keys", identity.user.id)[1]


def test_the_cli_says_what_is_missing_in_one_line(redis_client):
    code, output = run("revoke", "key_nobody")
    assert code == 1
    assert output.strip() == "error: there is no key 'key_nobody'"
    assert run("create", "--name", "x", "--monthly-budget", "0")[0] == 2  # click's usage error
