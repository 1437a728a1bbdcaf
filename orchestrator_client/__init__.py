"""The brief's Python API.

ChatOrchestratorService talks to a running orchestrator over HTTP (the same API as curl),
so any application can use it with a base URL and an API key; BatchOrchestratorService
does the same for batches. AdvancedAIOrchestrator runs
task analysis and routing in-process, with the bundled catalog or models of your own, and
is the class to subclass for custom routing.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

import aiohttp

from orchestrator.core.analysis import TaskAnalysis, analyze
from orchestrator.core.catalog import Catalog, ModelCapabilities, ProviderConfig
from orchestrator.core.router import Router, RoutingDecision
from orchestrator.core.strategies import Preferences, RoutingStrategy
from orchestrator.core.types import ChatRequest, Message

API_PREFIX = "/api/v1/orchestrator"


class OrchestratorError(Exception):
    """The orchestrator refused or failed a request: the API's status, code and message."""

    def __init__(self, status: int, code: str, message: str, details=None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class ModelResponse:
    content: str
    cost: float
    usage: dict
    model: str
    provider: str
    finish_reason: str
    latency: float
    sandbox: bool
    provider_request_id: str | None = None


def _strategy(strategy: RoutingStrategy | str) -> str:
    return strategy.value if isinstance(strategy, RoutingStrategy) else strategy


class ChatOrchestratorService:
    """Chat through a running orchestrator (ORCHESTRATOR_URL, default http://127.0.0.1:8000)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 120.0):
        self.base_url = (base_url or os.environ.get("ORCHESTRATOR_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.api_key = api_key or os.environ.get("ORCHESTRATOR_API_KEY")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _post(self, path: str, body: dict) -> dict:
        async with aiohttp.ClientSession(timeout=self.timeout, headers=self._headers()) as session:
            async with session.post(f"{self.base_url}{API_PREFIX}{path}", json=body) as reply:
                data = await reply.json(content_type=None)
                if reply.status >= 400:
                    error = data.get("error", {}) if isinstance(data, dict) else {}
                    raise OrchestratorError(reply.status, error.get("code", "error"), error.get("message", ""),
                                            error.get("details"))
                return data

    async def execute_chat_request(
        self,
        message: str,
        user_id: int | str | None = None,
        strategy: RoutingStrategy | str = RoutingStrategy.BALANCED,
        budget_limit: float | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        conversation_id: str | None = None,
        model: str | None = None,
    ) -> dict:
        """Route and execute one message; `result["response"]` is a ModelResponse.

        `user_id` names your end user (recorded with the request, like OpenAI's `user`)."""
        body = {"message": message, "strategy": _strategy(strategy), "budget_limit": budget_limit,
                "system_prompt": system_prompt, "temperature": temperature, "max_tokens": max_tokens,
                "conversation_id": conversation_id, "model": model,
                "user": None if user_id is None else str(user_id)}
        result = await self._post("/chat/execute", {k: v for k, v in body.items() if v is not None})
        fields = ModelResponse.__dataclass_fields__
        result["response"] = ModelResponse(**{k: v for k, v in result["response"].items() if k in fields})
        return result


class AdvancedAIOrchestrator:
    """Task analysis and routing in-process. Subclass it for routing of your own.

    `model_capabilities` adds models (the brief's ModelCapabilities) to the bundled catalog,
    or replaces it when `include_catalog` is False.
    """

    def __init__(
        self,
        model_capabilities: dict[str, ModelCapabilities] | None = None,
        include_catalog: bool = True,
        default_model: str | None = None,
    ):
        catalog = Catalog.load() if include_catalog else Catalog({}, {})
        for model in (model_capabilities or {}).values():
            catalog.models[model.model_name] = model
            catalog.providers.setdefault(model.provider, ProviderConfig(name=str(model.provider), kind="openai"))
        self.catalog = catalog
        self.router = Router(catalog, default_model=default_model)

    async def _analyze_task_complexity(self, task: str) -> TaskAnalysis:
        return analyze((Message("user", task),), None, 4096)

    async def route_request(
        self,
        task: str,
        user_id: int | str | None = None,
        strategy: RoutingStrategy | str = RoutingStrategy.BALANCED,
        budget_limit: float | None = None,
        preferences: Preferences | None = None,
        max_tokens: int = 1024,
        model: str | None = None,
    ) -> RoutingDecision:
        """The routing decision for `task`, without executing it; `model` pins a model."""
        request = ChatRequest(model="", messages=(Message("user", task),), max_tokens=max_tokens)
        return self.router.route(
            request, _strategy(strategy), pinned=model, budget_limit=budget_limit, preferences=preferences
        )


FINISHED = ("completed", "partially_completed", "failed", "cancelled")


class BatchOrchestratorService(ChatOrchestratorService):
    """Batches through a running orchestrator: submit many requests at once, follow them,
    cancel them, read their results (ORCHESTRATOR_URL and ORCHESTRATOR_API_KEY as for chat).

    A request is a dict with `task` (or `message`) and optionally `strategy`, `model`,
    `max_tokens`, `system_prompt`, `temperature` and `metadata`; a plain string is a task."""

    async def _call(self, method: str, path: str, body: dict | None = None, params: dict | None = None,
                    text: bool = False):
        async with aiohttp.ClientSession(timeout=self.timeout, headers=self._headers()) as session:
            async with session.request(method, f"{self.base_url}{API_PREFIX}{path}", json=body,
                                       params=params) as reply:
                if reply.status >= 400:
                    data = await reply.json(content_type=None)
                    error = data.get("error", {}) if isinstance(data, dict) else {}
                    raise OrchestratorError(reply.status, error.get("code", "error"), error.get("message", ""),
                                            error.get("details"))
                return await reply.text() if text else await reply.json(content_type=None)

    async def submit_batch(self, requests: list[dict | str], user_id: int | str | None = None,
                           priority: int = 5) -> str:
        """Queue the requests as one batch at `priority` (0 lowest to 9 most urgent); its id.
        One invalid request rejects the whole batch (OrchestratorError 422 naming its index).
        `user_id` names your end user, recorded with every item."""
        body = {"requests": [{"task": r} if isinstance(r, str) else r for r in requests], "priority": priority}
        if user_id is not None:
            body["user"] = str(user_id)
        return (await self._call("POST", "/batch/submit", body))["batch_id"]

    async def get_batch_status(self, batch_id: str, offset: int = 0, limit: int = 100) -> dict:
        """Status, counts per state, progress, cost, timing, and results[offset:offset+limit]."""
        return await self._call("GET", f"/batch/{batch_id}/status", params={"offset": offset, "limit": limit})

    async def cancel_batch(self, batch_id: str) -> dict:
        """Stop the items not started yet; running ones finish. The batch's status after it."""
        return await self._call("POST", f"/batch/{batch_id}/cancel")

    async def get_batch_results(self, batch_id: str) -> list[dict]:
        """Every item's result, in submission order (the JSONL download)."""
        text = await self._call("GET", f"/batch/{batch_id}/results.jsonl", text=True)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def wait_for_batch(self, batch_id: str, poll_interval: float = 1.0, timeout: float | None = None,
                             on_progress=None) -> dict:
        """Poll until the batch has ended (or `timeout` seconds, TimeoutError); its status.
        `on_progress(status)` is called after every poll."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while True:
            status = await self.get_batch_status(batch_id, limit=0)
            if on_progress is not None:
                on_progress(status)
            if status["status"] in FINISHED and not status["counts"]["running"]:
                return status
            if deadline is not None and asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"batch {batch_id} still {status['status']} after {timeout}s")
            await asyncio.sleep(poll_interval)
