"""Anthropic's Message Batches API through the anthropic SDK."""

from __future__ import annotations

import time

import anthropic

from orchestrator.core.errors import ProviderError
from orchestrator.core.types import ChatRequest
from orchestrator.providers.anthropic_messages import AnthropicProvider, call_arguments
from orchestrator.providers.batch_api import ItemResult, SdkBatches, UpstreamState


class AnthropicBatches(SdkBatches):
    sdk_error = anthropic.APIError
    provider: AnthropicProvider

    def submit(self, requests: list[ChatRequest]) -> str:
        with self.errors(requests[0].model):
            return self.client.messages.batches.create(
                requests=[{"custom_id": r.request_id, "params": call_arguments(r)} for r in requests]).id

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
