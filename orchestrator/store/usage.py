"""Per-user usage, counted when a request settles; budget thresholds and spend anomalies.

After a request's answer is published and its cost settled (the terminal-once Lua in
request_store.py), the worker runs one more script, `Usage.settled` (one round trip), that:

- counts the request per user, month, complexity level and model: requests, input and
  output tokens, cost (for analytics/user and its recommendations);
- counts spend and requests per day, user and model (for the admin's analytics);
- adds the cost to the user's hourly spend (for the cost anomaly alert);
- bumps the user's learned score for the model at that level when it answered at the
  first attempt (orchestrator/store/learning.py);
- reads what the user has spent this month (the budget's totals, just settled) and their
  monthly budget, and returns the thresholds (50, 80, 100 %) reached whose alert has not
  fired yet, and whether this hour's spend is an anomaly not yet alerted.

The worker then fires those alerts (orchestrator/store/alerts.py): a second round trip only when
something crossed. This script runs after the terminal-once Lua, not inside it (that Lua is
shared with the other terminal paths). A worker that dies between the two leaves the
request billed but not yet counted; its task is delivered again (acks late), finds the
request completed and counts it from the stored result. The script counts a request once
(a field of its record), so the counters agree with billing whichever worker counts.

A refusal for budget (402) after the 80 % alert also reaches the 100 % threshold: with
worst-case reservations, settled spend can come near the budget but never exactly to it.

Keys (expiring 40 days after their last write, the hourly spend 8 days):
  {prefix}usage:{user_id}:{YYYY-MM}   hash: "{complexity}|{model}|{requests|input_tokens|output_tokens|cost_micro}"
  {prefix}spend:{YYYY-MM-DD}          hash: "{user_id}|{model}|{requests|cost_micro}"
  {prefix}uspend:{user_id}            hash: "h{hour}" -> micro-dollars spent in that hour, "first" -> first hour
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from orchestrator.store.alerts import Alert, Alerts
from orchestrator.store.budgets import MICRO, Budgets, month_of
from orchestrator.store.keyspace import Keys
from orchestrator.store.learning import HALF_LIFE, LEARNED_TTL, Learning
from orchestrator.store.scripts import Lua

THRESHOLDS = (50, 80, 100)
KEY_TTL = 40 * 86400
HOURLY_TTL = 8 * 86400
ANOMALY_WINDOW_HOURS = 7 * 24  # the average is over this many hours before the current one
ANOMALY_MIN_HISTORY_HOURS = 24  # a user seen for less has no average worth comparing to
ANOMALY_EPISODE_TTL = 2 * 3600  # an anomaly episode ends two hours after its last anomalous settlement
FIELDS = ("requests", "input_tokens", "output_tokens", "cost_micro")

@dataclass(frozen=True)
class Settled:
    """What a settlement brought: the month's spend and budget, and the alerts now due."""

    spent: float
    limit: float
    hour_spend: float
    hour_average: float
    anomaly: bool
    crossed: tuple[int, ...] = field(default_factory=tuple)
    user_name: str | None = None


@dataclass(frozen=True)
class UsageRow:
    complexity: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float


