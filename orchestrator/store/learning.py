"""Learned preferences and feedback: what served each user well, and how users rate models.

**Learned preferences.** Per user, complexity level and model, a score that decays
exponentially (half of it gone after HALF_LIFE seconds without news): +1 for each answer
given at the first attempt (not retried, no fallback; added by the settlement script in
orchestrator/store/usage.py), and for a rating, +2 (5), +1 (4), 0 (3), -1 (2), -2 (1); thumbs up
+1.5, down -2. At each level, the models whose score is at least MIN_SCORE, best first (at
most MAX_LEARNED), are the user's learned defaults: the worker passes them to the router as
`Preferences.preferred_models` for the levels where the user set none explicitly, so they
lead under the user_preference strategy.

**Observed quality.** Per model and task type, the sum and count of ratings mapped to [0, 1]
((rating - 1) / 4; thumbs up 1, down 0). The router blends the mean into the catalog's
quality prior for that task type, trusting it in proportion to the number of ratings (at
most half, from TRUSTED_RATINGS on): `feedback_quality` beside `observations`, because the
moving averages in stats.py say whether a model answers, not how well.

Keys:
  {prefix}learned:{user_id}     hash: "{complexity}|{model}" -> "{score}:{unix time of the score}"
  {prefix}quality               hash: "{model}|{task_type}|sum" and "...|n" (ratings, all users)
  {prefix}feedback:{request_id} hash: the rating given to a request (one per request), expiring
                                with the request's record (RESULT_TTL)
"""

from __future__ import annotations

import json
import time

import redis

from orchestrator.core.evidence import RatedQuality
from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

HALF_LIFE = 14 * 86400.0
MIN_SCORE = 1.9  # two first-time answers, or one 5-star rating, recently
MAX_LEARNED = 2
LEARNED_TTL = 90 * 86400
RATINGS_KEPT = 50  # a user's latest ratings kept for analytics and the dashboard
QUALITY_CACHE = 5.0  # seconds a process keeps the rated qualities before reading them again
RATING_DELTA = {1: -2.0, 2: -1.0, 3: 0.0, 4: 1.0, 5: 2.0}
THUMB_DELTA = {"up": 1.5, "down": -2.0}

def decayed(raw: str, now: float, half_life: float = HALF_LIFE) -> float:
    value, _, at = raw.partition(":")
    return float(value) * 0.5 ** (max(0.0, now - float(at)) / half_life)


def rating_value(rating: int | None, thumbs: str | None) -> tuple[float, float]:
    """(score delta for the learned preferences, quality in [0, 1])."""
    if rating is not None:
        return RATING_DELTA[rating], (rating - 1) / 4
    return THUMB_DELTA[thumbs], 1.0 if thumbs == "up" else 0.0


class Learning:
    def __init__(self, client: redis.Redis, prefix: str, result_ttl: int = 86400):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.result_ttl = result_ttl
        self._feedback = Lua(client, "feedback")
        self._quality_cache: tuple[float, dict[str, dict[str, RatedQuality]]] | None = None

    def learned_key(self, user_id: str) -> str:
        return self.keyspace.learned(user_id)

    @property
    def quality_key(self) -> str:
        return self.keyspace.rated_quality

    def feedback_key(self, request_id: str) -> str:
        return self.keyspace.feedback(request_id)

    # --- reading, for routing and analytics

    def scores(self, raw: dict[str, str], now: float | None = None) -> dict[str, dict[str, float]]:
        """{complexity: {model: decayed score}} from the learned hash's fields."""
        now = time.time() if now is None else now
        scores: dict[str, dict[str, float]] = {}
        for name, value in raw.items():
            level, _, model = name.partition("|")
            scores.setdefault(level, {})[model] = decayed(value, now)
        return scores

    @staticmethod
    def defaults(scores: dict[str, dict[str, float]]) -> dict[str, tuple[str, ...]]:
        """The learned default models per complexity level, best first."""
        learned = {}
        for level, by_model in scores.items():
            good = sorted((m for m, s in by_model.items() if s >= MIN_SCORE), key=lambda m: (-by_model[m], m))
            if good:
                learned[level] = tuple(good[:MAX_LEARNED])
        return learned

    @staticmethod
    def qualities(raw: dict[str, str]) -> dict[str, dict[str, RatedQuality]]:
        """{model: {task_type: RatedQuality}} from the quality hash's fields."""
        sums: dict[tuple[str, str], list[float]] = {}
        for name, value in raw.items():
            model, task_type, what = name.rsplit("|", 2)
            sums.setdefault((model, task_type), [0.0, 0.0])[0 if what == "sum" else 1] = float(value)
        out: dict[str, dict[str, RatedQuality]] = {}
        for (model, task_type), (total, count) in sums.items():
            if count > 0:
                out.setdefault(model, {})[task_type] = RatedQuality(total / count, int(count))
        return out

    def for_routing(self, user_id: str | None) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, RatedQuality]]]:
        """The user's learned defaults (when `user_id`) and every model's rated quality. The
        ratings change slowly: a process re-reads them at most every QUALITY_CACHE seconds,
        so most requests pay no round trip, and one under user_preference pays one."""
        now = time.monotonic()
        cached = self._quality_cache
        fresh = cached is not None and now - cached[0] < QUALITY_CACHE
        if fresh and not user_id:
            return {}, cached[1]
        pipe = self.redis.pipeline(transaction=False)
        if not fresh:
            pipe.hgetall(self.quality_key)
        if user_id:
            pipe.hgetall(self.learned_key(user_id))
        replies = pipe.execute()
        if not fresh:
            cached = self._quality_cache = (now, self.qualities(replies.pop(0)))
        learned = self.defaults(self.scores(replies[0])) if user_id else {}
        return learned, cached[1]

    def learned_scores(self, user_id: str) -> dict[str, dict[str, float]]:
        return self.scores(self.redis.hgetall(self.learned_key(user_id)))

    # --- writing

    def rate(
        self, request_id: str, user_id: str, model: str, complexity: str, task_type: str,
        rating: int | None, thumbs: str | None, comment: str | None,
    ) -> bool:
        """Record the rating of one request (once: False when it was already rated)."""
        delta, quality = rating_value(rating, thumbs)
        now = time.time()
        record = {"user_id": user_id, "model": model, "complexity": complexity, "task_type": task_type,
                  "rating": "" if rating is None else rating, "thumbs": thumbs or "", "comment": comment or "",
                  "time": now}
        keys = [self.feedback_key(request_id), self.learned_key(user_id), self.quality_key,
                self.keyspace.ratings(user_id)]
        self._quality_cache = None
        entry = json.dumps({**record, "request_id": request_id, "rating": rating})
        return bool(self._feedback(
            keys, now=now, half_life=HALF_LIFE, learned_field=f"{complexity}|{model}", delta=delta,
            quality_field=f"{model}|{task_type}", quality=quality, ttl=self.result_ttl, learned_ttl=LEARNED_TTL,
            entry=entry, kept=RATINGS_KEPT, record=[x for pair in record.items() for x in pair],
        ))

    def ratings(self, user_id: str) -> list[dict]:
        """The user's latest ratings (RATINGS_KEPT at most), newest first."""
        return [json.loads(entry) for entry in self.redis.lrange(self.keyspace.ratings(user_id), 0, -1)]

    def rating_of(self, request_id: str) -> dict | None:
        return self.redis.hgetall(self.feedback_key(request_id)) or None
