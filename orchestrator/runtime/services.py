"""The long-lived objects a process builds once from its settings and shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis

from orchestrator.config import Settings
from orchestrator.core.catalog import Catalog
from orchestrator.core.router import Router
from orchestrator.execution.accounting import Accounting
from orchestrator.execution.admission import Admission
from orchestrator.execution.attempt import Caller, Observer
from orchestrator.execution.economy import WINDOW, Economy
from orchestrator.execution.embedder import Embedder
from orchestrator.execution.executor import Executor
from orchestrator.execution.rate_slots import RateSlots
from orchestrator.execution.settlement import Settlement
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.runtime.monitor import Monitor
from orchestrator.store.alerts import Alerts
from orchestrator.store.batches import BatchStore
from orchestrator.store.budgets import Budgets
from orchestrator.store.circuits import CircuitPolicy, Circuits
from orchestrator.store.connection import Replicas, connect, connect_broker
from orchestrator.store.conversations import Conversations
from orchestrator.store.files import Files
from orchestrator.store.fleet import Fleet
from orchestrator.store.learning import Learning
from orchestrator.store.ledger import Ledger
from orchestrator.store.neighbourhood_quality import NeighbourhoodQuality
from orchestrator.store.provider_batches import ProviderBatches
from orchestrator.store.provider_limits import ProviderLimits
from orchestrator.store.rate_limit import RateLimiter
from orchestrator.store.requests import RequestStore
from orchestrator.store.stats import Stats
from orchestrator.store.usage import Usage
from orchestrator.store.users import Users


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    catalog: Catalog

    # The catalog's models that nobody can serve (no key, sandbox off), and why; not in `catalog`.
    unavailable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        everything = Catalog.load(settings.models_file)
        unavailable = ProviderRegistry(settings, everything).unavailable_models()
        return cls(settings=settings, redis=connect(settings), catalog=everything.without(unavailable),
                   unavailable=unavailable)

    @cached_property
    def broker(self) -> redis.Redis:
        """Where Celery's queues are (workers/broker.py reads them): `redis`, or BROKER_URL's Redis."""
        return connect_broker(self.settings, self.redis)

    @cached_property
    def requests(self) -> RequestStore:
        return RequestStore(self.redis, self.settings.redis_prefix, self.settings.result_ttl)

    @cached_property
    def replicas(self) -> Replicas:
        return Replicas(self.settings.redis_wait_replicas, self.settings.redis_wait_timeout)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings.redis_prefix, self.settings.result_ttl, self.replicas)

    @cached_property
    def router(self) -> Router:
        return Router(self.catalog, default_model=self.settings.default_model_name, unserved=self.unavailable)

    @cached_property
    def economy_router(self) -> Router:
        """Routing for economy batch items: the same strategies over the catalog at batch prices."""
        return Router(self.catalog.at_batch_prices(), default_model=self.settings.default_model_name,
                      quality_model=self.router.quality_model, unserved=self.unavailable)

    @cached_property
    def providers(self) -> ProviderRegistry:
        return ProviderRegistry(self.settings, self.catalog)

    @cached_property
    def fleet(self) -> Fleet:
        return Fleet(self.redis, self.settings.redis_prefix)

    @cached_property
    def conversations(self) -> Conversations:
        return Conversations(self.redis, self.settings.redis_prefix)

    @cached_property
    def circuits(self) -> Circuits:
        settings = self.settings
        policy = CircuitPolicy(min_calls=settings.circuit_min_calls, failure_rate=settings.circuit_failure_rate,
                               open_seconds=settings.circuit_open_seconds)
        return Circuits(self.redis, settings.redis_prefix, policy)

    @cached_property
    def stats(self) -> Stats:
        return Stats(self.redis, self.settings.redis_prefix)

    @cached_property
    def users(self) -> Users:
        return Users.for_settings(self.redis, self.settings)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(
            self.redis, self.settings.redis_prefix, self.settings.rate_limit_requests, self.settings.rate_limit_window
        )

    @cached_property
    def budgets(self) -> Budgets:
        return Budgets(self.redis, self.settings.redis_prefix)

    # Alerts, usage accounting and learned preferences (orchestrator/store/alerts.py, usage.py, learning.py).

    @cached_property
    def alerts(self) -> Alerts:
        return Alerts(self.redis, self.settings.redis_prefix, self.settings.alert_webhook_url)

    @cached_property
    def learning(self) -> Learning:
        return Learning(self.redis, self.settings.redis_prefix, self.settings.result_ttl)

    @cached_property
    def neighbourhoods(self) -> NeighbourhoodQuality:
        return NeighbourhoodQuality(self.redis, self.settings.redis_prefix, self.router.quality_model.clusters)

    @cached_property
    def usage(self) -> Usage:
        return Usage(self.redis, self.settings.redis_prefix, self.budgets, self.learning, self.alerts,
                     self.settings.monthly_cost_limit, self.settings.cost_anomaly_factor,
                     self.settings.cost_anomaly_min_spend)

    @cached_property
    def monitor(self) -> Monitor:
        return Monitor(self.redis, self.settings.redis_prefix, self.stats, self.catalog, self.alerts, self.fleet,
                       self.settings.degradation_factor, self.settings.degradation_p95_seconds)

    @cached_property
    def batches(self) -> BatchStore:
        return BatchStore(self.redis, self.settings.redis_prefix, self.settings.result_ttl, self.requests, self.ledger)

    @cached_property
    def files(self) -> Files:
        return Files(self.redis, self.settings.redis_prefix, self.settings.result_ttl)

    @cached_property
    def provider_batches(self) -> ProviderBatches:
        return ProviderBatches(self.redis, self.settings.redis_prefix, self.settings.result_ttl, self.replicas)

    @cached_property
    def economy(self) -> Economy:
        return Economy(catalog=self.economy_router.catalog, providers=self.providers, store=self.provider_batches,
                       budgets=self.budgets, settlement=self.settlement, settings=self.settings)

    @cached_property
    def provider_limits(self) -> ProviderLimits:
        settings = self.settings
        return ProviderLimits(self.redis, settings.redis_prefix, settings.provider_limit_window,
                              settings.batch_limit_share)

    # The execution pipeline (orchestrator/execution/), its collaborators given explicitly.

    @cached_property
    def accounting(self) -> Accounting:
        return Accounting(learning=self.learning, usage=self.usage, users=self.users, alerts=self.alerts,
                          circuits=self.circuits, cost_tracking=self.settings.cost_tracking_enabled)

    @cached_property
    def settlement(self) -> Settlement:
        return Settlement(ledger=self.ledger, budgets=self.budgets, conversations=self.conversations,
                          accounting=self.accounting, cost_tracking=self.settings.cost_tracking_enabled)

    @cached_property
    def observer(self) -> Observer:
        return Observer(redis_client=self.redis, stats=self.stats, circuits=self.circuits, accounting=self.accounting,
                        neighbourhoods=self.neighbourhoods)

    @cached_property
    def embedder(self) -> Embedder:
        settings = self.settings
        return Embedder(redis_client=self.redis, catalog=self.catalog, providers=self.providers, budgets=self.budgets, ledger=self.ledger,
                        requests=self.requests, circuits=self.circuits, observer=self.observer,
                        accounting=self.accounting, users=self.users, limits=self.provider_limits,
                        cost_tracking=settings.cost_tracking_enabled, monthly_cost_limit=settings.monthly_cost_limit,
                        request_timeout=settings.request_timeout, retry_after_limit=settings.retry_after_limit)

    @cached_property
    def executor(self) -> Executor:
        settings, settlement = self.settings, self.settlement
        def admission(router: Router, request_timeout: float, max_models: int) -> Admission:
            return Admission(
                redis_client=self.redis, catalog=router.catalog, router=router, budgets=self.budgets,
                requests=self.requests, accounting=self.accounting, settlement=settlement,
                neighbourhoods=self.neighbourhoods,
                cost_tracking=settings.cost_tracking_enabled, monthly_cost_limit=settings.monthly_cost_limit,
                request_timeout=request_timeout, max_models=max_models,
            )


        return Executor(
            redis_client=self.redis, catalog=self.catalog, requests=self.requests, ledger=self.ledger, users=self.users,
            budgets=self.budgets, circuits=self.circuits, stats=self.stats, conversations=self.conversations,
            admission=admission(self.router, settings.request_timeout, settings.max_models_per_request),
            # An economy item's chain is its model alone, for the completion window: a failure goes
            # back to the standard path, reserved again (orchestrator/execution/economy.py).
            economy_admission=admission(self.economy_router, WINDOW, 1), economy=self.economy,
            caller=Caller(self.providers),
            observer=self.observer,
            rate_slots=RateSlots(limits=self.provider_limits, providers=self.providers,
                                 retry_after_limit=settings.retry_after_limit,
                                 visibility_timeout=settings.visibility_timeout),
            settlement=settlement, settings=settings,
        )
