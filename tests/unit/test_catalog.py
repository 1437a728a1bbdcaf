import pytest

from orchestrator.core.catalog import Catalog, CatalogError
from orchestrator.core.types import Usage


def test_brief_models_are_priced_from_genai_prices():
    catalog = Catalog.load()
    gpt4 = catalog.get("gpt-4")
    assert gpt4.price_source == "genai-prices"
    assert gpt4.cost_per_1k_input == pytest.approx(0.03)
    assert gpt4.cost(Usage(input_tokens=1000, output_tokens=1000)) == pytest.approx(0.09)
    assert catalog.get("gpt-3.5-turbo").cost_per_1k_input < gpt4.cost_per_1k_input
    assert catalog.get("o3-mini").reasoning_model


def test_a_custom_model_is_added_from_models_file(tmp_path):
    extra = tmp_path / "models.yaml"
    extra.write_text(
        "providers:\n"
        "  local: {kind: openai, base_url: 'http://127.0.0.1:11434/v1', api_key_env: LOCAL_LLM_KEY}\n"
        "models:\n"
        "  custom-model-v1:\n"
        "    provider: local\n"
        "    context_window: 32768\n"
        "    max_output_tokens: 4096\n"
        "    capabilities: [code, reasoning, streaming]\n"
        "    prices: {input: 1.0, output: 3.0}\n"
    )
    catalog = Catalog.load(str(extra))
    model = catalog.get("custom-model-v1")
    assert (model.cost_per_1k_input, model.cost_per_1k_output) == (0.001, 0.003)
    assert model.supports_code and model.supports_reasoning and model.max_tokens == 4096
    assert model.cost(Usage(input_tokens=2000, output_tokens=1000)) == pytest.approx(0.005)
    assert catalog.provider_of(model).base_url == "http://127.0.0.1:11434/v1"
    assert "gpt-4" in catalog


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("models:\n  m: {provider: nowhere, prices: {input: 1, output: 1}}\n", "not declared"),
        ("models:\n  m: {provider: openai, capabilities: [telepathy], prices: {input: 1, output: 1}}\n", "telepathy"),
        ("models:\n  unknown-model-xyz: {provider: openai}\n", "set 'prices'"),
    ],
)
def test_a_bad_models_file_says_what_is_wrong(tmp_path, text, complaint):
    extra = tmp_path / "models.yaml"
    extra.write_text(text)
    with pytest.raises(CatalogError, match=complaint):
        Catalog.load(str(extra))
