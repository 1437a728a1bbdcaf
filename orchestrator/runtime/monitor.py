"""The fleet's periodic checks: performance degradation and lost workers, alerted once per episode.

Every worker calls `Monitor.tick()` on its Celery heartbeat (every 2 s); a SET NX lock with
a TTL of INTERVAL seconds lets one worker of the fleet run the checks per interval, so the
work does not grow with the number of workers, and nothing runs on a request's path.

- **Performance degradation.** Per model, the p95 latency of its recent answers (the
  current and the previous hour's histogram) against a trigger: `factor` times its own
  baseline (the p95 of the 24 hours before them, with at least MIN_BASELINE answers), or
  the absolute `ceiling` when one is set and lower (DEGRADATION_FACTOR and
  DEGRADATION_P95_SECONDS). With at least MIN_RECENT recent answers, a p95 over the trigger
  opens an episode and fires one alert; the episode ends (and a later degradation alerts
  again) when the p95 is back under `recovered()`: halfway from the baseline to the
  trigger, or CEILING_RECOVERY of the ceiling when there is no baseline.
- **Worker lost.** A worker whose heartbeat stopped without a shutdown (its entry in the
  fleet's set older than HEARTBEAT_TTL) is removed from the set and alerted once.
- **The worker's own periodic work**, passed to `tick` (workers/lost_items.py: batch items the
  broker lost, sent again), runs after the checks, even when they failed.

(Circuit openings are alerted by the worker that opened the circuit, at that moment:
orchestrator/execution/accounting.py.)

Keys: {prefix}monitor-lock (string, expiring after INTERVAL seconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from orchestrator.core.catalog import Catalog
from orchestrator.runtime.analytics import histogram_of, quantile, summed
from orchestrator.store.alerts import Alert, Alerts
from orchestrator.store.fleet import Fleet
from orchestrator.store.keyspace import Keys
from orchestrator.store.stats import Stats

log = logging.getLogger(__name__)

INTERVAL = 5.0
CEILING_RECOVERY = 0.75  # of the ceiling, for a model without a baseline
MIN_RECENT = 20
MIN_BASELINE = 50
BASELINE_HOURS = 24
EPISODE_TTL = 6 * 3600  # a degradation still going on after this alerts again


class Monitor:
    def __init__(self, client: redis.Redis, prefix: str, stats: Stats, catalog: Catalog, alerts: Alerts, fleet: Fleet,
                 factor: float, ceiling: float | None):
        self.redis = client
        self.keyspace = Keys(prefix)
        self.stats = stats
        self.catalog = catalog
        self.alerts = alerts
        self.fleet = fleet
        self.factor = factor
        self.ceiling = ceiling

    @property
    def lock_key(self) -> str:
        return self.keyspace.monitor_lock

    def tick(self, *also: Callable[[], object]) -> list[Alert]:
        """Run the checks, then each of `also` (the worker's own periodic work), when no other
        worker did within INTERVAL seconds; never raises."""
        try:
            if not self.redis.set(self.lock_key, "1", nx=True, px=int(INTERVAL * 1000)):
                return []
        except Exception:
            log.exception("monitor pass failed")
            return []
        try:
            fired = self.run()
        except Exception:
            log.exception("monitor checks failed")
            fired = []
        for work in also:
            try:
                work()
            except Exception:
                log.exception("periodic work %s failed", getattr(work, "__name__", work))
        return fired

    def run(self, now: float | None = None) -> list[Alert]:
        now = time.time() if now is None else now
        return self.degradations(now) + self.lost_workers()

    @staticmethod
    def degraded_episode(model: str) -> str:
        return f"degraded:{model}"

    def degradations(self, now: float) -> list[Alert]:
        hour = int(now // 3600)
        names = [m.model_name for m in self.catalog]
        hours = self.stats.hours(names, hour - 1 - BASELINE_HOURS, hour)
        fired = []
        for name in names:
            baseline = histogram_of(summed(hours[name][:BASELINE_HOURS]), "lat")
            recent = histogram_of(summed(hours[name][BASELINE_HOURS:]), "lat")
            base_p95 = quantile(baseline, 0.95) if sum(baseline.values()) >= MIN_BASELINE else None
            trigger = self.trigger(base_p95)
            if trigger is None or sum(recent.values()) < MIN_RECENT:
                continue
            recent_p95 = quantile(recent, 0.95)
            if recent_p95 > trigger:
                alert = self._degraded(name, recent_p95, base_p95, trigger, recent, baseline)
                if self.alerts.fire(alert, self.degraded_episode(name), EPISODE_TTL):
                    fired.append(alert)
            elif recent_p95 < self.recovered(base_p95, trigger):
                self.alerts.end_episode(self.degraded_episode(name))
        return fired

    def trigger(self, base_p95: float | None) -> float | None:
        """The p95 latency over which a model is degraded; None when nothing to compare with."""
        return min((t for t in (base_p95 and self.factor * base_p95, self.ceiling) if t), default=None)

    @staticmethod
    def recovered(base_p95: float | None, trigger: float) -> float:
        """The p95 under which a degradation is over (with a factor of 2: 1.5 times the baseline)."""
        return (base_p95 + trigger) / 2 if base_p95 else CEILING_RECOVERY * trigger

    def _degraded(self, model: str, p95: float, base_p95: float | None, trigger: float, recent: dict,
                  baseline: dict) -> Alert:
        if base_p95 and trigger == self.factor * base_p95:
            against = f"{p95 / base_p95:.1f} times its baseline of {base_p95:.2f}s"
        else:
            against = f"over the ceiling of {trigger:.2f}s (DEGRADATION_P95_SECONDS)"
        return Alert(
            kind="performance_degradation", severity="warning", subject=f"model:{model}",
            message=f"{model}'s p95 latency is {p95:.2f}s over the last hour or two, {against}",
            details={"model": model, "p95": round(p95, 4), "baseline_p95": base_p95 and round(base_p95, 4),
                     "trigger": round(trigger, 4), "recent_answers": sum(recent.values()),
                     "baseline_answers": sum(baseline.values()), "factor": self.factor, "ceiling": self.ceiling},
        )

    def lost_workers(self) -> list[Alert]:
        fired = []
        for hostname, last_beat in self.fleet.lost():
            alert = Alert(
                kind="worker_lost", severity="warning", subject=f"worker:{hostname}",
                message=f"Worker {hostname} stopped sending heartbeats {time.time() - last_beat:.0f}s ago without "
                        "shutting down; its tasks in flight will be delivered again after VISIBILITY_TIMEOUT",
                details={"hostname": hostname, "last_heartbeat": last_beat},
            )
            if self.alerts.fire(alert, f"worker_lost:{hostname}:{last_beat}", 86400):
                fired.append(alert)
        return fired
