"""An embedding request, run by a worker: its worst case reserved, the model asked for called
(or, when it fails, another model of its space: orchestrator/core/catalog.py), and its end
published and billed once by the ledger, then counted for its user.

Unlike a chat request, the whole chain runs in one task: an embeddings call is short and
its failures are answered at once, so a fallback does not wait for a retry's turn on the
queue. A model with rate limits in the catalog takes a slot as a chat call does
(orchestrator/store/provider_limits.py: its own lane now, or the batch lane's within
RETRY_AFTER_LIMIT), and the call waits for it in the task; a model with no slot within
reach, or that the provider rate-limits, is passed over for the next of its space.

Budgets and usage count in micro-dollars; an embedding of a few tokens costs a fraction of
one (five tokens of text-embedding-3-small: $0.0000001). Rounded to the nearest, such
requests would be free however many are made, so an embedding is billed its cost rounded up
to the micro-dollar: the budget is never overspent, at most a micro-dollar a request too dear.
"""

from __future__ import annotations

import math
import time

import redis

from orchestrator.core.analysis import estimate_tokens, max_input_tokens
from orchestrator.core.catalog import Catalog, EmbeddingModel
from orchestrator.core.embedding import EMBEDDING_KIND, EmbeddingJob, EmbeddingResult
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import ADMIN_ID, TERMINAL, Failure, Status
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import Usage
from orchestrator.execution.accounting import Accounting
from orchestrator.execution.attempt import Observer
from orchestrator.execution.settlement import RESERVATION_GRACE, exhausted
from orchestrator.providers.base import Embedded
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.store.budgets import MICRO, Budgets
from orchestrator.store.circuits import Circuits
from orchestrator.store.connection import RoundTrip
from orchestrator.store.ledger import Ledger
from orchestrator.store.provider_limits import BATCH, CHAT, ProviderLimits
from orchestrator.store.requests import RequestStore
from orchestrator.store.users import Users

RATE_LIMITED = ErrorKind.RATE_LIMITED.value


def billed(cost: float) -> float:
    """A cost rounded up to the micro-dollar, the budgets' unit (the reservation is rounded the
    same way, so what is billed never passes what was held)."""
    return math.ceil(cost * MICRO) / MICRO


