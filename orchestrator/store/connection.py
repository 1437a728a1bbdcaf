"""The Redis connection every process shares (one pool per process, to the master that
Sentinel names when REDIS_SENTINELS is set), round trips that gather several stores'
commands, and writes that wait for replicas."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
from redis.client import Pipeline
from redis.connection import parse_url
from redis.exceptions import NoScriptError
from redis.sentinel import Sentinel

from orchestrator.config import Settings
from orchestrator.store.scripts import Lua

# Redis is away (down, or failing over): what a caller waits out rather than records.
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError)

# Every thread waiting on a request holds a connection in a blocking XREAD: an API process
# has up to 500 such threads (`orchestrator web`), and redis-py's default pool stops at 100.
MAX_CONNECTIONS = 1024

T = TypeVar("T")
log = logging.getLogger(__name__)


def connect(settings: Settings) -> redis.Redis:
    options = dict(
        socket_connect_timeout=2,
        socket_timeout=None,  # blocking reads (XREAD BLOCK) set their own bound
        health_check_interval=30,
        decode_responses=True,
        max_connections=MAX_CONNECTIONS,
    )
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, password=settings.redis_password, **options)
    # A new connection asks the sentinels for the master; one to a master that is gone or
    # demoted fails (READONLY is read as a lost connection), and the next asks again.
    url = parse_url(settings.redis_url)
    sentinels = Sentinel(list(settings.redis_sentinels), socket_connect_timeout=1, socket_timeout=1)
    return sentinels.master_for(settings.redis_sentinel_master, db=url.get("db", 0),
                                password=settings.redis_password or url.get("password"), **options)


def connect_broker(settings: Settings, main: redis.Redis) -> redis.Redis:
    """A client of Celery's broker, to read its queues: the main one, unless BROKER_URL puts
    the queues on a Redis of their own."""
    if not settings.broker_redis_url:
        return main
    return redis.Redis.from_url(settings.broker_redis_url, socket_connect_timeout=2, health_check_interval=30,
                                decode_responses=True)


@dataclass(frozen=True)
class Replicas:
    """Writes that must survive a failover (Redis replicates asynchronously): each is sent
    with a WAIT after it on the same connection, for `count` replicas, at most `timeout`
    seconds. Fewer replicas in time is logged, not raised: the write stands on the master,
    as without replicas. An error (the master lost mid-write) is raised: the writes sent this
    way are idempotent scripts, and the caller writes again on the next master."""

    count: int = 0
    timeout: float = 0.5

    def script(self, client: redis.Redis, lua: Lua, keys: list, **args):
        """`lua`'s reply, once replicated (loaded first when Redis does not know it)."""
        values = lua.args(**args)
        reply = self.write(client, lambda pipe: pipe.evalsha(lua.script.sha, len(keys), *keys, *values))[0]
        if isinstance(reply, NoScriptError):  # a new master (scripts are not replicated) or a restart
            client.script_load(lua.script.script)
            reply = self.write(client, lambda pipe: pipe.evalsha(lua.script.sha, len(keys), *keys, *values))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def write(self, client: redis.Redis, queue: Callable[[Pipeline], object]) -> list:
        """The replies to the commands `queue` adds (errors among them), sent with the WAIT."""
        pipe = client.pipeline(transaction=False)
        queue(pipe)
        sent = len(pipe)
        if self.count:
            pipe.wait(self.count, max(1, round(self.timeout * 1000)))
        replies = pipe.execute(raise_on_error=False)
        if self.count and isinstance(replies[sent], Exception):
            raise replies[sent]
        if self.count and replies[sent] < self.count:
            log.warning("a write waited %.3gs for %d Redis replicas and reached %d: it stands on the master only",
                        self.timeout, self.count, replies[sent])
        return replies[:sent]


NO_REPLICAS = Replicas()  # no WAIT: a Redis without replicas, or tests


class RoundTrip:
    """Commands of several stores sent to Redis together, for a caller that needs them all
    before it can go on. Each store adds its commands (`command`, or `script` for its Lua)
    with how to read their replies, and gets back a function that returns what it read
    once `run` has run. A script goes by its hash alone; one that Redis does not know (it
    was restarted or flushed) is loaded and run again on its own, after the others."""

    def __init__(self, client: redis.Redis):
        self.client = client
        # (queue, parse, again): `again` re-runs a script part on its own
        self._parts: list[tuple[Callable[[Pipeline], object], Callable[[list], object], Callable[[], list] | None]] = []
        self._results: list | None = None

    def command(self, queue: Callable[[Pipeline], object], parse: Callable[[list], T]) -> Callable[[], T]:
        """`queue` adds commands to the pipeline; `parse` reads their replies, in a list."""
        return self._add(queue, parse, None)

    def script(self, lua: Lua, keys: list, parse: Callable[[object], T], **args) -> Callable[[], T]:
        """`lua` with its ARGV by name (orchestrator/store/scripts.py)."""
        values = lua.args(**args)

        def again() -> list:
            return [lua.script(keys=keys, args=values)]  # redis-py's Script loads itself when Redis lacks it

        return self._add(lambda pipe: pipe.evalsha(lua.script.sha, len(keys), *keys, *values),
                         lambda replies: parse(replies[0]), again)

    def _add(self, queue, parse, again) -> Callable:
        index = len(self._parts)
        self._parts.append((queue, parse, again))
        return lambda: self._results[index]

    def run(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        spans = []
        for queue, _, _ in self._parts:
            start = len(pipe)
            queue(pipe)
            spans.append((start, len(pipe)))
        replies = pipe.execute(raise_on_error=False)
        self._results = [self._read(replies[start:end], parse, again)
                         for (start, end), (_, parse, again) in zip(spans, self._parts, strict=True)]

    @staticmethod
    def _read(replies: list, parse: Callable[[list], T], again: Callable[[], list] | None) -> T:
        if again is not None and isinstance(replies[0], NoScriptError):
            replies = again()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return parse(replies)


def one_trip(client: redis.Redis, add: Callable[[RoundTrip], Callable[[], T]]) -> T:
    """What `add` reads, in a round trip of its own."""
    trip = RoundTrip(client)
    result = add(trip)
    trip.run()
    return result()
