"""Where each provider's SDK client points: the real API with a key, the sandbox without.
No request is sent; the clients' configuration is read."""

import dataclasses

from orchestrator.config import load_settings
from orchestrator.core.catalog import Catalog
from orchestrator.providers.registry import ProviderRegistry


def registry(**keys) -> ProviderRegistry:
    settings = dataclasses.replace(load_settings(read_dotenv=False), **keys)
    return ProviderRegistry(settings, Catalog.load())


def test_without_keys_every_provider_is_the_sandbox():
    reg = registry(openai_api_key=None, anthropic_api_key=None, google_api_key=None)
    sandbox = reg.settings.sandbox_url
    clients = {name: reg.for_model(reg.catalog.get(model)) for name, model in
               [("openai", "gpt-4"), ("anthropic", "claude-sonnet-4-20250514"), ("google", "gemini-2.5-pro")]}
    assert all(provider.sandbox for provider in clients.values())
    assert str(clients["openai"].client.base_url).rstrip("/") == f"{sandbox}/v1"
    assert str(clients["anthropic"].client.base_url).rstrip("/") == sandbox
    assert clients["google"].client._api_client._http_options.base_url.rstrip("/") == sandbox


def test_with_keys_the_real_apis_are_used_with_sdk_retries_off():
    reg = registry(openai_api_key="sk-test", anthropic_api_key="sk-ant-test", google_api_key="g-test")
    openai_provider = reg.for_model(reg.catalog.get("gpt-4"))
    anthropic_provider = reg.for_model(reg.catalog.get("claude-sonnet-4-20250514"))
    gemini_provider = reg.for_model(reg.catalog.get("gemini-2.5-pro"))
    assert not (openai_provider.sandbox or anthropic_provider.sandbox or gemini_provider.sandbox)
    assert str(openai_provider.client.base_url) == "https://api.openai.com/v1/"
    assert openai_provider.client.api_key == "sk-test" and openai_provider.client.max_retries == 0
    assert str(anthropic_provider.client.base_url) == "https://api.anthropic.com"
    assert anthropic_provider.client.max_retries == 0
    assert "generativelanguage.googleapis.com" in gemini_provider.client._api_client._http_options.base_url
    assert gemini_provider.client._api_client._http_options.retry_options is None


def test_custom_provider_goes_to_its_base_url_with_its_key(tmp_path, monkeypatch):
    extra = tmp_path / "models.yaml"
    extra.write_text(
        "providers:\n  local: {kind: openai, base_url: 'http://10.0.0.5:8000/v1', api_key_env: LOCAL_KEY}\n"
        "models:\n  llama-local: {provider: local, prices: {input: 0, output: 0}}\n"
    )
    monkeypatch.setenv("LOCAL_KEY", "local-secret")
    settings = load_settings(read_dotenv=False)
    reg = ProviderRegistry(settings, Catalog.load(str(extra)))
    provider = reg.for_model(reg.catalog.get("llama-local"))
    assert str(provider.client.base_url) == "http://10.0.0.5:8000/v1/"
    assert provider.client.api_key == "local-secret" and not provider.sandbox


def test_embedding_models_nobody_can_serve_are_unavailable_with_the_reason():
    reg = registry(openai_api_key="sk-test", anthropic_api_key=None, google_api_key=None, sandbox="off")
    unavailable = reg.unavailable_models()
    assert "GOOGLE_API_KEY" in unavailable["gemini-embedding-001"] and "text-embedding-3-small" not in unavailable
    served = reg.catalog.without(unavailable)
    assert "gemini-embedding-001" not in served.embeddings and "text-embedding-3-small" in served.embeddings
