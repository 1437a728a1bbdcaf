"""One client per provider and process, pointed at the real API or at the sandbox.

A built-in provider whose API key is not set is served by the sandbox upstream through
the same SDK code path when the sandbox is on (Settings.sandbox_on), and is unavailable
otherwise: a deployment with real keys never mixes sandbox answers in. A custom provider
always goes to its declared base URL.

A provider's SDK is imported when its client is first built, not with this module: the
API's processes never call a provider, and the three SDKs would cost each of them about
100 MB and 1.5 s of start-up. Workers build every client when they start (`warm`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import cast

from orchestrator.config import Settings
from orchestrator.core.catalog import Catalog, EmbeddingModel, ModelCapabilities, ProviderConfig
from orchestrator.core.errors import keep_secret
from orchestrator.providers.base import EmbeddingProvider, Provider
from orchestrator.providers.batch_api import BatchApi

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


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
        return self.settings.sandbox_on and self._keyless(provider)

    def missing_credentials(self, provider: ProviderConfig) -> str | None:
        """Why nobody can serve this provider's models, or None when someone can."""
        if self.settings.sandbox_on or not self._keyless(provider):
            return None
        return (f"no credentials for provider {provider.name}: set {provider.api_key_env or 'its API key'}, "
                "or SANDBOX=on to have the sandbox play it")

    def unavailable_models(self) -> dict[str, str]:
        """Each model nobody can serve, and why."""
        reasons = {name: self.missing_credentials(config) for name, config in self.catalog.providers.items()}
        models = [*self.catalog, *self.catalog.embeddings.values()]
        return {m.model_name: reason for m in models if (reason := reasons.get(m.provider))}

    def _keyless(self, provider: ProviderConfig) -> bool:
        return provider.base_url is None and self.api_key(provider) is None

    def for_model(self, model: ModelCapabilities | EmbeddingModel) -> Provider:
        with self._lock:
            if model.provider not in self._providers:
                self._providers[model.provider] = self._build(self.catalog.providers[model.provider])
            return self._providers[model.provider]

    def embedder(self, model: EmbeddingModel) -> EmbeddingProvider:
        """The adapter of an embedding model's provider (the catalog admits only kinds that embed)."""
        return cast(EmbeddingProvider, self.for_model(model))

    def batch_api(self, model: ModelCapabilities) -> BatchApi:
        """The batch API of the model's provider, on the same client (economy batches)."""
        provider, kind = self.for_model(model), self.catalog.providers[model.provider].kind
        if kind == "openai":
            from orchestrator.providers.openai_batches import OpenAIBatches

            return OpenAIBatches(provider)
        if kind == "anthropic":
            from orchestrator.providers.anthropic_batches import AnthropicBatches

            return AnthropicBatches(provider)
        from orchestrator.providers.gemini_batches import GeminiBatches

        return GeminiBatches(provider)

    def warm(self) -> None:
        """Build every provider's client now, so that no request waits for an SDK's import;
        a client that cannot be built is left for its first call, whose chain handles the error."""
        for model in {m.provider: m for m in self.catalog}.values():
            try:
                self.for_model(model)
            except Exception:
                log.exception("could not build the client of provider %s", model.provider)

    def base_url(self, provider: ProviderConfig) -> str | None:
        """Where the provider's SDK sends requests: None means the SDK's own default."""
        if provider.base_url:
            return provider.base_url
        if self.uses_sandbox(provider):
            return self.settings.sandbox_url + ("/v1" if provider.kind == "openai" else "")
        return None

    def _build(self, provider: ProviderConfig) -> Provider:
        builders = {"openai": self._openai, "anthropic": self._anthropic, "google": self._gemini}
        key = self.api_key(provider)
        if key:
            keep_secret(key)  # an upstream that quotes it back never gets it logged or shown
        return builders[provider.kind](provider, key or "sandbox", self.base_url(provider))

    # SDK retries are off in every client: the fallback chain owns every retry.

    def _openai(self, provider: ProviderConfig, key: str, base_url: str | None) -> Provider:
        import openai

        from orchestrator.providers.openai_compatible import OpenAICompatibleProvider

        models = {m.model_name: m for m in self.catalog if m.provider == provider.name}
        client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self._timeout(openai.Timeout))
        return OpenAICompatibleProvider(provider.name, client, models, self.uses_sandbox(provider))

    def _anthropic(self, provider: ProviderConfig, key: str, base_url: str | None) -> Provider:
        import anthropic

        from orchestrator.providers.anthropic_messages import AnthropicProvider

        client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=self._timeout(anthropic.Timeout))
        return AnthropicProvider(provider.name, client, self.uses_sandbox(provider))

    def _gemini(self, provider: ProviderConfig, key: str, base_url: str | None) -> Provider:
        from google import genai
        from google.genai import types

        from orchestrator.providers.google_gemini import GeminiProvider

        options = types.HttpOptions(base_url=base_url, timeout=int(self.settings.request_timeout * 1000), retry_options=None)
        return GeminiProvider(provider.name, genai.Client(api_key=key, http_options=options), self.uses_sandbox(provider))

    def _timeout(self, timeout_class):
        return timeout_class(self.settings.request_timeout, connect=CONNECT_TIMEOUT)
