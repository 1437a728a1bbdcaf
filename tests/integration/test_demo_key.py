"""`make run`'s demo user: its key is written once, owner-only, and reused while it is valid."""

from __future__ import annotations

import stat

from orchestrator.runtime.launcher import demo_key


def test_the_demo_key_is_reused_while_valid_and_replaced_once_revoked(app, redis_client, tmp_path):
    users = app.extensions["orchestrator"].users
    path = tmp_path / "run" / "demo-api-key"
    key = demo_key(users, path)
    assert path.read_text() == key + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert users.authenticate(key).user.name == "demo"

    assert demo_key(users, path) == key
    assert [u.name for u in users.list_all()] == ["demo"]

    users.revoke(users.authenticate(key).key_id)
    path.chmod(0o644)
    replaced = demo_key(users, path)
    assert replaced != key and users.authenticate(replaced).user.name == "demo"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
