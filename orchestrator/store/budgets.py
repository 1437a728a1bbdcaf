"""Monthly budgets: reservations before a call, settlement after it, atomic in Redis.

Before its first attempt a request reserves its worst case (the estimated input plus the
whole max_tokens, at the priciest model of its chain) against what is left of its user's
monthly budget: spent so far plus every live reservation. One Lua script checks and
reserves, so concurrent requests can never together promise more than the budget.
The settlement happens in the same Lua call that publishes the request's answer or error
(RequestStore, through a `Charge`): the reservation is released and the real cost added
to what was spent, once, however often the task is delivered. A crashed worker's
reservation expires with its request's deadline.

Keys, per user and calendar month (UTC), expiring after 40 days:
  {prefix}budget:{user}:{YYYY-MM}        hash: spent_micro (settled spend, in micro-dollars)
  {prefix}budget:{user}:{YYYY-MM}:held   hash: request id -> reserved micro-dollars
  {prefix}budget:{user}:{YYYY-MM}:until  sorted set: request id -> when the reservation expires
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from orchestrator.store.connection import RoundTrip, one_trip
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

MICRO = 1_000_000
KEY_TTL = 40 * 86400

@dataclass(frozen=True)
class Charge:
    """What settling a request means in Redis; the ledger runs it with the terminal event.
    `keys` are totals, held, until; `micro` is the real cost (0 for a failure)."""

    keys: tuple[str, str, str]
    request_id: str
    micro: int


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


class Budgets:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.keyspace = Keys(prefix)
        self._reserve = Lua(client, "reserve")
        self._remaining = Lua(client, "budget_usage")
        self._raise = Lua(client, "raise_reservation")

    def keys(self, user_id: str, month: str) -> tuple[str, str, str]:
        return self.keyspace.budget(user_id, month)

    def reserve(self, user_id: str, limit: float, request_id: str, amount: float, expires_at: float) -> bool:
        """Hold `amount` USD for the request until it settles or `expires_at`; False when
        what is left of the month's `limit` cannot cover it."""
        return one_trip(self.redis, lambda trip: self.reserve_in(trip, user_id, limit, request_id, amount, expires_at))

    def reserve_in(
        self, trip: RoundTrip, user_id: str, limit: float, request_id: str, amount: float, expires_at: float
    ) -> Callable[[], bool]:
        """`reserve`, in the caller's round trip."""
        now = time.time()
        return trip.script(
            self._reserve, list(self.keys(user_id, month_of(now))), bool, now=now, limit_micro=round(limit * MICRO),
            request_id=request_id, amount_micro=max(1, round(amount * MICRO)), expires_at=expires_at, ttl=KEY_TTL,
        )

    def raise_to(self, user_id: str, limit: float, request_id: str, amount: float, expires_at: float) -> bool:
        """Hold at least `amount` USD for the request, until `expires_at`, if the month's `limit`
        covers it with everything else; False (the hold unchanged) when it does not, or when
        the reservation is gone."""
        now = time.time()
        return bool(self._raise(list(self.keys(user_id, month_of(now))), now=now, limit_micro=round(limit * MICRO),
                                request_id=request_id, amount_micro=max(1, round(amount * MICRO)),
                                expires_at=expires_at, ttl=KEY_TTL))

    def usage(self, user_id: str) -> tuple[float, float]:
        """This month's (spent, reserved) USD."""
        return one_trip(self.redis, lambda trip: self.usage_in(trip, user_id))

    def usage_in(self, trip: RoundTrip, user_id: str) -> Callable[[], tuple[float, float]]:
        """`usage`, read in the caller's round trip."""
        now = time.time()
        return trip.script(self._remaining, list(self.keys(user_id, month_of(now))),
                           lambda reply: (reply[0] / MICRO, reply[1] / MICRO), now=now)

    def release(self, user_id: str, request_id: str) -> None:
        """Drop the request's reservation without billing anything (it is reserved again, at
        another price: an economy batch item going back to the standard path)."""
        _, held, until = self.keys(user_id, month_of(time.time()))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(held, request_id)
        pipe.zrem(until, request_id)
        pipe.execute()

    def charge(self, user_id: str, request_id: str, cost: float) -> Charge:
        """The settlement of the request: its reservation released, `cost` USD spent."""
        return Charge(self.keys(user_id, month_of(time.time())), request_id, round(cost * MICRO))
