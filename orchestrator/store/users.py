"""Users, their API keys and their routing preferences, in Redis.

A user has a short generated id, a name, a monthly budget, routing preferences and any
number of API keys. A key is shown once, when it is issued. Redis keeps only its SHA-256:
a key is 240 random bits, so its hash cannot be reversed by guessing and needs neither salt
nor a slow KDF. Beside the hash, a key record holds a short random key id (to list and
revoke it) and the key's first characters (to recognise it). Authentication is one round
trip: a Lua script maps the key's hash to its user and key ids, stamps the key's last use,
returns the user's record and, for the API, counts the request against the key's rate limit
(lua/lib/rate_limit_hit.lua). The script names the keys it finds, as every
script here that follows a lookup does: one Redis server, not a cluster. Revoking a key
removes its hash from that lookup.

The admin is not stored: it is whoever presents ADMIN_API_KEY (`Users.authenticate`).

Keys (under the configured prefix, all written here):
  {prefix}user:{user_id}        hash: name, monthly_budget, created_at, admin (0/1), and when
                                set: cost_sensitivity, speed_preference, quality_preference,
                                preferred:{complexity} (a JSON list of model names)
  {prefix}users                 sorted set: user id -> created_at
  {prefix}apikey:{key_id}       hash: user_id, hash, prefix, created_at, last_used_at, revoked (0/1)
  {prefix}user_keys:{user_id}   sorted set: key id -> created_at
  {prefix}apikeys               hash: SHA-256 of every live key -> "{user_id} {key_id}"
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import redis

from orchestrator.config import Settings
from orchestrator.core.job import ADMIN_ID
from orchestrator.core.strategies import Preferences
from orchestrator.store.connection import RoundTrip, one_trip
from orchestrator.store.keyspace import Keys
from orchestrator.store.rate_limit import RateLimit, RateLimiter
from orchestrator.store.scripts import Lua

KEY_PREFIX = "orch-"
KEY_RANDOM_BYTES = 30  # 40 url-safe characters
SHOWN_KEY_CHARS = len(KEY_PREFIX) + 4  # what listings show of a key: "orch-AbCd"
WEIGHTS = ("cost_sensitivity", "speed_preference", "quality_preference")
_PREFERRED = "preferred:"

class NotFound(LookupError):
    """No such user or key; the message names it."""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    monthly_budget: float
    created_at: float
    admin: bool = False
    preferences: Preferences = Preferences()


@dataclass(frozen=True)
class ApiKey:
    """What is kept of a key: never the key itself."""

    id: str
    user_id: str
    prefix: str
    created_at: float
    last_used_at: float | None = None
    revoked: bool = False


@dataclass(frozen=True)
class IssuedKey:
    key: str = field(repr=False)  # the only time the key exists outside its owner's hands
    info: ApiKey


class Identity(NamedTuple):
    user: User
    key_id: str | None  # None for the admin key from the environment
    limit: RateLimit | None = None  # this request counted against the key's rate limit, when asked


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(6)}"


def _user(user_id: str, record: dict) -> User:
    defaults = Preferences()
    preferred = {
        name.removeprefix(_PREFERRED): tuple(json.loads(value))
        for name, value in sorted(record.items())
        if name.startswith(_PREFERRED)
    }
    return User(
        id=user_id,
        name=record["name"],
        monthly_budget=float(record["monthly_budget"]),
        created_at=float(record["created_at"]),
        admin=record.get("admin") == "1",
        preferences=Preferences(
            **{name: float(record.get(name, getattr(defaults, name))) for name in WEIGHTS},
            preferred_models=preferred or None,
        ),
    )


def _api_key(key_id: str, record: dict) -> ApiKey:
    last_used = record.get("last_used_at")
    return ApiKey(
        id=key_id,
        user_id=record["user_id"],
        prefix=record["prefix"],
        created_at=float(record["created_at"]),
        last_used_at=float(last_used) if last_used else None,
        revoked=record.get("revoked") == "1",
    )


class Users:
    def __init__(self, client: redis.Redis, prefix: str, default_budget: float, admin_key: str | None = None):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.default_budget = default_budget
        self._admin_key = admin_key
        self._authenticate = Lua(client, "authenticate")

    @classmethod
    def for_settings(cls, client: redis.Redis, settings: Settings) -> Users:
        return cls(client, settings.redis_prefix, settings.monthly_cost_limit, settings.admin_api_key)

    def user_key(self, user_id: str) -> str:
        return self.keyspace.user(user_id)

    def key_record_key(self, key_id: str) -> str:
        return self.keyspace.api_key(key_id)

    @property
    def users_key(self) -> str:
        return self.keyspace.users

    def user_keys_key(self, user_id: str) -> str:
        return self.keyspace.user_keys(user_id)

    @property
    def lookup_key(self) -> str:
        return self.keyspace.key_lookup

    @property
    def admin(self) -> User:
        return User(id=ADMIN_ID, name="admin", monthly_budget=self.default_budget, created_at=0.0, admin=True)

    # --- users

    def create(self, name: str, monthly_budget: float | None = None) -> tuple[User, IssuedKey]:
        """A new user and its first key."""
        user = User(
            id=_new_id("usr"),
            name=name,
            monthly_budget=self.default_budget if monthly_budget is None else monthly_budget,
            created_at=time.time(),
        )
        pipe = self.redis.pipeline()
        pipe.hset(
            self.user_key(user.id),
            mapping={"name": name, "monthly_budget": user.monthly_budget, "created_at": user.created_at, "admin": 0},
        )
        pipe.zadd(self.users_key, {user.id: user.created_at})
        issued = self._add_key(pipe, user.id)
        pipe.execute()
        return user, issued

    def get(self, user_id: str) -> User | None:
        return one_trip(self.redis, lambda trip: self.get_in(trip, user_id))

    def get_in(self, trip: RoundTrip, user_id: str) -> Callable[[], User | None]:
        """`get`, read in the caller's round trip."""
        key = self.user_key(user_id)
        return trip.command(lambda pipe: pipe.hgetall(key),
                            lambda replies: _user(user_id, replies[0]) if replies[0] else None)

    def list_all(self) -> list[User]:
        """Every user, oldest first."""
        ids = self.redis.zrange(self.users_key, 0, -1)
        pipe = self.redis.pipeline(transaction=False)
        for user_id in ids:
            pipe.hgetall(self.user_key(user_id))
        return [_user(user_id, record) for user_id, record in zip(ids, pipe.execute(), strict=True) if record]

    def preferences(self, user_id: str) -> Preferences:
        """The user's routing preferences, as the router takes them (the admin's are the defaults)."""
        if user_id == ADMIN_ID:
            return self.admin.preferences
        user = self.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        return user.preferences

    def update_preferences(self, user_id: str, changes: dict) -> User:
        """Set any of the WEIGHTS, `monthly_budget` and `preferred_models` ({complexity: [model
        names]}, each level given replaces that level; an empty list clears it)."""
        if not self.redis.exists(self.user_key(user_id)):
            raise NotFound(f"no user {user_id!r}")
        fields = {name: changes[name] for name in (*WEIGHTS, "monthly_budget") if changes.get(name) is not None}
        levels = changes.get("preferred_models") or {}
        fields.update({_PREFERRED + level: json.dumps(list(names)) for level, names in levels.items() if names})
        cleared = [_PREFERRED + level for level, names in levels.items() if not names]
        pipe = self.redis.pipeline()
        if fields:
            pipe.hset(self.user_key(user_id), mapping=fields)
        if cleared:
            pipe.hdel(self.user_key(user_id), *cleared)
        pipe.hgetall(self.user_key(user_id))
        return _user(user_id, pipe.execute()[-1])

    # --- keys

    def _add_key(self, pipe: redis.client.Pipeline, user_id: str) -> IssuedKey:
        key = generate_key()
        info = ApiKey(id=_new_id("key"), user_id=user_id, prefix=key[:SHOWN_KEY_CHARS], created_at=time.time())
        digest = hash_key(key)
        pipe.hset(
            self.key_record_key(info.id),
            mapping={"user_id": user_id, "hash": digest, "prefix": info.prefix, "created_at": info.created_at,
                     "revoked": 0},
        )
        pipe.zadd(self.user_keys_key(user_id), {info.id: info.created_at})
        pipe.hset(self.lookup_key, digest, f"{user_id} {info.id}")
        return IssuedKey(key, info)

    def issue_key(self, user_id: str) -> IssuedKey:
        """Another key for an existing user."""
        if not self.redis.exists(self.user_key(user_id)):
            raise NotFound(f"no user {user_id!r}")
        pipe = self.redis.pipeline()
        issued = self._add_key(pipe, user_id)
        pipe.execute()
        return issued

    def keys(self, user_id: str) -> list[ApiKey]:
        """The user's keys, oldest first, revoked ones included."""
        if not self.redis.exists(self.user_key(user_id)):
            raise NotFound(f"no user {user_id!r}")
        ids = self.redis.zrange(self.user_keys_key(user_id), 0, -1)
        pipe = self.redis.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.key_record_key(key_id))
        return [_api_key(key_id, record) for key_id, record in zip(ids, pipe.execute(), strict=True) if record]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (revoking it again changes nothing)."""
        record = self.redis.hgetall(self.key_record_key(key_id))
        if not record:
            raise NotFound(f"no key {key_id!r}")
        pipe = self.redis.pipeline()
        pipe.hdel(self.lookup_key, record["hash"])
        pipe.hset(self.key_record_key(key_id), "revoked", 1)
        pipe.execute()
        return replace(_api_key(key_id, record), revoked=True)

    def authenticate(self, key: str, limiter: RateLimiter | None = None) -> Identity | None:
        """Whose key this is; None for a key that is unknown or revoked. With `limiter`, the
        request also counts against the key's rate limit, in the same round trip (the admin
        key from the environment is not limited)."""
        if self._admin_key and hmac.compare_digest(key.encode(), self._admin_key.encode()):
            return Identity(self.admin, None)
        rate_limit = [limiter.key(""), *limiter.hit_args()] if limiter is not None else []
        found = self._authenticate([self.lookup_key], key_hash=hash_key(key), now=time.time(),
                                   key_prefix=self.key_record_key(""), user_prefix=self.user_key(""),
                                   rate_limit=rate_limit)
        if not found or not found[2]:
            return None
        user_id, key_id, flat = found[:3]
        limit = limiter.result(found[3]) if limiter is not None else None
        return Identity(_user(user_id, dict(zip(flat[::2], flat[1::2], strict=True))), key_id, limit)
