"""Carrying out one chat request: route, try the chain's models, settle, publish.

`Executor.run` is one step of a request's fallback chain. It returns `Finished` when the
request has ended (its answer or its error published), or `RetryLater` when it goes on
after a wait: the Celery task (workers/tasks.py) turns that into `self.retry()`, the same
task id, the chain in its arguments, the wait as countdown. What follows an error is
decided by orchestrator/core/retry_policy.py; circuits and statistics learn from every
attempt.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import redis

from orchestrator.config import Settings
from orchestrator.core.analysis import request_max_input_tokens
from orchestrator.core.answer_checks import answer_problem
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import ADMIN_ID, TERMINAL, ChatJob, Failure, RateLimitSlot
from orchestrator.core.retry_policy import Chain, fall_over, next_step
from orchestrator.core.types import ChatRequest, ChatResponse, Message
from orchestrator.execution.admission import Admission, RoutingInputs
from orchestrator.execution.attempt import (
    Caller,
    Cancelled,
    Observer,
    Publisher,
    attempt_request,
    estimated_usage,
    prompt_tokens,
)
from orchestrator.execution.economy import Economy
from orchestrator.execution.outcomes import FINISHED, RetryLater, RunOutcome
from orchestrator.execution.rate_slots import NoSlot, RateSlots, WaitForSlot
from orchestrator.execution.settlement import RESERVATION_GRACE, Settlement, cannot_finish, exhausted
from orchestrator.store.batches import CANCELLED
from orchestrator.store.budgets import Budgets
from orchestrator.store.circuits import Circuits
from orchestrator.store.connection import REDIS_AWAY, RoundTrip
from orchestrator.store.conversations import Conversations
from orchestrator.store.ledger import Ledger
from orchestrator.store.requests import RequestStore
from orchestrator.store.stats import Stats
from orchestrator.store.users import Users

log = logging.getLogger(__name__)

LIMITED = "rate_limit_wait"  # an attempt skipped: the model's rate limit has no slot within reach
INTERNAL_ERROR = Failure(500, "internal_error", "The worker failed while handling this request.")


@dataclass(frozen=True)
class RunInputs:
    """What a run reads before it calls anyone: the request's status (before this run marked
    it running; None for a batch item, which `_begin_item` marked), its conversation so far
    and, on the request's first run, what routing takes from Redis."""

    status: str | None
    history: tuple[Message, ...]
    routing: RoutingInputs | None