class Embedder:
    def __init__(self, *, redis_client: redis.Redis, catalog: Catalog, providers: ProviderRegistry, budgets: Budgets, ledger: Ledger,
                 requests: RequestStore, circuits: Circuits, observer: Observer, accounting: Accounting,
                 users: Users, limits: ProviderLimits, cost_tracking: bool, monthly_cost_limit: float,
                 request_timeout: float, retry_after_limit: float):
        self.redis, self.catalog, self.providers, self.budgets = redis_client, catalog, providers, budgets
        self.ledger = ledger
        self.requests, self.circuits, self.observer, self.accounting = requests, circuits, observer, accounting
        self.users, self.limits, self.cost_tracking = users, limits, cost_tracking
        self.monthly_cost_limit, self.request_timeout = monthly_cost_limit, request_timeout
        self.retry_after_limit = retry_after_limit

    def run(self, request_id: str, job: EmbeddingJob) -> None:
        if job.model not in self.catalog.embeddings:  # the catalog changed since the API read it
            self.ledger.fail(request_id, Failure(404, "model_not_found", f"{job.model} is not an embedding model "
                                                 "of this gateway's catalog").to_json())
            return
        models = self.catalog.embedding_chain(job.model)
        # One round trip reads what the call needs: the record's status (marked running unless it
        # ended), the owner (their budget), the circuits of the space's models.
        trip = RoundTrip(self.redis)
        status = self.requests.start_in(trip, request_id)
        user = self.users.get_in(trip, job.owner) if self.cost_tracking and job.owner != ADMIN_ID else None
        states = self.circuits.states_in(trip, [(m.model_name, m.provider) for m in models])
        trip.run()
        if status() in TERMINAL:
            self._recount(request_id, job, self.requests.get(request_id))  # delivered again: never billed twice
            return
        owner = user() if user else None
        limit = owner.monthly_budget if owner else self.monthly_cost_limit
        if self._reserved(request_id, job, models, limit):
            self._call(request_id, job, models, Chain(models=[m.model_name for m in models], deadline=job.deadline),
                       states())

    def _reserved(self, request_id: str, job: EmbeddingJob, models: list[EmbeddingModel], limit: float) -> bool:
        """The dearest model's worst case held against the month's budget, or the request refused."""
        if not self.cost_tracking:
            return True
        worst = billed(max(m.worst_case_cost(max_input_tokens(list(job.inputs), "")) for m in models))
        if self.budgets.reserve(job.owner, limit, request_id, worst, job.deadline + RESERVATION_GRACE):
            return True
        self.ledger.fail(request_id, Failure(
            402, "budget_exceeded", f"No suitable models available for this request: its worst case (${worst:.6f}) is "
            "more than what is left of this month's budget after the requests in flight. Send fewer or shorter "
            "inputs, or raise the budget.").to_json())
        self.accounting.after_refusal(job.owner, limit)
        return False

    def _call(self, request_id: str, job: EmbeddingJob, models: list[EmbeddingModel], chain: Chain,
              states: dict[str, str]) -> None:
        error: ProviderError | None = None
        for index, model in enumerate(models):
            chain.index = index
            if job.deadline - time.time() <= 0:
                break
            if not self.observer.may_call(model, states.get(model.model_name), chain.is_last):
                continue
            if not self._slot(request_id, job, model):
                chain.record(model.model_name, model.provider, RATE_LIMITED, 0.0)
                continue
            outcome = self._attempt(request_id, job, model, chain)
            if isinstance(outcome, Embedded):
                self._complete(request_id, job, self._result(request_id, job, model, outcome, chain))
                return
            error = outcome
            if not error.kind.policy.fallback:
                break
        self.ledger.fail(request_id, self._failure(chain, error).to_json(), self._charge(job, request_id, 0.0))

    def _attempt(self, request_id: str, job: EmbeddingJob, model: EmbeddingModel, chain: Chain
                 ) -> Embedded | ProviderError:
        """One call, recorded in the chain and taught to statistics and circuits."""
        started = time.monotonic()
        try:
            outcome: Embedded | ProviderError = self.providers.embedder(model).embed(
                model.upstream, list(job.inputs), job.dimensions,
                min(self.request_timeout, job.deadline - time.time()), request_id)
        except ProviderError as exc:
            outcome = exc
        error = outcome if isinstance(outcome, ProviderError) else None
        duration = time.monotonic() - started
        chain.record(model.model_name, model.provider, error, duration)
        self.observer.observe(model, error, duration, fallback=chain.index > 0)
        return outcome

    @staticmethod
    def _result(request_id: str, job: EmbeddingJob, model: EmbeddingModel, embedded: Embedded,
                chain: Chain) -> EmbeddingResult:
        tokens = embedded.input_tokens if embedded.input_tokens is not None else sum(map(estimate_tokens, job.inputs))
        return EmbeddingResult(request_id, model.model_name, model.provider, tuple(embedded.vectors), tokens,
                               billed(model.cost(tokens)), chain.attempts)

    def _slot(self, request_id: str, job: EmbeddingJob, model: EmbeddingModel) -> bool:
        """Whether the call may go, once the slot booked for it under the model's rate limits
        (if it has any) has come; False when none comes within reach."""
        if model.limits is None:
            return True
        tokens = sum(map(estimate_tokens, job.inputs))
        reach = max(0.0, min(self.retry_after_limit, job.deadline - time.time() - 1.0))
        for lane, horizon in ((CHAT, 0.0), (BATCH, reach)):
            grant = self.limits.acquire(model, lane, tokens, horizon, request_id)
            if grant is not None and grant.booked:
                time.sleep(grant.delay)  # the slot's time: the chain runs in this one task
                return True
        return False

    @staticmethod
    def _failure(chain: Chain, error: ProviderError | None) -> Failure:
        if error is None and any(attempt["error"] == RATE_LIMITED for attempt in chain.attempts):
            return exhausted(chain, 503, RATE_LIMITED, "every model of the embedding model's space is at its rate "
                             "limit; try again in a few seconds")
        if error is None:
            return exhausted(chain, 503, "no_model_available", "every model of the embedding model's space is "
                             "unavailable, or the request's deadline passed")
        return exhausted(chain, error.kind.policy.http_status, error.kind.value,
                         f"{error.provider} {error.model}: {error.message}")

    def _complete(self, request_id: str, job: EmbeddingJob, result: EmbeddingResult) -> None:
        if self.ledger.complete(request_id, result.to_json(), charge=self._charge(job, request_id, result.cost),
                                stored=result.summary()):
            self._count(request_id, job, result.model, result.cost, result.input_tokens, result.attempts)

    def _charge(self, job: EmbeddingJob, request_id: str, cost: float):
        return self.budgets.charge(job.owner, request_id, cost) if self.cost_tracking else None

    def _count(self, request_id: str, job: EmbeddingJob, model: str, cost: float, tokens: int,
               attempts: list[dict]) -> None:
        self.accounting.after_settlement(request_id, job.owner, model, cost, Usage(tokens, 0), EMBEDDING_KIND,
                                         attempts)

    def _recount(self, request_id: str, job: EmbeddingJob, record: dict | None) -> None:
        """A completed request whose worker may have died before counting it: counted (once)."""
        summary = record.get("result") if record else None
        if record and record.get("status") == Status.COMPLETED and isinstance(summary, dict):
            self._count(request_id, job, summary["model_used"], summary["cost"], summary["usage"]["input_tokens"],
                        summary.get("attempts") or [])
