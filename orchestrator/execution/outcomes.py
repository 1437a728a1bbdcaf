"""What one run of a request's chain comes to: the request is finished (its answer or its
error published, or found published before), or it goes on later from where it stands."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.job import RateLimitSlot
from orchestrator.core.retry_policy import Chain


@dataclass(frozen=True)
class Finished:
    """Nothing more to run for this request."""


@dataclass(frozen=True)
class RetryLater:
    """Run again after `delay` seconds, from `chain`, with the rate-limit `slot` booked for that run."""

    delay: float
    chain: Chain
    slot: RateLimitSlot | None = None


FINISHED = Finished()
RunOutcome = Finished | RetryLater
