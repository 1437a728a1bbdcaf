"""Online learning from traffic: per prompt cluster and model, how far outcomes stray from
the learned router's predictions, shared by every worker through Redis.

An outcome is a quality in [0, 1] for a model on a routed request: a rating ((stars - 1) / 4,
thumbs up 1, down 0), or 0 for an attempt that failed (weighted FAILURE_WEIGHT: a failure
says less about the answer's quality than a rating does). Its residual is the outcome less
the model's prediction for that prompt before any correction, read from the routing
decision. Per cluster and model the store keeps a decayed weight and a decayed sum of
residuals (half of both gone after HALF_LIFE without news); the router reads them as a
bounded, shrunk correction (orchestrator/core/routing_model/neighbourhood.py).

Bounded: one hash per cluster (the artifact's k-means clusters, 32), three fields per model
that received an outcome there, each hash expiring TTL after its last update.

Keys:
  {prefix}neighbourhood:{cluster}   hash: "{model}|w" weight, "{model}|r" residual sum,
                                    "{model}|t" unix time of both
"""

from __future__ import annotations

import time

import redis

from orchestrator.core.decision import PredictedQuality
from orchestrator.core.routing_model.neighbourhood import Neighbourhoods, correction
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

HALF_LIFE = 7 * 86400.0
TTL = 90 * 86400
FAILURE_WEIGHT = 0.5
CACHE_SECONDS = 5.0  # a process re-reads the corrections at most this often

def base_quality(prediction: PredictedQuality | None, model: str) -> float | None:
    """The model's predicted quality for the prompt before any correction, or None when the
    decision has no prediction or did not consider the model."""
    tier = prediction.tiers.get(model) if prediction else None
    if prediction is None or tier is None:
        return None
    return min(1.0, max(0.0, prediction.weak + tier * prediction.strong_gain))


class NeighbourhoodQuality:
    def __init__(self, client: redis.Redis, prefix: str, clusters: int, half_life: float = HALF_LIFE):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.clusters = clusters
        self.half_life = half_life
        self._record = Lua(client, "neighbourhood_record")
        self._cache: tuple[float, Neighbourhoods] | None = None

    def key(self, cluster: int) -> str:
        return self.keyspace.neighbourhood(cluster)

    def record(self, prediction: PredictedQuality | None, model: str, quality: float, weight: float = 1.0,
               now: float | None = None) -> bool:
        """One outcome of `model` on the request whose routing decision made `prediction`. False
        when there is no prediction for that model (nothing recorded)."""
        predicted = base_quality(prediction, model)
        if prediction is None or predicted is None or not 0 <= prediction.cluster < self.clusters:
            return False
        cluster = prediction.cluster
        residual = min(1.0, max(-1.0, min(1.0, max(0.0, quality)) - predicted))
        now = time.time() if now is None else now
        self._record([self.key(cluster)], model=model, residual=residual, weight=weight, now=now,
                     half_life=self.half_life, ttl=TTL)
        self._cache = None
        return True

    def record_failure(self, prediction: PredictedQuality | None, model: str, now: float | None = None) -> bool:
        """An attempt of `model` failed (error, timeout, refusal) and the chain fell back."""
        return self.record(prediction, model, 0.0, FAILURE_WEIGHT, now)

    def record_rating(self, prediction: PredictedQuality | None, model: str, rating: int | None, thumbs: str | None,
                      now: float | None = None) -> bool:
        """A user's rating of the answer `model` gave (1-5 stars, or thumbs "up"/"down")."""
        quality = (rating - 1) / 4 if rating is not None else (1.0 if thumbs == "up" else 0.0)
        return self.record(prediction, model, quality, 1.0, now)

    def snapshot(self, now: float | None = None) -> Neighbourhoods:
        """Every cluster's corrections, decayed to `now`; re-read at most every CACHE_SECONDS."""
        cached, clock = self._cache, time.monotonic()
        if cached is not None and now is None and clock - cached[0] < CACHE_SECONDS:
            return cached[1]
        pipe = self.redis.pipeline(transaction=False)
        for cluster in range(self.clusters):
            pipe.hgetall(self.key(cluster))
        now = time.time() if now is None else now
        corrections = {}
        for cluster, fields in enumerate(pipe.execute()):
            by_model = self._corrections(fields, now)
            if by_model:
                corrections[cluster] = by_model
        snapshot = Neighbourhoods(corrections)
        self._cache = (clock, snapshot)
        return snapshot

    def _corrections(self, fields: dict, now: float) -> dict[str, float]:
        values: dict[str, dict[str, float]] = {}
        for name, value in fields.items():
            name = name.decode() if isinstance(name, bytes) else name
            model, _, kind = name.rpartition("|")
            values.setdefault(model, {})[kind] = float(value)
        out = {}
        for model, v in values.items():
            keep = 0.5 ** (max(0.0, now - v.get("t", now)) / self.half_life)
            out[model] = correction(v.get("r", 0.0) * keep, v.get("w", 0.0) * keep)
        return out
