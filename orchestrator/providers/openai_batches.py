"""OpenAI's Batch API through the openai SDK: the calls uploaded as a JSONL file, a batch made
of it (its submission's id in its metadata), its output and error files read back."""

from __future__ import annotations

import json
import time
from collections.abc import Collection

import openai
from openai.types.chat import ChatCompletion

from orchestrator.core.errors import ProviderError
from orchestrator.core.types import ChatRequest
from orchestrator.providers.batch_api import CLOCK_SKEW, PAGE, ItemResult, SdkBatches, UpstreamState
from orchestrator.providers.openai_compatible import OpenAICompatibleProvider, call_arguments

ENDPOINT = "/v1/chat/completions"
_ENDED = ("completed", "failed", "expired", "cancelled")
TAG = "orchestrator_submission"  # the metadata key that carries a batch's submission id


class OpenAIBatches(SdkBatches):
    sdk_error = openai.APIError
    provider: OpenAICompatibleProvider

    def submit(self, requests: list[ChatRequest], tag: str) -> str:
        model = requests[0].model
        lines = ({"custom_id": r.request_id, "method": "POST", "url": ENDPOINT,
                  "body": call_arguments(r, self.provider.models[r.model])} for r in requests)
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        with self.errors(model):
            uploaded = self.client.files.create(file=("economy.jsonl", data), purpose="batch")
            return self.client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                              completion_window="24h", metadata={TAG: tag}).id

    def find(self, tag: str, custom_ids: list[str], since: float, known: Collection[str]) -> str | None:
        """The batches are listed newest first: those made before `since` are not looked at."""
        with self.errors(""):
            for batch in self.client.batches.list(limit=PAGE):
                if (batch.metadata or {}).get(TAG) == tag:
                    return batch.id
                if batch.created_at < since - CLOCK_SKEW:
                    break
        return None

    def state(self, upstream_id: str) -> UpstreamState:
        with self.errors(""):
            status = self.client.batches.retrieve(upstream_id).status
        return UpstreamState(status, status in _ENDED)

    def results(self, upstream_id: str, requests: dict[str, ChatRequest]) -> dict[str, ItemResult]:
        model = next(iter(requests.values())).model if requests else ""
        started, outcomes = time.monotonic(), {}
        with self.errors(model):
            batch = self.client.batches.retrieve(upstream_id)
            for file_id in (batch.output_file_id, batch.error_file_id):
                for line in self.client.files.content(file_id).text.splitlines() if file_id else ():
                    entry = json.loads(line)
                    request = requests.get(entry.get("custom_id"))
                    if request is not None:
                        outcomes[request.request_id] = self._outcome(request, entry.get("response"), started)
        return outcomes

    def _outcome(self, request: ChatRequest, response: dict | None, started: float) -> ItemResult:
        """A line's answer or error; None for a line the batch never ran (expired, cancelled)."""
        if response is None:
            return None
        if response.get("status_code") != 200:
            error = (response.get("body") or {}).get("error") or {}
            return self.provider._in_band_error({**error, "status": response.get("status_code")}, request.model)
        try:
            return self.provider.read(request, started, ChatCompletion.model_validate(response["body"]))
        except ProviderError as exc:
            return exc

    def cancel(self, upstream_id: str) -> None:
        with self.errors(""):
            self.client.batches.cancel(upstream_id)
