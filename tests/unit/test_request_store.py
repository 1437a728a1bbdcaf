import fakeredis
import pytest

from orchestrator.store.ledger import Ledger
from orchestrator.store.requests import RequestStore


@pytest.fixture
def store():
    return RequestStore(fakeredis.FakeRedis(decode_responses=True), "t:", ttl=60)


@pytest.fixture
def ledger(store):
    return Ledger(store.redis, "t:", ttl=60)


def test_terminal_event_is_published_once(store, ledger):
    store.create("r1", "alice", "chat")
    assert ledger.complete("r1", {"answer": 1}) is True
    assert ledger.complete("r1", {"answer": 2}) is False
    assert ledger.fail("r1", {"status": 502}) is False
    assert store.get("r1")["result"] == {"answer": 1}
    assert store.redis.xlen(store.events_key("r1")) == 1
    assert store.wait_terminal("r1", timeout=1) == ("final", {"answer": 1})


def test_records_and_events_expire(store, ledger):
    store.create("r2", "alice", "chat")
    ledger.fail("r2", {"status": 502, "code": "server_error"})
    assert 0 < store.redis.ttl(store.record_key("r2")) <= 60
    assert 0 < store.redis.ttl(store.events_key("r2")) <= 60
    assert store.get("r2")["status"] == "failed"
