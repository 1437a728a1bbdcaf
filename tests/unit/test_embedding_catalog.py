"""Embedding models in the catalog: priced, kept apart from chat models, grouped by space for
fallbacks; the contracts that carry an embedding request between processes; the sandbox's vectors."""

import numpy as np
import pytest

from orchestrator.core.catalog import Catalog, CatalogError
from orchestrator.core.embedding import (
    EmbeddingJob,
    EmbeddingResult,
    UnknownEmbeddingJobVersion,
    decode_vector,
    encode_vector,
)
from sandbox.embeddings import shortened, vector

MIRROR = """
providers:
  mirror: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
embedding_models:
  mirror/text-embedding-3-small:
    provider: mirror
    upstream: text-embedding-3-small
    dimensions: 1536
    prices: {input: 0.05}
"""


def test_bundled_embedding_models_are_priced_and_never_chat_candidates():
    catalog = Catalog.load()
    small = catalog.embeddings["text-embedding-3-small"]
    assert small.price_source == "genai-prices" and small.cost(1_000_000) == pytest.approx(0.02)
    assert catalog.embeddings["gemini-embedding-001"].provider == "google"
    assert not set(catalog.embeddings) & {m.model_name for m in catalog}


def test_a_model_falls_back_only_within_its_space(tmp_path):
    extra = tmp_path / "models.yaml"
    extra.write_text(MIRROR)
    catalog = Catalog.load(str(extra))
    assert [m.model_name for m in catalog.embedding_chain("text-embedding-3-small")] == [
        "text-embedding-3-small", "mirror/text-embedding-3-small"]
    assert [m.model_name for m in catalog.embedding_chain("mirror/text-embedding-3-small")] == [
        "mirror/text-embedding-3-small", "text-embedding-3-small"]
    assert [m.model_name for m in catalog.embedding_chain("text-embedding-3-large")] == ["text-embedding-3-large"]
    mirror = catalog.embeddings["mirror/text-embedding-3-small"]
    assert mirror.cost(1_000_000) == pytest.approx(0.05) and mirror.price_source == "models.yaml"


@pytest.mark.parametrize(("entry", "complaint"), [
    ("  e: {provider: anthropic, dimensions: 8, prices: {input: 1}}", "embeddings API"),
    ("  e: {provider: nowhere, dimensions: 8, prices: {input: 1}}", "must be declared"),
    ("  e: {provider: openai, dimensions: 0, prices: {input: 1}}", "dimensions must be"),
    ("  e: {provider: openai, dimensions: 8}", "genai-prices has no price"),
    ("  gpt-4o: {provider: openai, dimensions: 8, prices: {input: 1}}", "either a chat model or an embedding model"),
])
def test_a_bad_embedding_model_says_what_is_wrong(tmp_path, entry, complaint):
    extra = tmp_path / "models.yaml"
    extra.write_text(f"embedding_models:\n{entry}\n")
    with pytest.raises(CatalogError, match=complaint):
        Catalog.load(str(extra))


def test_the_job_and_the_result_travel_as_json():
    job = EmbeddingJob(owner="u", model="m", inputs=("a", "b"), dimensions=8, deadline=12.5, user="end")
    assert EmbeddingJob.from_json(job.to_json()) == job
    with pytest.raises(UnknownEmbeddingJobVersion):
        EmbeddingJob.from_json({**job.to_json(), "version": job.version + 1})
    result = EmbeddingResult("req_1", "m", "p", (encode_vector([0.5, -1.0]),), 3, 0.000001, [{"model": "m"}])
    assert EmbeddingResult.from_json(result.to_json()) == result
    assert "vectors" not in result.summary() and result.summary()["inputs"] == 1
    assert decode_vector(result.vectors[0]) == [0.5, -1.0]


def test_the_sandbox_gives_a_text_the_same_unit_vector_and_shortens_it_as_providers_do():
    full = vector("text-embedding-3-small", "hello", 1536)
    assert np.array_equal(full, vector("text-embedding-3-small", "hello", 1536))
    assert not np.allclose(full, vector("text-embedding-3-large", "hello", 1536))
    short = shortened(full, 256)
    assert np.linalg.norm(full) == pytest.approx(1) and np.linalg.norm(short) == pytest.approx(1)
    assert np.allclose(short, full[:256] / np.linalg.norm(full[:256]))
