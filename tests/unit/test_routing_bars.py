"""The strategies' bars derived from the training data (orchestrator/router_training/bars.py): the
shortcut the derivation takes is what the strategies do, the rule picks the largest bar that keeps
its share, and the derivation is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.core import strategies
from orchestrator.core.catalog import Catalog
from orchestrator.core.strategies import Candidate, Context, Preferences
from orchestrator.router_training.bars import (
    BALANCED_BAR_IN_SCALES,
    GRID,
    HeldOut,
    derive,
    held_out_predictions,
    strong_chosen,
    sweep,
)
from orchestrator.router_training.data import POOLED, Sample, load_training_set, training_files
from orchestrator.router_training.training import features, reading_of, word_vectors
from tests.unit.test_routing_model import tiny_rows, write_fixture

CATALOG = Catalog.from_dict({"providers": {"p": {"kind": "openai"}}, "models": {
    "weak": {"provider": "p", "prices": {"input": 1, "output": 1}},
    "strong": {"provider": "p", "prices": {"input": 10, "output": 10}},
}})


def chooses_strong(strategy, weak_quality: float, strong_quality: float) -> bool:
    """The two references as candidates: the strong one dearer and slower, as the rule assumes."""
    weak = Candidate(CATALOG.get("weak"), 0.001, 0.002, 1.0, weak_quality)
    strong = Candidate(CATALOG.get("strong"), 0.01, 0.02, 3.0, strong_quality)
    best = max(weak_quality, strong_quality)
    context = Context(best - strategies.LOW_BAR_LOSS, "moderate", 0.5, Preferences(), best)
    return strategy([weak, strong], context)[0][1].model.model_name == "strong"


@pytest.mark.parametrize("weak", [0.0, 0.3, 0.62, 0.9])
@pytest.mark.parametrize("added", [0.0, 0.03, 0.09, 0.12, 0.17, 0.18, 0.25, 0.3])
def test_the_derivations_shortcut_is_what_cost_optimal_and_balanced_do(weak, added):
    held = HeldOut(np.array([weak]), np.zeros(1), np.array([added]))
    gained = held.added()  # clamped to [0, 1] as Prediction.quality clamps
    strong_quality = min(1.0, weak + added)
    assert chooses_strong(strategies.cost_optimal, weak, strong_quality) == strong_chosen(
        gained, strategies.LOW_BAR_LOSS)[0]
    assert chooses_strong(strategies.balanced, weak, strong_quality) == strong_chosen(
        gained, BALANCED_BAR_IN_SCALES * strategies.QUALITY_SCALE)[0]


def test_the_rule_takes_the_largest_bar_that_keeps_the_share():
    samples = [Sample(("x",), "one", 1.0, 0.0, str(i)) for i in range(10)]
    added = np.linspace(0.0, 0.45, 10)  # the larger the predicted gain, the fewer prompts lose it
    s = sweep(samples, np.arange(10), added)
    assert s.recovered[0] == pytest.approx(0.9)  # a prompt predicted to gain nothing stays weak
    assert s.largest_keeping(0.5) == pytest.approx(0.245) and s.at(0.2) == pytest.approx((0.5, 0.5))
    assert s.largest_keeping(0.75) == pytest.approx(0.095)
    assert s.largest_keeping(1.0) == 0.0  # none keeps it all: no bar
    assert list(s.bars) == list(GRID)


def test_the_bars_are_derived_deterministically_from_held_out_predictions(tmp_path):
    write_fixture(tmp_path, tiny_rows())
    samples = load_training_set(tmp_path, training_files(tmp_path), with_mmlu=False)
    readings = [reading_of(s.turns) for s in samples]
    f = features(word_vectors(readings), readings)
    first = held_out_predictions(f, samples, 1.0, 0.1)
    second = held_out_predictions(f, samples, 1.0, 0.1)
    np.testing.assert_allclose(first.strong_gain, second.strong_gain, atol=1e-9)
    assert (first.strong_gain >= 0).all() and first.strong_gain.max() > 0.3
    bars, again = derive(samples, first), derive(samples, second)
    assert (bars.low_bar_loss, bars.quality_scale) == (again.low_bar_loss, again.quality_scale)
    np.testing.assert_array_equal(bars.traffic.recovered, again.traffic.recovered)
    kept, _ = bars.traffic.at(bars.low_bar_loss)
    assert kept >= 0.5 and bars.by_set[POOLED] is bars.traffic
    assert bars.quality_scale * BALANCED_BAR_IN_SCALES <= bars.low_bar_loss
