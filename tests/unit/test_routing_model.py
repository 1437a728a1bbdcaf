"""The learned quality model: the shipped artifact loads offline and reads any input; training
on a tiny fixture is deterministic; catalog models are placed by what they say."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest

from orchestrator.core.analysis import analyze
from orchestrator.core.catalog import Catalog, CatalogError
from orchestrator.core.router import Router
from orchestrator.core.routing_model import QualityModel, load_shipped, resolve_tier
from orchestrator.core.routing_model.features import LENGTH_SCALAR
from orchestrator.core.routing_model.tiers import UnknownReference
from orchestrator.core.types import ChatRequest, Message
from orchestrator.router_training.data import Sample, load_training_set, training_files
from orchestrator.router_training.training import (
    choose_length_weight,
    features,
    folds,
    nested_out_of_fold,
    reading_of,
    train,
    word_vectors,
)


def predict(model: QualityModel, text):
    messages = (Message("user", text),)
    return model.predict(text if isinstance(text, str) else "", [], analyze(messages, None, 1024))


def test_the_shipped_artifact_loads_offline_and_predicts_in_range():
    model = load_shipped()
    assert model.metadata["trained_on"]["mmlu"] > 10_000 and "mt_bench" not in model.metadata["trained_on"]
    prediction = predict(model, "Prove that the square root of 2 is irrational.")
    assert 0 <= prediction.percentile <= 1 and 0 <= prediction.cluster < model.clusters
    assert prediction.quality(0.0) <= prediction.quality(1.0)
    assert model.reference_tiers["gpt-4-1106-preview"] == pytest.approx(1.0)
    assert model.reference_tiers["mistralai/mixtral-8x7b-chat"] == pytest.approx(0.0)


@pytest.mark.parametrize("text", ["", "   ", "\ud800 lone surrogate \udfff", "\x00\x01", "💥" * 10_000,
                                  "a" * 1_000_000, "word " * 200_000])
def test_bad_or_huge_input_gives_a_prediction(text):
    prediction = predict(load_shipped(), text)
    assert np.isfinite([prediction.weak, prediction.gap, prediction.strong_gain]).all()


def test_non_text_content_is_routed():
    parts = [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": "x"}}]
    request = ChatRequest(model="", messages=(Message("user", parts), Message("user", None)), max_tokens=100)
    assert Router(Catalog.load()).route(request).prediction is not None


def write_fixture(directory, rows):
    (directory / "train").mkdir()
    with gzip.open(directory / "train" / "tiny.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)


def tiny_rows():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        hard = i % 2 == 0
        prompt = (f"Prove the theorem about integrals number {i} rigorously" if hard
                  else f"What colour is the sky on day {i}?")
        rows.append({"prompt": prompt, "scores": {"big": 1.0, "small": float(not hard and rng.random() < 0.9)}})
    return rows


def test_training_on_a_tiny_fixture_is_deterministic_and_learns_the_gap(tmp_path):
    write_fixture(tmp_path, tiny_rows())
    files = training_files(tmp_path)
    samples = load_training_set(tmp_path, files, with_mmlu=False)
    first, meta = train(samples, files, penalties=[1.0])
    second, _ = train(samples, files, penalties=[1.0])
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_allclose(first[name], second[name], atol=1e-6)
    model = QualityModel(first, meta)
    hard = model.predict_reading(reading_of(("Prove the theorem about integrals number 99 rigorously",)))
    easy = model.predict_reading(reading_of(("What colour is the sky on day 99?",)))
    assert hard.gap > easy.gap + 0.3


def test_catalog_models_are_placed_by_what_they_say():
    references = {"gpt-3.5-turbo-1106": 0.05}
    catalog = Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": {
        "named": {"provider": "p", "prices": {"input": 1, "output": 1}, "comparable_to": "gpt-3.5-turbo-1106"},
        "number": {"provider": "p", "prices": {"input": 1, "output": 1}, "comparable_to": 1.2},
        "strong": {"provider": "p", "prices": {"input": 1, "output": 1}, "comparable_to": "strong"},
        "prior": {"provider": "p", "prices": {"input": 1, "output": 1}, "quality": {"default": 0.72}},
        "silent": {"provider": "p", "prices": {"input": 1, "output": 1}},
        "unknown": {"provider": "p", "prices": {"input": 1, "output": 1}, "comparable_to": "no-such-model"},
    }})
    tiers = {name: resolve_tier(catalog.get(name), references) for name in ("named", "number", "strong", "prior", "silent")}
    assert tiers == pytest.approx({"named": 0.05, "number": 1.2, "strong": 1.0, "prior": 0.5, "silent": 0.0})
    with pytest.raises(UnknownReference, match="no-such-model"):
        resolve_tier(catalog.get("unknown"), references)
    with pytest.raises(CatalogError, match="comparable_to"):
        Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": {
            "bad": {"provider": "p", "prices": {"input": 1, "output": 1}, "comparable_to": [1]}}})


def test_the_bundled_catalog_routes_by_the_prediction():
    router = Router(Catalog.load())
    assert router.tiers["gpt-4"] == 1.0 and router.tiers["gpt-3.5-turbo"] < 0.2
    decision = router.route(ChatRequest(model="", messages=(Message("user", "Hello there"),), max_tokens=100))
    assert decision.candidates[0]["model"] == decision.chosen_model and decision.why


def test_a_longer_prompt_than_its_clusters_usual_scores_a_larger_gap_by_the_length_weight():
    model = load_shipped()
    reading = reading_of(("Prove that the square root of 2 is irrational.",))
    longer = reading._replace(scalars=[*reading.scalars])
    longer.scalars[LENGTH_SCALAR] += 1.0
    base, moved = model.predict_reading(reading), model.predict_reading(longer)
    assert moved.cluster == base.cluster
    scalar_part = model._scalar_coef[0, LENGTH_SCALAR]
    expected = scalar_part + model.metadata["length_weight"] / model._length_scale[base.cluster]
    assert model.metadata["length_weight"] > 0
    assert moved.gap - base.gap == pytest.approx(expected)


def test_the_length_weight_is_the_smallest_that_brings_the_worst_set_up_to_prompt_length():
    samples = [Sample((("x " * n),), source, float(n > 5), 0.0, f"{source}{n}")
               for source in ("one", "two") for n in range(1, 11)]
    relative_length = np.array([n - 5.5 for _ in range(2) for n in range(1, 11)], dtype=float)
    backwards = -0.01 * relative_length  # a regression that orders these prompts the wrong way round
    weight, margins = choose_length_weight(samples, backwards, relative_length)
    assert margins["0.0"] < 0 and weight == 0.025 and margins["0.025"] == pytest.approx(0.0)


def test_nested_cross_validation_chooses_and_scores_each_fold_without_its_outcomes(tmp_path):
    write_fixture(tmp_path, tiny_rows())
    samples = load_training_set(tmp_path, training_files(tmp_path), with_mmlu=False)
    readings = [reading_of(s.turns) for s in samples]
    f = features(word_vectors(readings), readings)
    scores, choices = nested_out_of_fold(f, samples, penalties=(0.1, 1.0, 10.0))
    assert len(choices) == 5 and all(c.penalty in (0.1, 1.0, 10.0) for c in choices)
    held = folds(samples) == 0
    flipped = [dataclasses.replace(s, strong=s.weak, weak=s.strong) if h else s for s, h in zip(samples, held, strict=True)]
    flipped_scores, flipped_choices = nested_out_of_fold(f, flipped, penalties=(0.1, 1.0, 10.0))
    assert flipped_choices[0] == choices[0]
    np.testing.assert_array_equal(flipped_scores[held], scores[held])
    assert not np.array_equal(flipped_scores[~held], scores[~held])


def test_nested_cross_validation_never_fits_or_chooses_on_samples_it_may_not_train_on(tmp_path):
    write_fixture(tmp_path, tiny_rows())
    samples = load_training_set(tmp_path, training_files(tmp_path), with_mmlu=False)
    readings = [reading_of(s.turns) for s in samples]
    f = features(word_vectors(readings), readings)
    trainable = np.arange(len(samples)) % 3 != 0
    scores, choices = nested_out_of_fold(f, samples, penalties=(0.1, 1.0, 10.0), trainable=trainable)
    flipped = [s if t else dataclasses.replace(s, strong=s.weak, weak=s.strong) for s, t in zip(samples, trainable, strict=True)]
    flipped_scores, flipped_choices = nested_out_of_fold(f, flipped, penalties=(0.1, 1.0, 10.0), trainable=trainable)
    assert flipped_choices == choices
    np.testing.assert_array_equal(flipped_scores, scores)  # the others are predicted, from their fold's model
    assert np.all(scores[~trainable] != 0)
