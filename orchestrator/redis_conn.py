"""The Redis connection every process shares (one pool per process), and round trips
that gather several stores' commands."""

from __future__ import annotations

from typing import Callable, TypeVar

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from orchestrator.config import Settings


# Every thread waiting on a request holds a connection in a blocking XREAD: an API process
# has up to 500 such threads (`orchestrator web`), and redis-py's default pool stops at 100.
MAX_CONNECTIONS = 1024

T = TypeVar("T")


def connect(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        password=settings.redis_password,
        socket_connect_timeout=2,
        socket_timeout=None,  # blocking reads (XREAD BLOCK) set their own bound
        health_check_interval=30,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
    )


class RoundTrip:
    """Commands of several stores sent to Redis together, for a caller that needs them all
    before it can go on. Each store adds its commands (`command`, or `script` for its Lua)
    with how to read their replies, and gets back a function that returns what it read
    once `run` has run. A script goes by its hash alone; when Redis does not know it (it
    was restarted or flushed) the scripts are loaded and the whole trip is sent again, so a
    trip holds only commands that are safe to repeat."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self._parts: list[tuple[Callable[[Pipeline], object], Callable[[list], object]]] = []
        self._scripts: dict[str, Script] = {}
        self._results: list | None = None

    def command(self, queue: Callable[[Pipeline], object], parse: Callable[[list], T]) -> Callable[[], T]:
        """`queue` adds commands to the pipeline; `parse` reads their replies, in a list."""
        index = len(self._parts)
        self._parts.append((queue, parse))
        return lambda: self._results[index]

    def script(self, script: Script, keys: list, args: list, parse: Callable[[object], T]) -> Callable[[], T]:
        self._scripts[script.sha] = script
        return self.command(lambda pipe: pipe.evalsha(script.sha, len(keys), *keys, *args),
                            lambda replies: parse(replies[0]))

    def run(self) -> None:
        try:
            replies, spans = self._send()
        except NoScriptError:
            for script in self._scripts.values():
                self.client.script_load(script.script)
            replies, spans = self._send()
        self._results = [parse(replies[start:end]) for (start, end), (_, parse) in zip(spans, self._parts)]

    def _send(self) -> tuple[list, list[tuple[int, int]]]:
        pipe = self.client.pipeline(transaction=False)
        spans = []
        for queue, _ in self._parts:
            start = len(pipe)
            queue(pipe)
            spans.append((start, len(pipe)))
        return pipe.execute(), spans


def one_trip(client: redis.Redis, add: Callable[[RoundTrip], Callable[[], T]]) -> T:
    """What `add` reads, in a round trip of its own."""
    trip = RoundTrip(client)
    result = add(trip)
    trip.run()
    return result()
