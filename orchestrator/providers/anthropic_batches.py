"""Anthropic's Message Batches API through the anthropic SDK. A message batch has no field
for its submission's id: it is known again by its requests' custom ids, the items' ids (an item
goes to one provider batch at most), readable once it has ended."""

from __future__ import annotations

import time
from collections.abc import Collection

import anthropic

from orchestrator.core.errors import ProviderError
from orchestrator.core.types import ChatRequest
from orchestrator.providers.anthropic_messages import AnthropicProvider, call_arguments
from orchestrator.providers.batch_api import CLOCK_SKEW, PAGE, ItemResult, SdkBatches, Undecided, UpstreamState


class AnthropicBatches(SdkBatches):
    sdk_error = anthropic.APIError
    provider: AnthropicProvider

    def submit(self, requests: list[ChatRequest], tag: str) -> str:
        with self.errors(requests[0].model):
            return self.client.messages.batches.create(
                requests=[{"custom_id": r.request_id, "params": call_arguments(r)} for r in requests]).id

    def find(self, tag: str, custom_ids: list[str], since: float, known: Collection[str]) -> str | None:
        """Among the batches made since `since` (listed newest first) with as many requests,
        not `known`, the one whose results carry `custom_ids`; Undecided while such a batch
        still runs (its custom ids cannot be read before it ends)."""
        wanted, running = set(custom_ids), False
        with self.errors(""):
            for batch in self.client.messages.batches.list(limit=PAGE):
                if batch.created_at.timestamp() < since - CLOCK_SKEW:
                    break
                if batch.id in known or _total(batch.request_counts) != len(wanted):
                    continue
                if batch.processing_status != "ended":
                    running = True
                elif {entry.custom_id for entry in self.client.messages.batches.results(batch.id)} == wanted:
                    return batch.id
        if running:
            raise Undecided(f"a message batch of {len(wanted)} requests still runs: it may be the one sought")
        return None

    def state(self, upstream_id: str) -> UpstreamState:
        with self.errors(""):
            status = self.client.messages.batches.retrieve(upstream_id).processing_status
        return UpstreamState(status, status == "ended")

    def results(self, upstream_id: str, requests: dict[str, ChatRequest]) -> dict[str, ItemResult]:
        model = next(iter(requests.values())).model if requests else ""
        started, outcomes = time.monotonic(), {}
        with self.errors(model):
            for entry in self.client.messages.batches.results(upstream_id):
                request = requests.get(entry.custom_id)
                if request is not None:
                    outcomes[request.request_id] = self._outcome(request, entry.result, started)
        return outcomes

    def _outcome(self, request: ChatRequest, result, started: float) -> ItemResult:
        if result.type == "succeeded":
            try:
                return self.provider.read(request, started, result.message)
            except ProviderError as exc:
                return exc
        if result.type == "errored":
            return self.provider._in_band_error(result.error.error.model_dump(), request.model)
        return None  # canceled or expired: never run

    def cancel(self, upstream_id: str) -> None:
        with self.errors(""):
            self.client.messages.batches.cancel(upstream_id)


def _total(counts) -> int:
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
