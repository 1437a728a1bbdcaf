"""Following one request's event stream: the reading loop under every streaming answer.

The worker appends a request's events to its Redis stream (orchestrator/store/requests.py):
`decision`, `chunk`s, then one terminal `final` or `error`. `follow` yields them as they
come, whatever wire format the caller is then given (the orchestrator's SSE events, or
OpenAI's chunks in api/openai_compat.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import redis

from orchestrator.store.keyspace import Keys
from orchestrator.store.requests import TERMINAL_EVENTS, RequestStore

Event = tuple[str, str, dict]  # (stream entry id, event type, data)


class OpenStreams:
    """The streams followed right now, across the API's processes (for /health).

    Key: {prefix}streams-open (sorted set: reader id -> when the reader last read). A reader
    refreshes its entry at least every `idle` seconds while it follows and removes it when
    it stops; an entry older than STALE seconds was left by a process that died, and is
    neither counted nor kept."""

    STALE = 30.0

    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.key = Keys(prefix).streams_open

    def touch(self, reader: str) -> None:
        self.redis.zadd(self.key, {reader: time.time()})

    def close(self, reader: str) -> None:
        self.redis.zrem(self.key, reader)

    def count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(self.key, 0, time.time() - self.STALE)
        pipe.zcard(self.key)
        return pipe.execute()[1]


def follow(
    store: RequestStore, request_id: str, after: str, deadline: float, idle: float, grace: float
) -> Iterator[Event | None]:
    """The request's events after entry id `after`, up to and including its terminal one;
    None each time `idle` seconds pass without one (time for a keep-alive, which is also
    how a server notices that its caller left). It ends without a terminal event once
    `deadline` (time.time()) has passed.

    While it follows, the reader is counted among the OpenStreams. A reader that stops
    before the end (the generator is closed: its caller went away) cancels the request,
    `grace` seconds ahead so that a reconnect can still resume it."""
    finished = False
    streams, reader = OpenStreams(store.redis, store.keyspace.prefix), f"{request_id}:{uuid.uuid4().hex[:8]}"
    touched = time.monotonic()
    streams.touch(reader)
    try:
        while time.time() < deadline:
            if time.monotonic() - touched > idle:
                touched = time.monotonic()
                streams.touch(reader)
            events = store.read(request_id, after, min(idle, max(0.05, deadline - time.time())))
            if not events:
                yield None
                continue
            for after, event, data in events:
                if event in TERMINAL_EVENTS:
                    finished = True
                    yield after, event, data
                    return
                yield after, event, data
        finished = True
    finally:
        streams.close(reader)
        if not finished:
            store.cancel(request_id, grace)


def no_answer(waited: float | None = None, **details) -> dict:
    """The error (504) of a request whose answer did not come in time: for a caller who
    waited `waited` seconds, or for the request's whole time budget."""
    within = f"{waited:.0f}s" if waited is not None else "the time budget"
    error = {"status": 504, "code": "gateway_timeout",
             "message": f"No answer within {within}; are the workers running and keeping up?"}
    if details:
        error["details"] = details
    return error
