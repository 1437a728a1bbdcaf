"""Gemini's batch mode through the google-genai SDK: inlined requests, each keyed by its
custom id in its metadata, and inlined responses read back by that key; a job's display name is
its submission's id."""

from __future__ import annotations

import time
from collections.abc import Collection

from google.genai import errors as genai_errors
from google.genai import types

from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.types import ChatRequest
from orchestrator.providers.batch_api import PAGE, ItemResult, SdkBatches, UpstreamState
from orchestrator.providers.errors import classify
from orchestrator.providers.google_gemini import GeminiProvider, config_of, contents_of

TIMEOUT = 60.0  # seconds the submission itself may take
KEY = "key"  # the metadata field that carries a request's custom id


class GeminiBatches(SdkBatches):
    sdk_error = genai_errors.APIError
    provider: GeminiProvider

    def submit(self, requests: list[ChatRequest], tag: str) -> str:
        model = requests[0].model
        inlined = [types.InlinedRequest(contents=contents_of(r), config=config_of(r, TIMEOUT),
                                        metadata={KEY: r.request_id or ""}) for r in requests]
        with self.errors(model):
            return self.client.batches.create(model=model, src=inlined,
                                              config=types.CreateBatchJobConfig(display_name=tag)).name or ""

    def find(self, tag: str, custom_ids: list[str], since: float, known: Collection[str]) -> str | None:
        """The whole list is read: its order is not documented."""
        with self.errors(""):
            for job in self.client.batches.list(config=types.ListBatchJobsConfig(page_size=PAGE)):
                if job.display_name == tag:
                    return job.name
        return None

    def state(self, upstream_id: str) -> UpstreamState:
        with self.errors(""):
            job = self.client.batches.get(name=upstream_id)
        return UpstreamState(job.state.value if job.state else "", bool(job.done))

    def results(self, upstream_id: str, requests: dict[str, ChatRequest]) -> dict[str, ItemResult]:
        model = next(iter(requests.values())).model if requests else ""
        started, outcomes = time.monotonic(), {}
        with self.errors(model):
            job = self.client.batches.get(name=upstream_id)
        for entry in (job.dest.inlined_responses if job.dest else None) or ():
            request = requests.get((entry.metadata or {}).get(KEY, ""))
            if request is not None:
                outcomes[request.request_id or ""] = self._outcome(request, entry, started)
        return outcomes

    def _outcome(self, request: ChatRequest, entry: types.InlinedResponse, started: float) -> ItemResult:
        if entry.response is not None:
            try:
                return self.provider.read(request, started, entry.response)
            except ProviderError as exc:
                return exc
        error = entry.error or types.JobError(code=500, message="the batch gave no answer")
        message = error.message or "the provider batch failed this request"
        kind = classify(error.code or 500, None, message) if error.code else ErrorKind.SERVER_ERROR
        return ProviderError(kind, message, provider=self.provider.name, model=request.model, status=error.code)

    def cancel(self, upstream_id: str) -> None:
        with self.errors(""):
            self.client.batches.cancel(name=upstream_id)
