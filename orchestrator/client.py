"""The brief's Python API.

ChatOrchestratorService talks to a running orchestrator over HTTP (the same API as curl),
so any application can use it with a base URL and an API key. AdvancedAIOrchestrator runs
task analysis and routing in-process, with the bundled catalog or models of your own, and
is the class to subclass for custom routing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import aiohttp

from orchestrator.analysis import TaskAnalysis, analyze
from orchestrator.catalog import Catalog, ModelCapabilities, ProviderConfig
from orchestrator.providers.base import ChatRequest, Message
from orchestrator.router import Router, RoutingDecision
from orchestrator.strategies import Preferences, RoutingStrategy

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
