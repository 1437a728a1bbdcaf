"""The one interface every provider's batch API adapter implements, for economy batches
(orchestrator/execution/economy.py): submit many calls of one model as a provider batch, find
it again by its submission's id, read its state, read each call's answer back, cancel it.

A call is a ChatRequest whose `request_id` is its custom id (the batch item's id), translated
by its provider adapter's own code, and its answer read by the adapter's own `read`: a batched
answer is what the same call made alone would have answered. Every method raises ProviderError
and nothing else for a failed call. ProviderRegistry.batch_api builds a model's adapter.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from orchestrator.core.errors import ProviderError
from orchestrator.core.types import ChatRequest, ChatResponse

# An item's outcome: its answer, its error, or None when the provider never ran it (the batch
# expired or was cancelled first).
ItemResult = ChatResponse | ProviderError | None

PAGE = 100  # provider batches a page of a provider's list
CLOCK_SKEW = 600.0  # seconds a provider's clock may lag ours: `find` looks this far before `since`


class Undecided(Exception):
    """Whether the provider has the batch sought cannot be told yet: ask again later."""


@dataclass(frozen=True)
class UpstreamState:
    status: str  # the provider's own word
    ended: bool  # no item will be answered any more: its results can be read


class BatchApi(Protocol):
    def submit(self, requests: list[ChatRequest], tag: str) -> str:
        """Submit the calls (all of one model) as one provider batch, which `find(tag, ...)`
        finds again; its id."""
        ...

    def find(self, tag: str, custom_ids: list[str], since: float, known: Collection[str]) -> str | None:
        """The id of the provider batch submitted as `tag` (its calls' custom ids `custom_ids`)
        at `since` or later, or None when the provider has none; `known`: provider batches
        recorded already, none of them the one sought. Raises Undecided when it cannot be told yet."""
        ...

    def state(self, upstream_id: str) -> UpstreamState: ...

    def results(self, upstream_id: str, requests: dict[str, ChatRequest]) -> dict[str, ItemResult]:
        """Each call's outcome by custom id, once the batch has ended (`requests` by custom id)."""
        ...

    def cancel(self, upstream_id: str) -> None: ...


class SdkBatches:
    """What every batch adapter shares: its provider adapter (whose translation and reading
    it uses), that adapter's SDK client, and the SDK's errors read as ProviderError."""

    sdk_error: type[Exception]  # the SDK's base exception

    def __init__(self, provider):
        self.provider, self.client = provider, provider.client

    @contextmanager
    def errors(self, model: str) -> Iterator[None]:
        try:
            yield
        except self.sdk_error as exc:
            raise self.provider._error(exc, model) from exc
