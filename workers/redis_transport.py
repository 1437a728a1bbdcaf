"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu 5.7 builds a new `redis.Redis` for every publish and every ack
(`Channel.conn_or_acquire` → `_create_client`), on the channel's shared connection pool.
With redis-py 8 that costs 60-200 µs each time (most of it filling the client's table of
response callbacks): several times a request in the API (the task) and in the worker (its
task events, the unacked bookkeeping and the ack), about 7 % of the worker's CPU. A
`redis.Redis` is safe to share between threads (each command takes a connection from the
pool), so this channel builds its client once. celeryconfig.py names this transport, or its
Sentinel variant when REDIS_SENTINELS is set: the same channel over kombu's Sentinel channel,
whose connection pool asks the sentinels for the master at every new connection, so the
shared client follows a failover as kombu's own would.
"""

from __future__ import annotations

from functools import cached_property

from kombu.transport import redis as kombu_redis


class SharedClient:
    """A kombu Redis channel's synchronous client, built once."""

    def _create_client(self, asynchronous=False):
        return super()._create_client(asynchronous=True) if asynchronous else self._shared_client

    @cached_property
    def _shared_client(self):
        return super()._create_client()


class Channel(SharedClient, kombu_redis.Channel):
    pass


class SentinelChannel(SharedClient, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
