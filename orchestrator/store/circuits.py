"""Circuit breakers per model and per provider, shared by every worker through Redis.

A circuit opens when, within a window, at least MIN_CALLS calls were made and at least
FAILURE_RATE of them failed with an error that says the model is unwell (not a bad request
or a content filter). While open, the router routes around it. After first_probe_seconds
(2 s) a single probe may pass (half-open): the worker that wins the probe slot calls the
model; success closes the circuit, failure opens it again for twice as long, up to
CIRCUIT_OPEN_SECONDS, so a model back from a short outage serves again within seconds and a
long outage is probed sparingly. Auth and not-found errors open it at once, for longer: the
model is unavailable until an operator fixes its key.

Keys (store/keyspace.py): circuit:{scope}:{name} (hash: state, opened_at, until, calls,
failures, window_start, reopens) with scope "model" or "provider", and circuit-probe:{model}
(the probe slot, SET NX with a TTL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from orchestrator.store.connection import RoundTrip, one_trip
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class CircuitPolicy:
    window: float = 60.0  # seconds over which the failure rate is measured
    min_calls: int = 5
    failure_rate: float = 0.5
    open_seconds: float = 30.0  # the longest an outage keeps a circuit open between two probes
    first_probe_seconds: float = 2.0  # the first probe after opening; each failed probe doubles it
    unavailable_seconds: float = 600.0  # after an auth or not-found error
    probe_seconds: float = 60.0  # how long a probe slot is held at most


_SEVERITY = {CLOSED: 0, "probe": 1, HALF_OPEN: 2, OPEN: 3}


class Circuits:
    def __init__(self, client: redis.Redis, prefix: str, policy: CircuitPolicy = CircuitPolicy()):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.policy = policy
        self._record = Lua(client, "circuit_record")
        self._states = Lua(client, "circuit_states")
        self._probe = Lua(client, "circuit_probe")

    def _keys(self, model: str, provider: str) -> list[str]:
        return [self.keyspace.circuit("model", model), self.keyspace.circuit("provider", provider)]

    def _probe_key(self, model: str) -> str:
        return self.keyspace.circuit_probe(model)

    def record(self, model: str, provider: str, success: bool, force_open: bool = False, pipe=None):
        """Count one call's outcome for the model and its provider (on `pipe` when given).
        The reply (the pipeline's, with `pipe`) lists the circuits this call opened from
        closed: 1 for the model's, 2 for the provider's; `opened()` names them."""
        policy = self.policy
        circuits = self._keys(model, provider)
        # An unavailable model (a bad key, an unknown name) says nothing of its provider's health.
        keys = [self._probe_key(model), *(circuits[:1] if force_open else circuits)]
        return self._record(keys, client=pipe or self.redis, now=time.time(), success=int(success),
                            force_open_seconds=policy.unavailable_seconds if force_open else 0, window=policy.window,
                            min_calls=policy.min_calls, failure_rate=policy.failure_rate,
                            open_seconds=policy.open_seconds, first_probe_seconds=policy.first_probe_seconds)

    @staticmethod
    def opened(model: str, provider: str, reply) -> list[tuple[str, str]]:
        """The (scope, name) of each circuit a `record` reply says was just opened from closed."""
        names = {1: ("model", model), 2: ("provider", provider)}
        return [names[int(i)] for i in reply or () if int(i) in names]

    def state_of(self, scope: str, name: str) -> dict:
        """A circuit's hash (state, opened_at, until, calls, failures), {} when never recorded."""
        return self.redis.hgetall(self.keyspace.circuit(scope, name))

    def states(self, models: list[tuple[str, str]]) -> dict[str, str]:
        """For (model, provider) pairs, each model's effective state: the worse of its own
        circuit and its provider's (open, then half_open, then probe, then closed)."""
        return one_trip(self.redis, lambda trip: self.states_in(trip, models))

    def states_in(self, trip: RoundTrip, models: list[tuple[str, str]]) -> Callable[[], dict[str, str]]:
        """`states`, read in the caller's round trip."""
        if not models:
            return lambda: {}

        def effective(raw: list) -> dict[str, str]:
            return {model: max(raw[2 * i], raw[2 * i + 1], key=_SEVERITY.__getitem__)
                    for i, (model, _) in enumerate(models)}

        return trip.script(self._states, [k for pair in models for k in self._keys(*pair)], effective, now=time.time())

    def snapshot(self, models: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Every circuit's own state, keyed by (scope, name): each model's and each provider's."""
        circuits = list(dict.fromkeys([("model", m) for m, _ in models] + [("provider", p) for _, p in models]))
        if not circuits:
            return {}
        raw = self._states([self.keyspace.circuit(scope, name) for scope, name in circuits], now=time.time())
        return dict(zip(circuits, raw, strict=True))

    def try_probe(self, model: str, provider: str) -> bool:
        """Claim the single probe of a model whose circuit cooled down; False when another worker has it."""
        keys = [self._probe_key(model), *self._keys(model, provider)]
        return bool(self._probe(keys, now=time.time(), probe_ttl=int(self.policy.probe_seconds)))