class Usage:
    def __init__(self, client: redis.Redis, prefix: str, budgets: Budgets, learning: Learning, alerts: Alerts,
                 default_limit: float, anomaly_factor: float, anomaly_min_spend: float):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.budgets = budgets
        self.learning = learning
        self.alerts = alerts
        self.default_limit = default_limit
        self.anomaly_factor = anomaly_factor  # this hour's spend over this many times the average hourly spend
        self.anomaly_min_spend = anomaly_min_spend  # USD in the hour: below this nothing is an anomaly
        self._settled = Lua(client, "usage_settled")

    def month_key(self, user_id: str, month: str) -> str:
        return self.keyspace.usage(user_id, month)

    def day_key(self, day: str) -> str:
        return self.keyspace.daily_spend(day)

    def hourly_key(self, user_id: str) -> str:
        return self.keyspace.hourly_spend(user_id)

    @staticmethod
    def budget_episode(user_id: str, month: str, pct: int) -> str:
        return f"budget:{user_id}:{month}:{pct}"

    @staticmethod
    def anomaly_episode(user_id: str) -> str:
        return f"cost_anomaly:{user_id}"

    # --- writing

    def settled(
        self, request_id: str, user_id: str, model: str, complexity: str, cost: float, input_tokens: int,
        output_tokens: int, first_try: bool, user_key: str, now: float | None = None,
    ) -> Settled | None:
        """Count a settled request and say which alerts are due (see the module's doc); None
        when it was counted already."""
        now = time.time() if now is None else now
        month = month_of(now)
        keys = [
            self.month_key(user_id, month), self.day_key(time.strftime("%Y-%m-%d", time.gmtime(now))),
            self.hourly_key(user_id), self.budgets.keys(user_id, month)[0], user_key,
            self.learning.learned_key(user_id),
            *(self.alerts.episode_key(self.budget_episode(user_id, month, pct)) for pct in THRESHOLDS),
            self.alerts.episode_key(self.anomaly_episode(user_id)), self.keyspace.record(request_id),
        ]
        reply = self._settled(
            keys, complexity=complexity, model=model, cost_micro=round(cost * MICRO), input_tokens=input_tokens,
            output_tokens=output_tokens, hour=int(now // 3600), default_limit_micro=round(self.default_limit * MICRO),
            ttl=KEY_TTL, first_try=int(first_try), now=now, half_life=HALF_LIFE, anomaly_factor=self.anomaly_factor,
            anomaly_min_micro=round(self.anomaly_min_spend * MICRO), min_history_hours=ANOMALY_MIN_HISTORY_HOURS,
            window_hours=ANOMALY_WINDOW_HOURS, user_id=user_id, hourly_ttl=HOURLY_TTL, learned_ttl=LEARNED_TTL,
            anomaly_ttl=ANOMALY_EPISODE_TTL,
        )
        if not reply:
            return None
        spent, limit, hour_spend, average, anomaly, crossed, name = reply
        return Settled(spent / MICRO, limit / MICRO, hour_spend / MICRO, float(average) / MICRO, bool(anomaly),
                       tuple(int(p) for p in crossed), name or None)

    def alert(self, user_id: str, settled: Settled, now: float | None = None) -> list[Alert]:
        """Fire the alerts a settlement made due; the ones that fired."""
        now = time.time() if now is None else now
        month = month_of(now)
        fired = []
        who = f"{settled.user_name} ({user_id})" if settled.user_name else user_id
        for pct in settled.crossed:
            alert = budget_alert(user_id, who, month, pct, settled.spent, settled.limit)
            if self.alerts.fire(alert, self.budget_episode(user_id, month, pct), KEY_TTL):
                fired.append(alert)
        if settled.anomaly:
            alert = Alert(
                kind="cost_anomaly", severity="warning", subject=user_id, user_id=user_id,
                message=(f"{who} spent ${settled.hour_spend:.2f} this hour, {settled.hour_spend / max(settled.hour_average, 1e-9):.0f}"
                         f" times their average of ${settled.hour_average:.2f} an hour"),
                details={"hour_spend": round(settled.hour_spend, 6), "hourly_average": round(settled.hour_average, 6),
                         "factor": self.anomaly_factor},
            )
            if self.alerts.fire(alert, self.anomaly_episode(user_id), ANOMALY_EPISODE_TTL):
                fired.append(alert)
        return fired

    def refused(self, user_id: str, user_name: str | None, limit: float) -> Alert | None:
        """A request was refused for lack of budget: past the 80 % alert, the budget counts as
        exhausted (the 100 % alert), since reservations keep spend from ever reaching it."""
        month = month_of(time.time())
        if not self.redis.exists(self.alerts.episode_key(self.budget_episode(user_id, month, 80))):
            return None
        spent, _ = self.budgets.usage(user_id)
        who = f"{user_name} ({user_id})" if user_name else user_id
        alert = budget_alert(user_id, who, month, 100, spent, limit, refused=True)
        return alert if self.alerts.fire(alert, self.budget_episode(user_id, month, 100), KEY_TTL) else None

    def seed_hourly(self, user_id: str, spend_by_hour: dict[int, float]) -> None:
        """Write a past hourly spend (for tests and imports): hour number -> USD."""
        mapping = {f"h{hour}": round(usd * MICRO) for hour, usd in spend_by_hour.items()}
        mapping["first"] = min(spend_by_hour)
        self.redis.hset(self.hourly_key(user_id), mapping=mapping)

    # --- reading

    def month(self, user_id: str, month: str | None = None) -> list[UsageRow]:
        """The user's requests this month (or `month`) per complexity level and model."""
        raw = self.redis.hgetall(self.month_key(user_id, month or month_of(time.time())))
        rows: dict[tuple[str, str], dict[str, int]] = {}
        for name, value in raw.items():
            level, model, what = name.split("|", 2)
            rows.setdefault((level, model), {})[what] = int(value)
        return [
            UsageRow(level, model, c.get("requests", 0), c.get("input_tokens", 0), c.get("output_tokens", 0),
                     c.get("cost_micro", 0) / MICRO)
            for (level, model), c in sorted(rows.items())
        ]

    def days(self, days: list[str]) -> dict[str, list[dict]]:
        """Per day: [{user_id, model, requests, cost}] (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.day_key(day))
        out = {}
        for day, raw in zip(days, pipe.execute(), strict=True):
            rows: dict[tuple[str, str], dict[str, int]] = {}
            for name, value in raw.items():
                user, model, what = name.rsplit("|", 2)
                rows.setdefault((user, model), {})[what] = int(value)
            out[day] = [
                {"user_id": u, "model": m, "requests": c.get("requests", 0), "cost": c.get("cost_micro", 0) / MICRO}
                for (u, m), c in sorted(rows.items())
            ]
        return out


def budget_alert(user_id: str, who: str, month: str, pct: int, spent: float, limit: float,
                 refused: bool = False) -> Alert:
    utilization = 100 * spent / limit if limit else 100.0
    if refused:
        message = (f"{who} has exhausted the monthly budget for {month}: ${spent:.2f} of ${limit:.2f} spent "
                   f"({utilization:.1f}%), and a request was refused because what is left cannot cover it")
    else:
        message = f"{who} has spent ${spent:.2f} of the ${limit:.2f} monthly budget for {month} ({utilization:.1f}%)"
    return Alert(
        kind="budget_threshold", severity={50: "info", 80: "warning"}.get(pct, "critical"), subject=user_id,
        user_id=user_id, message=message,
        details={"threshold": pct, "month": month, "spent": round(spent, 6), "monthly_budget": round(limit, 6),
                 "utilization": round(utilization, 2), "refused": refused},
    )
