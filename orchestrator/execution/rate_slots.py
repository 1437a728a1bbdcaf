"""A slot under a model's provider rate limits (orchestrator/store/provider_limits.py) for
one call: go now, wait for a booked slot (or for one to come within reach), or, for a chat
request that finds none it could wait for, go on to the next model."""

from __future__ import annotations

import random
from dataclasses import dataclass

from orchestrator.core.catalog import ModelCapabilities
from orchestrator.core.errors import ProviderError
from orchestrator.core.job import ChatJob, RateLimitSlot
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.store.provider_limits import BATCH, CHAT, MARGIN, Grant, ProviderLimits


@dataclass(frozen=True)
class CallNow:
    pass


@dataclass(frozen=True)
class WaitForSlot:
    """Run again in `delay` seconds; `slot` is booked for that run (None: look again then).
    `extends_deadline`: the wait does not count against the time budget (a batch item)."""

    delay: float
    slot: RateLimitSlot | None
    extends_deadline: bool = False


@dataclass(frozen=True)
class NoSlot:
    pass


SlotDecision = CallNow | WaitForSlot | NoSlot
CALL_NOW, NO_SLOT = CallNow(), NoSlot()


def _booked(model: ModelCapabilities, grant: Grant) -> RateLimitSlot:
    return RateLimitSlot(model.model_name, grant.lane, grant.booking)


class RateSlots:
    def __init__(self, *, limits: ProviderLimits, providers: ProviderRegistry, retry_after_limit: float,
                 visibility_timeout: float):
        self.limits, self.providers = limits, providers
        self.retry_after_limit, self.visibility_timeout = retry_after_limit, visibility_timeout

    def take(self, request_id: str, job: ChatJob, model: ModelCapabilities, tokens: int, booked: RateLimitSlot | None,
             remaining: float, last_model: bool) -> SlotDecision:
        """A batch item always waits: it never fails for a limit, and its time budget does not
        run while it waits. Chat waits at most RETRY_AFTER_LIMIT, or its remaining time on the
        last model of its chain."""
        # Build the provider's client first (once per process): the slot is counted from now, and
        # the call should reach the provider right after, not after a client's construction.
        try:
            self.providers.for_model(model)
        except ProviderError:
            pass  # the call itself meets the error and the chain handles it
        if booked and booked.model == model.model_name and self.limits.claim(model.model_name, booked.lane,
                                                                             booked.booking):
            return CALL_NOW
        if job.batch:
            return self._batch(request_id, model, tokens)
        return self._chat(request_id, model, tokens, remaining, last_model)

    def _batch(self, request_id: str, model: ModelCapabilities, tokens: int) -> SlotDecision:
        # Book up to one window ahead, and well within the visibility timeout: a task waiting
        # longer than that for its countdown would be delivered a second time meanwhile.
        horizon = min(self.limits.lanes(model)[BATCH].window + MARGIN, self.visibility_timeout / 2)
        grant = self.limits.acquire(model, BATCH, tokens, horizon, request_id)
        assert grant is not None  # the batch lane exists for every limited model
        if grant.booked and grant.delay == 0:
            return CALL_NOW
        if grant.booked:
            return WaitForSlot(grant.delay, _booked(model, grant), extends_deadline=True)
        # Not booked: come back when the next free slot may be within the horizon.
        delay = max(grant.delay - horizon, horizon / 2) + random.uniform(0, horizon / 4)
        return WaitForSlot(delay, None, extends_deadline=True)

    def _chat(self, request_id: str, model: ModelCapabilities, tokens: int, remaining: float,
              last_model: bool) -> SlotDecision:
        own = self.limits.acquire(model, CHAT, tokens, 0.0, request_id)
        if own is not None and own.booked:
            return CALL_NOW
        reach = remaining if last_model else min(self.retry_after_limit, remaining)
        grant = self.limits.acquire(model, BATCH, tokens, max(0.0, reach - 0.5), request_id)
        if grant is None or not grant.booked:
            return NO_SLOT
        if grant.delay == 0:
            return CALL_NOW
        return WaitForSlot(grant.delay, _booked(model, grant))