class Executor:
    def __init__(self, *, redis_client: redis.Redis, catalog: Catalog, requests: RequestStore, ledger: Ledger,
                 users: Users,
                 budgets: Budgets, circuits: Circuits, stats: Stats, conversations: Conversations,
                 admission: Admission, economy_admission: Admission, economy: Economy, caller: Caller,
                 observer: Observer, rate_slots: RateSlots, settlement: Settlement, settings: Settings):
        self.redis, self.catalog, self.requests, self.ledger, self.users = redis_client, catalog, requests, ledger, users
        self.budgets, self.circuits, self.stats, self.conversations = budgets, circuits, stats, conversations
        self.admission, self.caller, self.observer = admission, caller, observer
        self.economy_admission, self.economy = economy_admission, economy
        self.rate_slots, self.settlement, self.settings = rate_slots, settlement, settings

    def run(self, request_id: str, job: ChatJob, chain: Chain | None = None, slot: RateLimitSlot | None = None,
            trace_id: str | None = None) -> RunOutcome:
        """One step of the request's chain: from its start (`chain` None) or where it stands."""
        if job.batch and not self._begin_item(request_id, job, chain):
            return FINISHED
        try:
            inputs = self._read_inputs(request_id, job, first_run=chain is None)
            if inputs.status in TERMINAL:
                log.info("request %s already finished; redelivery only counts its usage", request_id)
                self.settlement.recount(request_id, job, self.requests.get(request_id))
                return FINISHED
            request = job.chat_request(self.settings, inputs.history)
            if chain is None:
                assert inputs.routing is not None
                chain = self._admit(request_id, job, request, inputs.routing)
                if chain is None:
                    return FINISHED
                states = inputs.routing.states
            else:
                states = {}
            return self._attempts(request_id, job, request, chain, slot, states, trace_id)
        except REDIS_AWAY:
            raise  # nothing can be written now: the task goes back on the queue (workers/tasks.py)
        except Exception:
            log.exception("request %s failed inside the worker", request_id)
            self.settlement.fail(request_id, job, INTERNAL_ERROR)
            return FINISHED

    def _admit(self, request_id: str, job: ChatJob, request: ChatRequest, routing: RoutingInputs) -> Chain | None:
        """The request's chain; None when it was refused, or parked: an economy item routed (at
        batch prices) to a model whose provider has a batch API waits for the economy pass
        (orchestrator/execution/economy.py). One routed to a model without a batch API runs now,
        routed and reserved again at the standard price."""
        if not job.economy:
            return self.admission.admit(request_id, job, request, routing)
        chain = self.economy_admission.admit(request_id, job, request, routing)
        if chain is None:
            return None
        if self.economy.can_batch(chain.current):
            self.economy.park(request_id, chain)
            return None
        self.budgets.release(job.owner, request_id)
        return self.admission.admit(request_id, job, request, routing)

    def _read_inputs(self, request_id: str, job: ChatJob, first_run: bool) -> RunInputs:
        """One round trip: each Redis read is a wait for the first token. A chat request whose
        record is gone (expired) still runs: its caller reads the answer from the event stream."""
        trip = RoundTrip(self.redis)
        history = self.conversations.history_in(trip, job.owner, job.conversation_id) if job.conversation_id else None
        status = None
        if not job.batch:
            status = (self.requests.start_in if first_run else self.requests.status_in)(trip, request_id)
        routing = self._routing_reads(trip, job) if first_run else None
        trip.run()
        return RunInputs(status=status() if status else None, history=history() if history else (),
                         routing=routing() if routing else None)

    def _routing_reads(self, trip: RoundTrip, job: ChatJob):
        pairs = [(m.model_name, m.provider) for m in self.catalog]
        user = (lambda: self.users.admin) if job.owner == ADMIN_ID else self.users.get_in(trip, job.owner)
        states = self.circuits.states_in(trip, pairs)
        usage = self.budgets.usage_in(trip, job.owner) if self.settings.cost_tracking_enabled else None
        observations = self.stats.observations_in(trip, [m for m, _ in pairs])
        return lambda: RoutingInputs(user=user(), states=states(), usage=usage() if usage else (0.0, 0.0),
                                     observations=observations())

    def _begin_item(self, request_id: str, job: ChatJob, chain: Chain | None) -> bool:
        """Whether a batch item goes on. Its first run marks it running (and its batch with it),
        unless the batch was cancelled first: then it ends cancelled without calling anyone.
        An item waiting for a rate-limit slot, no provider called yet, is cancelled too; one that
        has called a provider (or may have: a redelivery after a crash) finishes."""
        may_cancel = chain is not None and not chain.attempts
        state = self.ledger.begin_item(request_id, CANCELLED, may_cancel)
        if state == "cancel":
            self.settlement.cancel_item(request_id, job, Failure.from_json(CANCELLED))
        elif state == "done":
            self.settlement.recount(request_id, job, self.requests.get(request_id))
        elif state != "run":
            log.info("batch item %s not run: %s", request_id, state)
        return state == "run"

    def _attempts(self, request_id: str, job: ChatJob, request: ChatRequest, chain: Chain,
                  slot: RateLimitSlot | None, states: dict[str, str], trace_id: str | None) -> RunOutcome:
        """Try the chain's models from its current one; at most one provider call, so `states`
        (the circuits' as this run read them, when it did) stay fresh for the whole run."""
        on_delta = Publisher(self.requests, request_id, chain) if job.stream else None
        while True:
            remaining = chain.deadline - time.time()
            if remaining <= 0:
                self.settlement.fail(request_id, job, exhausted(chain, 504, "gateway_timeout",
                                                                "the request's time budget ran out"))
                return FINISHED
            model = self.catalog.get(chain.current)
            skipped = self._skip_reason(chain, model, states)
            if skipped is None and model.limits is not None:
                decision = self.rate_slots.take(request_id, job, model, prompt_tokens(request) + request.max_tokens,
                                                slot, remaining, chain.is_last)
                slot = None  # a booked slot serves one call
                if isinstance(decision, WaitForSlot):
                    if decision.extends_deadline:
                        chain.deadline += decision.delay
                        self._hold(request_id, job, chain, chain.reserved)  # kept as long as the wait
                    return RetryLater(decision.delay, chain, decision.slot)
                if isinstance(decision, NoSlot):  # no slot within reach of this chat request: the next model
                    skipped = LIMITED
            if skipped is not None:
                chain.record(model.model_name, model.provider, skipped, 0.0)
                if fall_over(chain).give_up:
                    self.settlement.fail(request_id, job, self._skipped_all(chain, skipped))
                    return FINISHED
                continue
            return self._call(request_id, job, request, chain, model, remaining, on_delta, trace_id)

    def _call(self, request_id: str, job: ChatJob, request: ChatRequest, chain: Chain, model: ModelCapabilities,
              remaining: float, on_delta: Publisher | None, trace_id: str | None) -> RunOutcome:
        attempt = attempt_request(request, model, chain, trace_id)
        if chain.partial and not self._covers(request_id, job, chain, self._worst_case(model, attempt)):
            self.settlement.fail(request_id, job, exhausted(
                chain, 402, "budget_exceeded", f"the answer was cut after {len(chain.partial)} characters, and "
                "continuing it could cost more than is left of this month's budget; what was sent is incomplete"))
            return FINISHED
        started = time.monotonic()
        try:
            response = self.caller.call(model, attempt, self._read_timeout(model, job, remaining), chain.deadline,
                                        on_delta)
        except Cancelled:
            self._settle_cancelled(request_id, job, model, request, chain, time.monotonic() - started)
            return FINISHED
        except ProviderError as exc:
            return self._failed(request_id, job, chain, model, exc, time.monotonic() - started)
        cost = model.cost(response.usage) if self.settings.cost_tracking_enabled else 0.0
        problem = answer_problem(attempt, response)
        if problem is not None:
            return self._unfit(request_id, job, chain, model, response, cost, problem)
        chain.record(model.model_name, model.provider, None, response.latency)
        self.observer.observe(model, None, response.latency, response, cost, fallback=chain.index > 0)
        if on_delta is not None:
            response = dataclasses.replace(response, content=chain.partial)
        self.settlement.complete(request_id, job, chain, response, cost)
        return FINISHED

    def _failed(self, request_id: str, job: ChatJob, chain: Chain, model: ModelCapabilities, exc: ProviderError,
                duration: float, response: ChatResponse | None = None, cost: float = 0.0) -> RunOutcome:
        chain.record(model.model_name, model.provider, exc, duration)
        self.observer.observe(model, exc, duration, response, cost, fallback=chain.index > 0)
        self.observer.learn_failure(chain.decision, model, exc)
        step = next_step(chain, exc, self.catalog, time.time(), self.settings.retry_after_limit)
        if step.give_up:
            failure = cannot_finish(chain) if chain.partial and exc.kind.policy.fallback else exhausted(
                chain, exc.kind.policy.http_status, exc.kind.value, f"{exc.provider} {exc.model}: {exc.message}")
            self.settlement.fail(request_id, job, failure)
            return FINISHED
        self.requests.save_chain(request_id, chain.as_dict())
        return RetryLater(step.delay, chain)

    def _unfit(self, request_id: str, job: ChatJob, chain: Chain, model: ModelCapabilities, response: ChatResponse,
               cost: float, problem: str) -> RunOutcome:
        """An answer that breaks the request's schema or tools: the next model is asked, unless
        the answer has been streamed already. What the provider charged for it is recorded
        against the model and not billed to the caller (docs/architecture.md, "Structured answers")."""
        error = ProviderError(ErrorKind.INVALID_OUTPUT, problem, provider=model.provider, model=model.model_name)
        if chain.partial:
            chain.record(model.model_name, model.provider, error, response.latency)
            self.observer.observe(model, error, response.latency, response, cost, fallback=chain.index > 0)
            self.settlement.fail(request_id, job, exhausted(chain, 502, error.kind.value,
                                                            f"{model.provider} {model.model_name}: {problem}"))
            return FINISHED
        return self._failed(request_id, job, chain, model, error, response.latency, response, cost)

    def _skip_reason(self, chain: Chain, model: ModelCapabilities, states: dict[str, str]) -> str | None:
        """Why this model cannot take the attempt: an answer to continue that it cannot be given
        as a prefill, or an open circuit."""
        if chain.partial and not model.supports_assistant_prefill:
            return "cannot_continue"
        if not self.observer.may_call(model, states.get(model.model_name), chain.is_last):
            return "circuit_open"
        return None

    @staticmethod
    def _worst_case(model: ModelCapabilities, attempt: ChatRequest) -> float:
        """The most this attempt can cost: a continuation sends the text already streamed as
        input, which the reservation made before the first call did not include."""
        return model.worst_case_cost(request_max_input_tokens(attempt), attempt.max_tokens)

    def _covers(self, request_id: str, job: ChatJob, chain: Chain, amount: float) -> bool:
        """Whether what is held covers `amount`, raising the hold when it does not."""
        return amount <= chain.reserved or self._hold(request_id, job, chain, amount)

    def _hold(self, request_id: str, job: ChatJob, chain: Chain, amount: float) -> bool:
        """The reservation at least `amount` and kept until the chain's (maybe moved) deadline
        plus grace, when there is a budget; False when the month's budget cannot cover it."""
        if chain.budget is None or not self.settings.cost_tracking_enabled:
            return True
        amount = max(amount, chain.reserved)
        held = self.budgets.raise_to(job.owner, chain.budget, request_id, amount, chain.deadline + RESERVATION_GRACE)
        if held:
            chain.reserved = amount
        return held

    @staticmethod
    def _skipped_all(chain: Chain, reason: str) -> Failure:
        if reason == LIMITED:
            return exhausted(chain, 503, "rate_limited", "every model of the chain is at its rate limit")
        return cannot_finish(chain)

    def _read_timeout(self, model: ModelCapabilities, job: ChatJob, remaining: float) -> float:
        """How long the provider may stay silent: before its first token or between two chunks."""
        silence = job.first_token_timeout or model.first_token_timeout or self.settings.first_token_timeout
        return max(0.05, min(silence, remaining))

    def _settle_cancelled(self, request_id: str, job: ChatJob, model: ModelCapabilities, request: ChatRequest,
                          chain: Chain, duration: float) -> None:
        """The caller left: the upstream call is closed, and only what was generated is paid."""
        usage = estimated_usage(request, [chain.partial])
        cost = model.cost(usage) if self.settings.cost_tracking_enabled else 0.0
        chain.record(model.model_name, model.provider, "cancelled", duration)
        self.observer.cancelled(model, duration, usage, cost)
        self.settlement.cancelled(request_id, job, chain, model.model_name, usage, cost)
