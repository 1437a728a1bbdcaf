"""One client per provider and process, pointed at the real API or at the sandbox.

A built-in provider whose API key is not set is served by the sandbox upstream through
the same SDK code path; a custom provider always goes to its declared base URL.
"""

from __future__ import annotations

import os
import threading

import openai

from orchestrator.catalog import Catalog, ModelCapabilities, ProviderConfig
from orchestrator.config import Settings
from orchestrator.providers.base import Provider
from orchestrator.providers.openai_compatible import OpenAICompatibleProvider

CONNECT_TIMEOUT = 5.0


class ProviderUnavailable(Exception):
    """No adapter can serve this provider (an unknown kind, say)."""


class ProviderRegistry:
    def __init__(self, settings: Settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def api_key(self, provider: ProviderConfig) -> str | None:
        built_in = {
            "OPENAI_API_KEY": self.settings.openai_api_key,
            "ANTHROPIC_API_KEY": self.settings.anthropic_api_key,
            "GOOGLE_API_KEY": self.settings.google_api_key,
        }
        env = provider.api_key_env
        if not env:
            return None
        return built_in[env] if env in built_in else os.environ.get(env) or None

    def uses_sandbox(self, provider: ProviderConfig) -> bool:
        return provider.base_url is None and self.api_key(provider) is None

    def for_model(self, model: ModelCapabilities) -> Provider:
        with self._lock:
            if model.provider not in self._providers:
                self._providers[model.provider] = self._build(self.catalog.providers[model.provider])
            return self._providers[model.provider]

    def _build(self, provider: ProviderConfig) -> Provider:
        models = {m.model_name: m for m in self.catalog if m.provider == provider.name}
        sandbox = self.uses_sandbox(provider)
        if provider.kind == "openai":
            client = openai.OpenAI(
                api_key=self.api_key(provider) or "sandbox",
                base_url=self.settings.sandbox_url + "/v1" if sandbox else provider.base_url,
                max_retries=0,  # the fallback chain owns every retry
                timeout=openai.Timeout(self.settings.request_timeout, connect=CONNECT_TIMEOUT),
            )
            return OpenAICompatibleProvider(provider.name, client, models, sandbox)
        raise ProviderUnavailable(f"Client not available: {provider.name} (kind {provider.kind!r} has no adapter yet)")
