"""The offline measures of the learned router: the per-model cost sweep on RouterBench."""

from __future__ import annotations

import numpy as np

from orchestrator.router_training.evaluation import cheapest_within


def test_cheapest_within_sends_each_prompt_to_the_cheapest_model_near_the_best_prediction():
    predicted = np.array([[0.9, 0.85], [0.9, 0.5]])  # models: dear, cheap
    scores = np.array([[1.0, 1.0], [1.0, 0.0]])
    costs = np.array([[10.0, 1.0], [10.0, 1.0]])
    accuracy, cost = cheapest_within(predicted, scores, costs, np.array([0.0, 0.1, 0.5]))
    assert accuracy.tolist() == [2.0, 2.0, 1.0]  # t=0.1: the cheap model only where it is predicted close
    assert cost.tolist() == [20.0, 11.0, 2.0]
