"""Admission: a request's first run routes it, reserves its worst case against the month's
budget and builds its fallback chain, or refuses it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from orchestrator.core.analysis import analyze_request, request_needs
from orchestrator.core.catalog import Catalog
from orchestrator.core.evidence import Observation
from orchestrator.core.job import ChatJob, Failure
from orchestrator.core.retry_policy import Chain
from orchestrator.core.router import NoSuitableModel, Router, RoutingDecision, capable
from orchestrator.core.strategies import RoutingStrategy
from orchestrator.core.types import ChatRequest
from orchestrator.execution.accounting import Accounting
from orchestrator.execution.settlement import RESERVATION_GRACE, Settlement
from orchestrator.store.budgets import Budgets
from orchestrator.store.circuits import OPEN
from orchestrator.store.connection import RoundTrip
from orchestrator.store.neighbourhood_quality import NeighbourhoodQuality
from orchestrator.store.requests import RequestStore
from orchestrator.store.users import User


@dataclass(frozen=True)
class RoutingInputs:
    """What routing reads from Redis on a request's first run."""

    user: User | None
    states: dict[str, str] = field(default_factory=dict)  # circuit state per model
    usage: tuple[float, float] = (0.0, 0.0)  # this month's (spent, reserved), with cost tracking on
    observations: dict[str, Observation] = field(default_factory=dict)


class Admission:
    def __init__(self, *, redis_client: redis.Redis, catalog: Catalog, router: Router, budgets: Budgets,
                 requests: RequestStore, accounting: Accounting, settlement: Settlement,
                 neighbourhoods: NeighbourhoodQuality, cost_tracking: bool,
                 monthly_cost_limit: float, request_timeout: float, max_models: int):
        self.redis, self.catalog, self.router = redis_client, catalog, router
        self.budgets, self.requests = budgets, requests
        self.accounting, self.settlement, self.neighbourhoods = accounting, settlement, neighbourhoods
        self.cost_tracking, self.monthly_cost_limit = cost_tracking, monthly_cost_limit
        self.request_timeout, self.max_models = request_timeout, max_models

    def admit(self, request_id: str, job: ChatJob, request: ChatRequest, inputs: RoutingInputs) -> Chain | None:
        """The request's chain; None when it was refused (the refusal is then published)."""
        limit = inputs.user.monthly_budget if inputs.user else self.monthly_cost_limit
        remaining = max(0.0, limit - sum(inputs.usage)) if self.cost_tracking else None
        try:
            decision = self._route(job, request, inputs, remaining)
        except NoSuitableModel as exc:
            self.settlement.refuse(request_id, Failure(exc.http_status, "no_suitable_model", str(exc),
                                                       {"reason": exc.reason, "missing": list(exc.missing)}))
            if exc.reason == "budget" and remaining is not None and remaining < (job.budget_limit or limit):
                self.accounting.after_refusal(job.owner, limit)
            return None
        if job.models:  # an explicit list of models is the chain, in the caller's order, less those
            # that cannot take the request's form (tools, images, ...): their call could only fail
            needs = request_needs(request)
            decision.fallback_models = [(model.provider, model.model_name) for model in map(self.catalog.get, job.models[1:])
                                        if capable(model, needs)]
        chain = Chain(models=decision.models[: self.max_models],
                      deadline=job.deadline or time.time() + self.request_timeout,
                      decision=decision.written(every_candidate=False), closed=bool(job.models))
        if not self._reserve(request_id, job, request, decision, chain, limit):
            return None
        return chain

    def _route(self, job: ChatJob, request: ChatRequest, inputs: RoutingInputs,
               remaining: float | None) -> RoutingDecision:
        preferences, feedback_quality = self.accounting.routing_inputs(job.owner, inputs.user, job.strategy)
        return self.router.route(
            request,
            job.strategy or RoutingStrategy.BALANCED.value,
            pinned=job.model or (job.models[0] if job.models else None),
            budget_limit=job.budget_limit if self.cost_tracking else None,
            budget_remaining=remaining,
            preferences=preferences,
            observations=inputs.observations,
            unavailable={m for m, state in inputs.states.items() if state == OPEN},
            feedback_quality=feedback_quality,
            neighbourhoods=self.neighbourhoods.snapshot(),
        )

    def _reserve(self, request_id: str, job: ChatJob, request: ChatRequest, decision: RoutingDecision, chain: Chain,
                 limit: float) -> bool:
        """The reservation and a stream's decision go in one round trip: when concurrent requests
        took what was left first, the 402 follows the decision on the stream."""
        trip, reserved, worst = RoundTrip(self.redis), None, 0.0
        if self.cost_tracking:
            # The worst case of the chain's priciest model, on the most input tokens a provider can
            # count for the prompt, is held until the request settles. A task redelivered after a
            # crash finds its reservation gone at the deadline, not before.
            analysis = decision.analysis or analyze_request(request)
            models = [self.catalog.get(m) for m in chain.models]
            unpriced = [m.model_name for m in models if not m.fully_priced]
            if unpriced:  # the router leaves them out under a budget, but a caller's `models` list may name one
                self.settlement.refuse(request_id, Failure(
                    402, "budget_exceeded", f"No suitable models available for this request under a budget: "
                    f"{', '.join(unpriced)} lacks an input or output price, so nothing bounds its cost."))
                return False
            worst = max(m.worst_case_cost(analysis.max_input_tokens, request.max_tokens) for m in models)
            chain.affordable = [m.model_name for m in self.catalog if capable(m, analysis.needs)
                                and m.worst_case_cost(analysis.max_input_tokens, request.max_tokens) <= worst]
            reserved = self.budgets.reserve_in(trip, job.owner, limit, request_id, worst,
                                               chain.deadline + RESERVATION_GRACE)
            chain.reserved, chain.budget = worst, limit
        if job.stream and chain.decision is not None:
            self.requests.publish_in(trip, request_id, "decision",
                                     {"request_id": request_id, **chain.decision.to_json()})
        trip.run()
        if reserved is None or reserved():
            return True
        self.settlement.refuse(request_id, Failure(
            402, "budget_exceeded",
            f"No suitable models available for this request: its worst case (${worst:.6f}) is more than what is "
            "left of this month's budget after the requests in flight. Lower max_tokens or raise the budget.",
        ))
        self.accounting.after_refusal(job.owner, limit)
        return False
