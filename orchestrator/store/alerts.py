"""Alerts: what an operator (or a user, for their budget) should hear about, once per episode.

An alert is {id, kind, severity, subject, message, details, time, user_id}. `fire()` records
it only when its episode is new: a SET NX of the episode's key (a budget threshold per user
and month, a circuit per opening, a degradation per episode...) and the pushes onto the
lists happen in one Lua call, so however many workers notice the same thing at once, the
alert is recorded, and posted, once.

Kinds: budget_threshold (50, 80, 100 % of a user's monthly budget), model_outage (a
circuit opened), performance_degradation (p95 latency over twice its baseline),
cost_anomaly (a user's hourly spend far above their average), worker_lost.

When ALERT_WEBHOOK_URL is set, each new alert is POSTed there as JSON by a background
thread (a short timeout; failures are logged, never raised): firing never waits on the
network, so the request path is never slowed by a slow or dead webhook.

Keys:
  {prefix}alerts                 list: every alert (JSON), newest first, capped at MAX_ALERTS
  {prefix}alerts:user:{user_id}  list: the alerts a user may see (their budget and spend), capped
  {prefix}alert-once:{episode}   string: the episode has fired (expires with the episode's TTL)
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field

import redis

from orchestrator.store.keyspace import Keys
from orchestrator.store.scripts import Lua

log = logging.getLogger(__name__)

MAX_ALERTS = 1000
WEBHOOK_TIMEOUT = 3.0
WEBHOOK_QUEUE = 1000  # alerts waiting to be posted; more are dropped (and logged)

@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str  # info, warning, critical
    subject: str  # what it is about: a model, a user, a worker
    message: str
    details: dict = field(default_factory=dict)
    user_id: str | None = None  # set for alerts the user may see (their budget, their spend)
    id: str = field(default_factory=lambda: f"alrt_{secrets.token_hex(8)}")
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return asdict(self)


class Webhook:
    """Posts alerts to a URL from one daemon thread, so that firing never blocks."""

    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT):
        self.url = url
        self.timeout = timeout
        self._queue: queue.Queue[dict] = queue.Queue(WEBHOOK_QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, alert: dict) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            log.warning("alert webhook queue full; alert %s not posted", alert.get("id"))

    def _run(self) -> None:
        while True:
            self.post(self._queue.get())

    def post(self, alert: dict) -> bool:
        body = json.dumps(alert).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "orchestrator"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
            return True
        except Exception as exc:  # any failure of the webhook is logged, never raised
            log.warning("alert webhook %s failed for alert %s: %s", self.url, alert.get("id"), exc)
            return False


class Alerts:
    def __init__(self, client: redis.Redis, prefix: str, webhook_url: str | None = None):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.webhook = Webhook(webhook_url) if webhook_url else None
        self._fire = Lua(client, "alert_fire")

    @property
    def all_key(self) -> str:
        return self.keyspace.alerts

    def user_key(self, user_id: str) -> str:
        return self.keyspace.user_alerts(user_id)

    def episode_key(self, episode: str) -> str:
        return self.keyspace.alert_once(episode)

    def fire(self, alert: Alert, episode: str, ttl: float = 0) -> bool:
        """Record `alert` (and post it) unless its episode already fired; True when it is new."""
        keys = [self.episode_key(episode), self.all_key]
        if alert.user_id:
            keys.append(self.user_key(alert.user_id))
        data = alert.as_dict()
        fired = bool(self._fire(keys, alert=json.dumps(data), ttl=int(ttl), max_length=MAX_ALERTS))
        if fired:
            log.warning("ALERT %s %s: %s", alert.kind, alert.subject, alert.message)
            if self.webhook is not None:
                self.webhook.submit(data)
        return fired

    def end_episode(self, episode: str) -> None:
        """The condition is over: the next time it happens is a new episode."""
        self.redis.delete(self.episode_key(episode))

    def recent(self, user_id: str | None = None, limit: int = 100, kind: str | None = None) -> list[dict]:
        """Newest first: a user's alerts, or every alert (user_id None)."""
        key = self.user_key(user_id) if user_id else self.all_key
        alerts = [json.loads(raw) for raw in self.redis.lrange(key, 0, MAX_ALERTS - 1)]
        if kind:
            alerts = [a for a in alerts if a["kind"] == kind]
        return alerts[:limit]
