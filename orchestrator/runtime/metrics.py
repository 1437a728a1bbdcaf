"""Prometheus metrics, computed from Redis at each scrape, so that every worker's data counts.

Counters and histograms come from the lifetime totals of orchestrator/store/stats.py
(`{prefix}stats:{model}:total`, which never expire and so never go down); gauges are read
as they are now: circuit states, queue depths and the age of each queue level's oldest task
(the autoscaling signals: deploy/ scales workers on them), live workers, each user's budget utilization
this month. A scrape costs a few round trips whatever the number of API processes.
(Uses prometheus-client, the Prometheus project's own client, for the text format.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from orchestrator.core.catalog import Catalog
from orchestrator.store.budgets import MICRO, Budgets, month_of
from orchestrator.store.circuits import Circuits
from orchestrator.store.fleet import Fleet
from orchestrator.store.stats import LATENCY_BOUNDS_MS, Stats
from orchestrator.store.users import Users

CIRCUIT_VALUES = {"closed": 0, "probe": 1, "half_open": 1, "open": 2}


def _histogram(name: str, doc: str, totals: dict[str, dict], prefix: str, count_field: str, sum_field: str):
    family = HistogramMetricFamily(name, doc, labels=["model", "provider"])
    for (model, provider), counters in totals.items():
        cumulative, buckets = 0, []
        for bound in LATENCY_BOUNDS_MS:
            cumulative += int(counters.get(f"{prefix}:{bound}", 0))
            buckets.append((str(bound / 1000), cumulative))
        buckets.append(("+Inf", int(counters.get(count_field, 0))))
        family.add_metric([model, provider], buckets, float(counters.get(sum_field, 0.0)))
    return family


class RedisCollector(Collector):
    def __init__(self, client: redis.Redis, prefix: str, catalog: Catalog, stats: Stats, circuits: Circuits,
                 fleet: Fleet, users: Users, budgets: Budgets,
                 queues: Callable[[], dict[str, dict[int, tuple[int, float | None]]]], per_user: bool = False):
        self.redis, self.prefix, self.catalog, self.stats = client, prefix, catalog, stats
        self.per_user = per_user  # each user's budget series (user ids): for the admin's scrape only
        self.circuits, self.fleet, self.users, self.budgets = circuits, fleet, users, budgets
        # per queue and level: (tasks waiting, the oldest's send time); kombu's layout (workers/broker.py)
        self.queues = queues

    def collect(self):
        pairs = [(m.model_name, m.provider) for m in self.catalog]
        read = self.stats.totals([m for m, _ in pairs])
        totals = {(m, p): {k: float(v) for k, v in read[m]["totals"].items()} for m, p in pairs}
        yield from self._counters(totals)
        yield _histogram("orchestrator_latency_seconds", "Latency of answered attempts", totals, "lat", "ok",
                         "latency_sum")
        yield _histogram("orchestrator_ttft_seconds", "Time to first token of answered attempts", totals, "ttft",
                         "ttft_count", "ttft_sum")
        circuits = GaugeMetricFamily("orchestrator_circuit_state",
                                     "Circuit state: 0 closed, 1 half-open (probing), 2 open", labels=["scope", "name"])
        for (scope, name), state in self.circuits.snapshot(pairs).items():
            circuits.add_metric([scope, name], CIRCUIT_VALUES.get(state, 0))
        yield circuits
        yield from self._queues()
        yield GaugeMetricFamily("orchestrator_workers_alive", "Workers with a recent heartbeat",
                                value=len(self.fleet.alive()))
        if self.per_user:
            yield from self._budgets()

    def _queues(self):
        depth = GaugeMetricFamily("orchestrator_queue_depth",
                                  "Tasks waiting per queue and kombu priority level (0 is served first)",
                                  labels=["queue", "level"])
        age = GaugeMetricFamily("orchestrator_queue_oldest_age_seconds",
                                "How long the oldest task waiting per queue and kombu priority level has waited "
                                "(0 when none waits)", labels=["queue", "level"])
        now = time.time()
        for queue, by_level in self.queues().items():
            for level, (length, oldest) in sorted(by_level.items()):
                depth.add_metric([queue, str(level)], length)
                age.add_metric([queue, str(level)], max(0.0, now - oldest) if length and oldest else 0.0)
        yield depth
        yield age

    @staticmethod
    def _counters(totals: dict[tuple[str, str], dict]):
        def counter(name: str, doc: str, field: str, scale: float = 1.0):
            family = CounterMetricFamily(name, doc, labels=["model", "provider"])
            for (model, provider), counters in totals.items():
                family.add_metric([model, provider], counters.get(field, 0.0) * scale)
            return family

        yield counter("orchestrator_attempts", "Provider calls (attempts), answered or not", "requests")
        yield counter("orchestrator_successes", "Attempts that answered", "ok")
        yield counter("orchestrator_fallbacks", "Attempts on a model that was not the first choice", "fallbacks")
        yield counter("orchestrator_cost_usd", "Cost of the attempts, USD", "cost_micro", 1 / MICRO)
        errors = CounterMetricFamily("orchestrator_errors", "Failed attempts by error class",
                                     labels=["model", "provider", "kind"])
        tokens = CounterMetricFamily("orchestrator_tokens", "Tokens", labels=["model", "provider", "direction"])
        for (model, provider), counters in totals.items():
            for field, value in sorted(counters.items()):
                if field.startswith("err:"):
                    errors.add_metric([model, provider, field[4:]], value)
            tokens.add_metric([model, provider, "input"], counters.get("input_tokens", 0.0))
            tokens.add_metric([model, provider, "output"], counters.get("output_tokens", 0.0))
        yield errors
        yield tokens

    def _budgets(self):
        users = self.users.list_all()
        month = month_of(time.time())
        pipe = self.redis.pipeline(transaction=False)
        for user in users:
            pipe.hget(self.budgets.keys(user.id, month)[0], "spent_micro")
        utilization = GaugeMetricFamily("orchestrator_budget_utilization_ratio",
                                        "Spent this month over the monthly budget", labels=["user_id"])
        spent = GaugeMetricFamily("orchestrator_budget_spent_usd", "Spent this month, USD", labels=["user_id"])
        for user, micro in zip(users, pipe.execute(), strict=True):
            usd = int(micro or 0) / MICRO
            spent.add_metric([user.id], usd)
            utilization.add_metric([user.id], usd / user.monthly_budget if user.monthly_budget else 0.0)
        yield utilization
        yield spent


def registry(collector: RedisCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
