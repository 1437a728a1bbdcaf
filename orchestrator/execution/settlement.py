"""How a request ends: its answer or its failure published once, with its cost settled
against the budget and its conversation extended in the same step (the terminal-once Lua of
orchestrator/store/ledger.py), then counted for its user.

Redis may be away at that moment, with an answer already paid for in hand: its write is
tried again, backing off, until Redis answers or the reservation's grace after the request's
deadline has passed; only then does the error go up (the task's message, never acked, is
delivered again once the broker is back). A failure is written once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from orchestrator.core.job import Attempt, ChatJob, ChatResult, Failure, ModelResponse, Status
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ASSISTANT, ChatResponse, Message, Usage
from orchestrator.execution.accounting import Accounting
from orchestrator.store.budgets import Budgets, Charge
from orchestrator.store.connection import REDIS_AWAY
from orchestrator.store.conversations import Conversations
from orchestrator.store.ledger import Ledger

log = logging.getLogger(__name__)

RESERVATION_GRACE = 60.0  # seconds a reservation outlives its request's deadline (a crashed worker's expires)
MAX_BACKOFF = 2.0  # seconds between two tries of a terminal write while Redis is away


def _written(write: Callable[[], bool], request_id: str, until: float) -> bool:
    """`write`'s answer, tried again while Redis is unreachable, until `until` (time.time())."""
    delay = 0.05
    while True:
        try:
            return write()
        except REDIS_AWAY:
            if time.time() + delay > until:
                raise
            log.warning("Redis unreachable while ending request %s; trying again in %.2fs", request_id, delay)
            time.sleep(delay)
            delay = min(2 * delay, MAX_BACKOFF)


def exhausted(chain: Chain, status: int, code: str, message: str) -> Failure:
    """A failure after the chain's attempts, which its details list."""
    tried = len(chain.attempts)
    text = f"{message} (after {tried} attempt{'s' if tried != 1 else ''})" if tried else message
    return Failure(status, code, text, {"attempts": chain.attempts})


def cannot_finish(chain: Chain) -> Failure:
    if chain.partial:
        return exhausted(chain, 502, "incomplete_answer",
                         f"the answer was cut after {len(chain.partial)} characters and no remaining model "
                         "can continue it; what was sent is incomplete")
    return exhausted(chain, 503, "no_model_available", "every model of the chain is unavailable")


class Settlement:
    def __init__(self, *, ledger: Ledger, budgets: Budgets, conversations: Conversations,
                 accounting: Accounting, cost_tracking: bool):
        self.ledger, self.budgets, self.conversations = ledger, budgets, conversations
        self.accounting, self.cost_tracking = accounting, cost_tracking

    def charge(self, job: ChatJob, request_id: str, cost: float = 0.0) -> Charge | None:
        """The request's reservation released and `cost` spent, when costs are tracked."""
        return self.budgets.charge(job.owner, request_id, cost) if self.cost_tracking else None

    def fail(self, request_id: str, job: ChatJob, failure: Failure) -> bool:
        """Publish the failure and release the reservation; False when the request had ended.
        Written once: with no answer in hand, a Redis outage is not worth holding a worker for
        (the reservation expires by itself, and the task is delivered again)."""
        return self.ledger.fail(request_id, failure.to_json(), self.charge(job, request_id))

    def unreadable(self, request_id: str, owner: str, problem: str) -> None:
        """End a request whose task arguments this worker cannot read (a newer release's job,
        a malformed chain): a 500 at once rather than a wait until the deadline."""
        charge = self.budgets.charge(owner, request_id, 0.0) if self.cost_tracking else None
        self.ledger.fail(request_id, Failure(500, "unreadable_job", f"The worker cannot read this request: {problem}.")
                         .to_json(), charge)

    def refuse(self, request_id: str, failure: Failure) -> None:
        """A request no model may take: nothing was reserved for it."""
        self.ledger.fail(request_id, failure.to_json())

    def cancel_item(self, request_id: str, job: ChatJob, failure: Failure) -> None:
        self.ledger.cancel_item(request_id, failure.to_json(), self.charge(job, request_id))

    def complete(self, request_id: str, job: ChatJob, chain: Chain, response: ChatResponse, cost: float) -> None:
        """Publish the answer, extend the conversation and bill `cost`, once."""
        assert chain.decision is not None  # a chat request's chain is made from its routing decision
        result = ChatResult(request_id, ModelResponse.priced(response, cost), chain.decision,
                            tuple(Attempt.from_json(attempt) for attempt in chain.attempts), job.conversation_id)
        turn = None
        if job.conversation_id:
            turn = self.conversations.turn(job.owner, job.conversation_id, job.messages,
                                          Message(ASSISTANT, response.content, tool_calls=response.tool_calls))
        charge, data = self.charge(job, request_id, cost), result.to_json()
        if _written(lambda: self.ledger.complete(request_id, data, turn, charge), request_id,
                    chain.deadline + RESERVATION_GRACE):
            self.accounting.after_settlement(request_id, job.owner, response.model, cost, response.usage,
                                             result.routing_decision.complexity, chain.attempts)

    def recount(self, request_id: str, job: ChatJob, record: dict | None) -> None:
        """A request a redelivered task found ended (its `record`): if it completed, its usage
        counted, in case the worker that completed it died before it could (usage counts a
        request once)."""
        stored = record.get("result") if record else None
        if record and record.get("status") == Status.COMPLETED and isinstance(stored, dict):
            result = ChatResult.from_json(stored)
            response = result.response
            self.accounting.after_settlement(request_id, job.owner, response.model, response.cost, response.usage,
                                             result.routing_decision.complexity, [a.to_json() for a in result.attempts])

    def cancelled(self, request_id: str, job: ChatJob, chain: Chain, model: str, usage: Usage, cost: float) -> None:
        """The caller left: only what was generated is paid."""
        failure, charge = exhausted(chain, 499, "cancelled", "the caller closed the connection"), self.charge(
            job, request_id, cost)
        if _written(lambda: self.ledger.fail(request_id, failure.to_json(), charge), request_id,
                    chain.deadline + RESERVATION_GRACE):
            complexity = chain.decision.complexity if chain.decision is not None else None
            self.accounting.after_settlement(request_id, job.owner, model, cost, usage, complexity, chain.attempts)
