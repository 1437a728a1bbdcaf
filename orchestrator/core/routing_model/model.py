"""The quality model at run time: a conversation in, the predicted quality of a cheap and a
strong reference model out, and the prompt's neighbourhood (cluster) for online learning.

How it predicts (training.py fits it): each window of words becomes the mean of the words'
static embeddings (WordLlama, 256 dimensions), scaled to unit length; two ridge regressions
over both windows and a few numbers (SCALAR_NAMES) predict the weak model's quality and the
strong-minus-weak gap. Being linear, each regression folds into one number per word and
head, so the artifact ships those numbers (and a 32-dimensional projection that gives the
length and the cluster) instead of the embeddings: a dictionary look-up per word and two
small sums per request. The routing score (`gap`) adds `length_weight` times the prompt's log
length standardised within its cluster (training.py says why).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.core.analysis import TaskAnalysis
from orchestrator.core.routing_model.features import LENGTH_SCALAR, Reading, read

ARTIFACT_NAME = "quality_model"
HEADS = ("gap", "weak")
# Columns of the per-word table: each head over the whole window, then over the tail window.
_GAP_ALL, _GAP_LAST, _WEAK_ALL, _WEAK_LAST = range(4)
_HEAD_COLUMNS = 4


@dataclass(frozen=True, slots=True)
class Prediction:
    """The regression's gap orders prompts well but, being a shrunk mean of noisy outcomes,
    spans a narrow range; the strategies use it by rank: `percentile` among the training
    prompts' predicted gaps, mapped onto [0, 2 x the mean gap measured in training] (the
    calibrated `strong_gain`), so the easiest prompts get no gain from a strong model, the
    median prompt the typical gain and the hardest twice that."""

    weak: float  # predicted quality (0..1) of the weak reference model (Mixtral-8x7B class)
    gap: float  # the routing score: the regression's strong-minus-weak gap and the length term
    percentile: float  # of `gap` among the training prompts', in [0, 1]
    strong_gain: float  # the calibrated gap: what a GPT-4-class model adds on this prompt
    cluster: int  # the prompt's neighbourhood, for online learning

    @property
    def strong(self) -> float:
        return self.quality(1.0)

    def quality(self, tier: float) -> float:
        """The predicted quality of a model `tier` of the way from weak (0) to strong (1)."""
        return min(1.0, max(0.0, self.weak + tier * self.strong_gain))

    def as_dict(self) -> dict:
        return {"weak": round(self.weak, 4), "strong": round(self.strong, 4), "gap": round(self.gap, 4),
                "percentile": round(self.percentile, 4), "strong_gain": round(self.strong_gain, 4),
                "cluster": self.cluster}


class QualityModel:
    def __init__(self, arrays: dict[str, np.ndarray], metadata: dict):
        vocabulary = arrays["vocabulary"].tobytes().split(b"\n")
        self._index = {word: i for i, word in enumerate(vocabulary)}
        self._table = np.ascontiguousarray(arrays["word_table"], dtype=np.float64)
        self._scalar_mean = arrays["scalar_mean"]
        self._scalar_coef = arrays["scalar_coef"] / arrays["scalar_scale"]  # (heads, scalars)
        self._intercept = arrays["intercept"] - self._scalar_coef @ self._scalar_mean
        self._centroids = arrays["centroids"]
        self._length_mean = arrays["length_mean"]
        self._length_scale = arrays["length_scale"]
        self._length_weight = float(metadata["length_weight"])
        self._gap_quantiles = arrays["gap_quantiles"]
        self._levels = np.linspace(0.0, 1.0, len(self._gap_quantiles))
        self._mean_gap = float(metadata["mean_gap"])
        self.metadata = metadata
        self.reference_tiers: dict[str, float] = metadata["reference_tiers"]

    @property
    def clusters(self) -> int:
        return len(self._centroids)

    def _window(self, words: list[bytes]) -> np.ndarray:
        """The per-word heads summed and divided by the length of the summed projection."""
        index = self._index
        rows = [i for i in map(index.get, words) if i is not None]
        if not rows:
            return np.zeros(self._table.shape[1])
        total = self._table.take(rows, axis=0).sum(axis=0)
        norm = math.sqrt(float(total[_HEAD_COLUMNS:] @ total[_HEAD_COLUMNS:]))
        return total / norm if norm > 0 else total * 0.0

    def predict_reading(self, reading: Reading) -> Prediction:
        whole, last = self._window(reading.words), self._window(reading.last_words)
        heads = self._intercept + self._scalar_coef @ np.asarray(reading.scalars)
        cluster = int(np.argmax(self._centroids @ whole[_HEAD_COLUMNS:])) if whole.any() else 0
        length = (reading.scalars[LENGTH_SCALAR] - self._length_mean[cluster]) / self._length_scale[cluster]
        gap = float(heads[0] + whole[_GAP_ALL] + last[_GAP_LAST]) + self._length_weight * float(length)
        weak = float(heads[1] + whole[_WEAK_ALL] + last[_WEAK_LAST])
        percentile = float(np.interp(gap, self._gap_quantiles, self._levels))
        return Prediction(weak, gap, percentile, 2 * self._mean_gap * percentile, cluster)

    def predict(self, last: str, earlier: list[str], analysis: TaskAnalysis) -> Prediction:
        """`last` is the last user message, `earlier` the user turns before it, oldest first."""
        return self.predict_reading(read(last, earlier, analysis))

    @classmethod
    def load(cls, directory: Path) -> QualityModel:
        with np.load(directory / f"{ARTIFACT_NAME}.npz") as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls(arrays, json.loads((directory / f"{ARTIFACT_NAME}.json").read_text()))


def write_artifact(directory: Path, arrays: dict[str, Any], metadata: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(directory / f"{ARTIFACT_NAME}.npz", **arrays)
    (directory / f"{ARTIFACT_NAME}.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def shipped_directory() -> Path:
    return Path(str(resources.files("orchestrator.core.routing_model").joinpath("artifact")))


@cache
def load_shipped() -> QualityModel:
    """The artifact that ships in the package, loaded once per process."""
    return QualityModel.load(shipped_directory())
