import fakeredis
import pytest
import redis

from orchestrator.store.circuits import Circuits
from orchestrator.store.connection import RoundTrip
from orchestrator.store.ledger import Ledger
from orchestrator.store.requests import RequestStore
from orchestrator.store.stats import Stats


def test_each_store_reads_its_own_replies_from_one_trip():
    client = fakeredis.FakeRedis(decode_responses=True)
    store, circuits, stats = RequestStore(client, "t:", ttl=60), Circuits(client, "t:"), Stats(client, "t:")
    store.create("r1", "alice", "chat")
    client.hset("t:circuit:provider:openai", mapping={"state": "open", "until": 2e9})
    client.hset("t:stats:gpt-4o", mapping={"samples": 3, "success": 1.0, "ttft": 0.2, "latency": 1.5, "updated_at": 1})

    trip = RoundTrip(client)
    status = store.start_in(trip, "r1")
    states = circuits.states_in(trip, [("gpt-4o", "openai"), ("claude-x", "anthropic")])
    observed = stats.observations_in(trip, ["gpt-4o", "claude-x"])
    trip.run()

    assert status() == "queued" and store.get("r1")["status"] == "running"
    assert states() == {"gpt-4o": "open", "claude-x": "closed"}
    assert list(observed()) == ["gpt-4o"] and observed()["gpt-4o"].latency == 1.5


def test_a_script_redis_forgot_is_loaded_and_run_again_alone():
    client = fakeredis.FakeRedis(decode_responses=True)
    store = RequestStore(client, "t:", ttl=60)
    store.create("r1", "alice", "chat")
    client.script_flush()
    trip = RoundTrip(client)
    status = store.start_in(trip, "r1")
    count = trip.command(lambda pipe: pipe.incr("t:count"), lambda replies: replies[0])
    trip.run()
    assert status() == "queued" and store.get("r1")["status"] == "running"
    assert count() == 1 and client.get("t:count") == "1"  # the other commands ran once


def test_an_ended_request_is_not_marked_running_again():
    store = RequestStore(fakeredis.FakeRedis(decode_responses=True), "t:", ttl=60)
    store.create("r1", "alice", "chat")
    Ledger(store.redis, "t:", ttl=60).complete("r1", {"answer": 1})
    trip = RoundTrip(store.redis)
    status = store.start_in(trip, "r1")
    trip.run()
    assert status() == "completed" and store.get("r1")["status"] == "completed"


def test_an_error_reply_is_raised_not_read():
    client = fakeredis.FakeRedis(decode_responses=True)
    client.hset("t:hash", "field", "value")
    trip = RoundTrip(client)
    trip.command(lambda pipe: pipe.incr("t:hash"), lambda replies: replies[0])
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        trip.run()
