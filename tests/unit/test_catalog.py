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


def test_batch_prices_come_from_genai_prices_else_the_catalogs_discount():
    catalog = Catalog.load()
    batch, usage = catalog.at_batch_prices(), Usage(input_tokens=12_000, output_tokens=3_000)
    for name in ("gpt-4o-mini", "gemini-2.5-flash"):  # genai-prices' batch variants
        assert catalog.get(name).genai_batch_variant
        assert batch.get(name).cost(usage) == pytest.approx(catalog.get(name).cost(usage) / 2)
    haiku = "claude-3-5-haiku-20241022"  # no batch variant: models.yaml's batch_discount
    assert not catalog.get(haiku).genai_batch_variant and catalog.get(haiku).batch_discount == 0.5
    assert batch.get(haiku).cost(usage) == pytest.approx(catalog.get(haiku).cost(usage) / 2)
    for model in catalog:  # reservations follow: the worst case at batch prices
        assert batch.get(model.model_name).worst_case_cost(1000, 500) == pytest.approx(
            model.worst_case_cost(1000, 500) / 2)


def test_a_custom_provider_has_no_batch_api_unless_it_says_so(tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text("providers:\n  local: {kind: openai, base_url: 'http://localhost:9/v1'}\n"
                      "  batching: {kind: openai, base_url: 'http://localhost:9/v1', batch_api: true}\n"
                      "models:\n  mine: {provider: local, prices: {input: 1, output: 2}, batch_discount: 0.5}\n"
                      "  theirs: {provider: batching, prices: {input: 1, output: 2}, batch_discount: 0.5}\n")
    catalog = Catalog.load(str(models))
    batch, usage = catalog.at_batch_prices(), Usage(input_tokens=1_000_000)
    assert not catalog.has_batch_api(catalog.get("mine")) and batch.get("mine").cost(usage) == pytest.approx(1)
    assert catalog.has_batch_api(catalog.get("theirs")) and batch.get("theirs").cost(usage) == pytest.approx(0.5)
    assert catalog.has_batch_api(catalog.get("gpt-4o"))
