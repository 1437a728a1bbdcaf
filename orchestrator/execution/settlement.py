"""How a request ends: its answer or its failure published once, with its cost settled
against the budget and its conversation extended in the same step (the terminal-once Lua of
orchestrator/store/ledger.py), then counted for its user."""

from __future__ import annotations

from orchestrator.core.job import ChatJob, ChatResult, Failure
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ChatResponse, Usage
from orchestrator.execution.accounting import Accounting
from orchestrator.store.budgets import Budgets, Charge
from orchestrator.store.conversations import Conversations
from orchestrator.store.ledger import Ledger


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
        """Publish the failure and release the reservation; False when the request had ended."""
        return self.ledger.fail(request_id, failure.to_json(), self.charge(job, request_id))

    def refuse(self, request_id: str, failure: Failure) -> None:
        """A request no model may take: nothing was reserved for it."""
        self.ledger.fail(request_id, failure.to_json())

    def cancel_item(self, request_id: str, job: ChatJob, failure: Failure) -> None:
        self.ledger.cancel_item(request_id, failure.to_json(), self.charge(job, request_id))

    def complete(self, request_id: str, job: ChatJob, chain: Chain, response: ChatResponse, cost: float) -> None:
        """Publish the answer, extend the conversation and bill `cost`, once."""
        result = ChatResult(request_id, response, cost, chain.decision, chain.attempts, job.conversation_id)
        turn = None
        if job.conversation_id:
            turn = self.conversations.turn(job.owner, job.conversation_id, job.messages, response.content)
        if self.ledger.complete(request_id, result.to_json(), turn, self.charge(job, request_id, cost)):
            self.accounting.after_settlement(job, chain, response.model, cost, response.usage.input_tokens,
                                             response.usage.output_tokens)

    def cancelled(self, request_id: str, job: ChatJob, chain: Chain, model: str, usage: Usage, cost: float) -> None:
        """The caller left: only what was generated is paid."""
        failure = exhausted(chain, 499, "cancelled", "the caller closed the connection")
        if self.ledger.fail(request_id, failure.to_json(), self.charge(job, request_id, cost)):
            self.accounting.after_settlement(job, chain, model, cost, usage.input_tokens, usage.output_tokens)
