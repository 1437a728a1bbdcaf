"""Fitting the quality model: `orchestrator router train` and the cross-validated evaluation.

1. The word vectors: every word of the vocabulary (the whole-word tokens of WordLlama's
   tokenizer and every word seen twice in the training data) embedded with WordLlama's
   static 256-dimensional token embeddings (MIT; the weights ship inside its wheel, so
   nothing is downloaded), and projected on their 32 main directions, which give each
   window's length and its cluster.
2. Two ridge regressions (the gap and the weak model's quality), each file weighted by
   1/sqrt(its size) so that MMLU's 14,000 questions do not drown the small files; the
   embeddings' penalty is chosen by 5-fold cross-validation grouped by question (MMLU by
   subject, and groups sharing a question joined: data.load_training_set), maximising the
   mean APGR over the sets. MT-Bench plays no part.
3. k-means over the training prompts' projected vectors: the neighbourhoods that online
   learning keeps estimates for, and that the prompt's length is measured against.
4. The routing score: the regression's gap plus `length_weight` times the prompt's log
   length standardised within its neighbourhood (a longer prompt than its kind's usual one
   is a harder one). The ridge, fitting squared error on noisy 0/1 outcomes across very
   different files, gives that within-kind length almost no weight although it orders the
   prompts of one file better; the weight is chosen by the same cross-validation, as the one
   whose worst set (each file, MMLU, the files pooled) comes out best against prompt length,
   with the clusters made without the held-out fold.

Deterministic: a fixed seed, closed-form solutions, fixed iteration counts.
"""

from __future__ import annotations

import datetime
import hashlib
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from orchestrator.core.analysis import analyze
from orchestrator.core.routing_model.features import LENGTH_SCALAR, SCALAR_NAMES, Reading, read
from orchestrator.core.routing_model.model import QualityModel
from orchestrator.core.types import Message
from orchestrator.router_training.data import MMLU, POOLED, STRONG, WEAK, Sample
from orchestrator.router_training.evaluation import apgr

SEED = 20261207
FOLDS = 5
PROJECTION_DIMS = 32
CLUSTERS = 32
KMEANS_ROUNDS = 25
PENALTIES = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)  # for the embeddings; the standardised scalars take 1
SCALAR_PENALTY = 1.0
LENGTH_WEIGHTS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2)
MIN_WORD_COUNT = 2
QUANTILES = 101
WORDLLAMA_CONFIG = "l2_supercat"


@dataclass(frozen=True)
class WordVectors:
    words: list[bytes]
    full: np.ndarray  # (words, 256)
    projected: np.ndarray  # (words, PROJECTION_DIMS)


@dataclass(frozen=True)
class Features:
    whole: np.ndarray  # (samples, 256): summed word vectors over the length of their projection
    last: np.ndarray
    scalars: np.ndarray  # (samples, len(SCALAR_NAMES))
    projected: np.ndarray  # (samples, PROJECTION_DIMS), unit length: for the clusters


def reading_of(turns: Sequence[str]) -> Reading:
    messages = tuple(Message("user", text) for text in turns)
    return read(turns[-1], list(turns[:-1]), analyze(messages, None, 1024))


def _wordllama_files() -> tuple[Path, Path]:
    package = resources.files("wordllama")
    tokenizer = Path(str(package.joinpath("tokenizers", f"{WORDLLAMA_CONFIG}_tokenizer_config.json")))
    weights = Path(str(package.joinpath("weights", f"{WORDLLAMA_CONFIG}_256.safetensors")))
    return tokenizer, weights


def word_vectors(readings: Sequence[Reading]) -> WordVectors:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tokenizer_file, weights_file = _wordllama_files()
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    embeddings = next(iter(load_file(str(weights_file)).values())).astype(np.float64)
    whole_words = {token[1:].lower() for token in tokenizer.get_vocab() if token.startswith("▁") and token[1:].isalpha()}
    counts = Counter(word for reading in readings for word in reading.words)
    seen = {word.decode("utf-8", "ignore") for word, count in counts.items() if count >= MIN_WORD_COUNT}
    words = sorted(w for w in whole_words | seen if w and "\n" not in w)
    encoded = tokenizer.encode_batch(words, add_special_tokens=False)
    kept = [(w, e.ids) for w, e in zip(words, encoded, strict=True) if e.ids]
    full = np.stack([embeddings[ids].mean(axis=0) for _, ids in kept])
    # The main directions (uncentred, so the mean direction is kept): they give the length of a sum.
    _, _, axes = np.linalg.svd(full, full_matrices=False)
    axes = axes[:PROJECTION_DIMS]
    axes *= np.sign(axes[np.arange(PROJECTION_DIMS), np.abs(axes).argmax(axis=1)])[:, None]
    return WordVectors([w.encode() for w, _ in kept], full, full @ axes.T)


def _window_vectors(vectors: WordVectors, windows: Sequence[list[bytes]]) -> tuple[np.ndarray, np.ndarray]:
    index = {word: i for i, word in enumerate(vectors.words)}
    full = np.zeros((len(windows), vectors.full.shape[1]))
    projected = np.zeros((len(windows), PROJECTION_DIMS))
    for row, words in enumerate(windows):
        rows = [i for i in map(index.get, words) if i is not None]
        if rows:
            summed = vectors.projected[rows].sum(axis=0)
            norm = np.linalg.norm(summed)
            if norm > 0:
                full[row] = vectors.full[rows].sum(axis=0) / norm
                projected[row] = summed / norm
    return full, projected


def features(vectors: WordVectors, readings: Sequence[Reading]) -> Features:
    whole, projected = _window_vectors(vectors, [r.words for r in readings])
    last, _ = _window_vectors(vectors, [r.last_words for r in readings])
    return Features(whole, last, np.array([r.scalars for r in readings]), projected)


def source_weights(samples: Sequence[Sample]) -> np.ndarray:
    sizes = Counter(s.source for s in samples)
    weights = np.array([1 / np.sqrt(sizes[s.source]) for s in samples])
    return weights * len(samples) / weights.sum()


def folds(samples: Sequence[Sample], seed: int = SEED) -> np.ndarray:
    """A fold per sample: its group's, groups dealt round-robin in a seeded order."""
    groups = sorted({s.group for s in samples})
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[g]: k % FOLDS for k, g in enumerate(order)}
    return np.array([fold_of[s.group] for s in samples])


@dataclass(frozen=True)
class Ridge:
    """Two heads (gap, weak) over [whole, last, standardised scalars]."""

    coef: np.ndarray  # (features, 2)
    intercept: np.ndarray  # (2,)
    scalar_mean: np.ndarray
    scalar_scale: np.ndarray

    def design(self, f: Features, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        scalars = (f.scalars[rows] - self.scalar_mean) / self.scalar_scale
        return np.hstack([f.whole[rows], f.last[rows], scalars])

    def predict(self, f: Features, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self.design(f, rows) @ self.coef + self.intercept


def fit_ridge(f: Features, targets: np.ndarray, weights: np.ndarray, rows: np.ndarray, penalty: float) -> Ridge:
    scalar_mean = f.scalars[rows].mean(axis=0)
    scalar_scale = f.scalars[rows].std(axis=0)
    scalar_scale[scalar_scale == 0] = 1.0
    shell = Ridge(np.zeros(0), np.zeros(2), scalar_mean, scalar_scale)
    x, y, w = shell.design(f, rows), targets[rows], weights[rows]
    x_mean = w @ x / w.sum()
    y_mean = w @ y / w.sum()
    centred = x - x_mean
    dims = f.whole.shape[1]
    penalties = np.r_[np.full(2 * dims, penalty), np.full(len(SCALAR_NAMES), SCALAR_PENALTY)]
    coef = np.linalg.solve((centred * w[:, None]).T @ centred + np.diag(penalties), (centred * w[:, None]).T @ (y - y_mean))
    return Ridge(coef, y_mean - x_mean @ coef, scalar_mean, scalar_scale)


def targets(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([[s.strong - s.weak, s.weak] for s in samples])


def _rows(samples: Sequence[Sample], rows: np.ndarray | None) -> np.ndarray:
    return np.arange(len(samples)) if rows is None else np.asarray(rows)


def out_of_fold(f: Features, samples: Sequence[Sample], penalty: float, seed: int = SEED,
                rows: np.ndarray | None = None) -> np.ndarray:
    """(samples, 2): each of the samples `rows` (default all) predicted by the model fitted on
    the other folds of those rows (their groups dealt into folds with `seed`); 0 elsewhere."""
    rows = _rows(samples, rows)
    fold, y, w = folds([samples[i] for i in rows], seed), targets(samples), source_weights(samples)
    predicted = np.zeros((len(samples), 2))
    for k in range(FOLDS):
        held = fold == k
        predicted[rows[held]] = fit_ridge(f, y, w, rows[~held], penalty).predict(f, rows[held])
    return predicted


def out_of_fold_per_model(f: Features, samples: Sequence[Sample], rows: np.ndarray, models: Sequence[str],
                          penalty: float, seed: int = SEED) -> np.ndarray:
    """(rows, models): each model's score on the samples `rows` (which must all have every
    model's score), predicted by a ridge fitted on those rows of the other folds (the folds of
    `out_of_fold`)."""
    fold = folds(samples, seed)[rows]
    y = np.zeros((len(samples), len(models)))
    y[rows] = [[samples[i].scores[m] for m in models] for i in rows]
    weights, predicted = np.ones(len(samples)), np.zeros((len(rows), len(models)))
    for k in range(FOLDS):
        held = fold == k
        predicted[held] = fit_ridge(f, y, weights, rows[~held], penalty).predict(f, rows[held])
    return predicted


def mean_apgr(samples: Sequence[Sample], gap: np.ndarray, rows: np.ndarray | None = None) -> float:
    """The mean APGR over the files (MMLU one of them) of the samples `rows` (default all)."""
    rows = _rows(samples, rows)
    sources = np.array([samples[i].source for i in rows])
    by_source = []
    for source in sorted(set(sources)):
        index = rows[sources == source]
        by_source.append(apgr(gap[index], [samples[i] for i in index])[0])
    return statistics.fmean(a for a in by_source if np.isfinite(a))


def choose_penalty(f: Features, samples: Sequence[Sample], rows: np.ndarray | None = None, seed: int = SEED,
                   penalties: Sequence[float] = PENALTIES) -> tuple[float, dict[str, float]]:
    """The penalty whose out-of-fold gaps (5 folds of `rows`, default all) give the best mean
    APGR over the files; ties go to the larger penalty."""
    scores = {str(p): mean_apgr(samples, out_of_fold(f, samples, p, seed, rows)[:, 0], rows) for p in penalties}
    best = max(penalties, key=lambda p: (scores[str(p)], -p))
    return best, scores


def kmeans(points: np.ndarray, clusters: int, seed: int = SEED) -> np.ndarray:
    """Spherical k-means (cosine), seeded k-means++ start, a fixed number of rounds."""
    rng = np.random.default_rng(seed)
    points = points[np.linalg.norm(points, axis=1) > 0]
    centroids = [points[rng.integers(len(points))]]
    for _ in range(1, clusters):
        distance = 1 - np.max(points @ np.array(centroids).T, axis=1)
        distance = np.clip(distance, 0, None) ** 2
        total = distance.sum()  # 0 when there are fewer distinct points than clusters: then any point
        centroids.append(points[rng.choice(len(points), p=distance / total if total > 0 else None)])
    centres = np.array(centroids)
    for _ in range(KMEANS_ROUNDS):
        nearest = np.argmax(points @ centres.T, axis=1)
        for c in range(clusters):
            members = points[nearest == c]
            if len(members):
                mean = members.mean(axis=0)
                centres[c] = mean / np.linalg.norm(mean)
    return centres


@dataclass(frozen=True)
class Neighbourhoods:
    centroids: np.ndarray  # (CLUSTERS, PROJECTION_DIMS), unit length
    length_mean: np.ndarray  # (CLUSTERS,): the mean log length of the training prompts nearest each
    length_scale: np.ndarray  # (CLUSTERS,): and its standard deviation

    def relative_length(self, f: Features, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Each prompt's log length standardised within its nearest cluster."""
        nearest = np.argmax(f.projected[rows] @ self.centroids.T, axis=1)
        return (f.scalars[rows, LENGTH_SCALAR] - self.length_mean[nearest]) / self.length_scale[nearest]


def neighbourhoods(f: Features, seed: int = SEED, rows: np.ndarray | slice = slice(None)) -> Neighbourhoods:
    """The clusters of the prompts `rows` and their lengths."""
    projected, lengths = f.projected[rows], f.scalars[rows, LENGTH_SCALAR]
    centroids = kmeans(projected, CLUSTERS, seed)
    nearest = np.argmax(projected @ centroids.T, axis=1)
    mean = np.array([lengths[nearest == c].mean() if (nearest == c).any() else lengths.mean() for c in range(CLUSTERS)])
    scale = np.array([lengths[nearest == c].std() if (nearest == c).sum() > 1 else 0.0 for c in range(CLUSTERS)])
    scale[scale == 0] = 1.0
    return Neighbourhoods(centroids, mean, scale)


def out_of_fold_relative_length(f: Features, samples: Sequence[Sample], seed: int = SEED,
                                rows: np.ndarray | None = None) -> np.ndarray:
    """Each prompt's relative length against clusters made without its fold (the folds of
    `out_of_fold`): held out means held out of the unsupervised parts too."""
    rows = _rows(samples, rows)
    fold, relative = folds([samples[i] for i in rows], seed), np.zeros(len(samples))
    for k in range(FOLDS):
        held = fold == k
        relative[rows[held]] = neighbourhoods(f, seed, rows[~held]).relative_length(f, rows[held])
    return relative


def evaluation_sets(samples: Sequence[Sample], rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The rows (of `rows`, default all) of each file, and of every file but MMLU pooled as
    mixed traffic."""
    rows = _rows(samples, rows)
    sources = np.array([samples[i].source for i in rows])
    sets = {source: rows[sources == source] for source in sorted(set(sources))}
    sets[POOLED] = rows[sources != MMLU]
    return sets


def choose_length_weight(samples: Sequence[Sample], gap: np.ndarray, relative_length: np.ndarray,
                         rows: np.ndarray | None = None, length_weights: Sequence[float] = LENGTH_WEIGHTS,
                         ) -> tuple[float, dict[str, float]]:
    """The weight whose worst set, measured against ordering by prompt length, does best: the
    goal is no set below prompt length (out-of-fold gaps; the sets of `evaluation_sets` of `rows`)."""
    length = np.log1p([sum(map(len, s.turns)) for s in samples])
    sets = evaluation_sets(samples, rows)
    baseline = {name: apgr(length[index], [samples[i] for i in index])[0] for name, index in sets.items()}

    def worst_margin(weight: float) -> float:
        score = gap + weight * relative_length
        margins = [apgr(score[index], [samples[i] for i in index])[0] - baseline[name] for name, index in sets.items()]
        return min(m for m in margins if np.isfinite(m))

    margins = {str(w): worst_margin(w) for w in length_weights}
    best = max(length_weights, key=lambda w: (margins[str(w)], -w))
    return best, margins


@dataclass(frozen=True)
class Choice:
    penalty: float
    length_weight: float
    penalty_scores: dict[str, float]  # penalty -> cross-validated mean APGR over the files
    length_margins: dict[str, float]  # length weight -> cross-validated worst margin over prompt length


def choose(f: Features, samples: Sequence[Sample], rows: np.ndarray | None = None, seed: int = SEED,
           penalties: Sequence[float] = PENALTIES, length_weights: Sequence[float] = LENGTH_WEIGHTS) -> Choice:
    """The shipped way of choosing, on the samples `rows` (default all) and their own 5 folds:
    the penalty by mean APGR over the files, then the length weight by the worst margin over
    prompt length, with the length term's clusters made without each held-out fold."""
    penalty, penalty_scores = choose_penalty(f, samples, rows, seed, penalties)
    gap = out_of_fold(f, samples, penalty, seed, rows)[:, 0]
    relative = out_of_fold_relative_length(f, samples, seed, rows)
    length_weight, margins = choose_length_weight(samples, gap, relative, rows, length_weights)
    return Choice(penalty, length_weight, penalty_scores, margins)


def nested_out_of_fold(f: Features, samples: Sequence[Sample], seed: int = SEED,
                       penalties: Sequence[float] = PENALTIES, length_weights: Sequence[float] = LENGTH_WEIGHTS,
                       trainable: np.ndarray | None = None) -> tuple[np.ndarray, list[Choice]]:
    """Routing scores of every sample from the model fitted on the other folds (the folds of
    `out_of_fold`), with the penalty and the length weight chosen by `choose` on those other
    folds alone (their own 5 folds, dealt with seed + 1 + k): nothing held out takes part in
    any choice, nor in the clusters of the length term. `trainable` (a mask, default all): the
    samples that may be fitted and chosen on; the others are only predicted, each from the model
    of its own fold (so two runs differing in `trainable` are measured on the same folds)."""
    fold, y, w = folds(samples, seed), targets(samples), source_weights(samples)
    allowed = np.ones(len(samples), dtype=bool) if trainable is None else np.asarray(trainable, dtype=bool)
    scores, choices = np.zeros(len(samples)), []
    for k in range(FOLDS):
        held, kept = np.flatnonzero(fold == k), np.flatnonzero((fold != k) & allowed)
        choice = choose(f, samples, kept, seed + 1 + k, penalties, length_weights)
        gap = fit_ridge(f, y, w, kept, choice.penalty).predict(f, held)[:, 0]
        relative = neighbourhoods(f, seed, kept).relative_length(f, held)
        scores[held] = gap + choice.length_weight * relative
        choices.append(choice)
    return scores, choices


def reference_tiers(samples: Sequence[Sample]) -> dict[str, float]:
    """Each reference model's mean score placed between the weak (0) and strong (1) reference,
    per file, averaged over the files that measured it with both references."""
    tiers: dict[str, list[float]] = {}
    for source in sorted({s.source for s in samples if STRONG in s.scores and WEAK in s.scores}):
        rows = [s for s in samples if s.source == source and STRONG in s.scores and WEAK in s.scores]
        strong = statistics.fmean(s.scores[STRONG] for s in rows)
        weak = statistics.fmean(s.scores[WEAK] for s in rows)
        if strong - weak <= 0:
            continue
        for model in sorted({m for s in rows for m in s.scores}):
            mean = statistics.fmean(s.scores[model] for s in rows if model in s.scores)
            tiers.setdefault(model, []).append((mean - weak) / (strong - weak))
    return {model: round(statistics.fmean(values), 4) for model, values in tiers.items()}


def _digest(paths: Sequence[Path]) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:16] for path in paths}


def train(samples: Sequence[Sample], sources: Sequence[Path], seed: int = SEED,
          penalties: Sequence[float] | None = None, length_weights: Sequence[float] | None = None,
          ) -> tuple[dict[str, np.ndarray], dict]:
    """The artifact's arrays and metadata, fitted on every sample; `penalties` and
    `length_weights` given skip the cross-validation and take their first value."""
    readings = [reading_of(s.turns) for s in samples]
    vectors = word_vectors(readings)
    f = features(vectors, readings)
    if penalties is None:
        penalty, cv_scores = choose_penalty(f, samples)
    else:
        penalty, cv_scores = penalties[0], {}
    places = neighbourhoods(f, seed)
    relative_length = places.relative_length(f)
    if length_weights is None:
        length_weight, length_scores = choose_length_weight(samples, out_of_fold(f, samples, penalty)[:, 0],
                                                            out_of_fold_relative_length(f, samples, seed))
    else:
        length_weight, length_scores = length_weights[0], {}
    ridge = fit_ridge(f, targets(samples), source_weights(samples), np.arange(len(samples)), penalty)
    gaps = ridge.predict(f)[:, 0] + length_weight * relative_length
    dims = vectors.full.shape[1]
    whole_coef, last_coef = ridge.coef[:dims], ridge.coef[dims:2 * dims]
    heads = np.hstack([vectors.full @ whole_coef[:, :1], vectors.full @ last_coef[:, :1],
                       vectors.full @ whole_coef[:, 1:], vectors.full @ last_coef[:, 1:]])
    arrays = {
        "vocabulary": np.frombuffer(b"\n".join(vectors.words), dtype=np.uint8),
        "word_table": np.hstack([heads, vectors.projected]).astype(np.float32),
        "scalar_mean": ridge.scalar_mean,
        "scalar_scale": ridge.scalar_scale,
        "scalar_coef": ridge.coef[2 * dims:].T.copy(),
        "intercept": ridge.intercept,
        "centroids": places.centroids,
        "length_mean": places.length_mean,
        "length_scale": places.length_scale,
        "gap_quantiles": np.quantile(gaps, np.linspace(0.0, 1.0, QUANTILES)),
    }
    counts = Counter(s.source for s in samples)
    metadata = {
        "trained": datetime.date.today().isoformat(),
        "seed": seed,
        "trained_on": {source: counts[source] for source in sorted(counts)},
        "files": _digest(sources),
        "embeddings": f"WordLlama {WORDLLAMA_CONFIG} 256-d token embeddings (MIT), averaged per word",
        "penalty": penalty,
        "cv_mean_apgr_by_penalty": cv_scores,
        "length_weight": length_weight,
        "cv_worst_margin_over_length_by_length_weight": length_scores,
        "scalars": list(SCALAR_NAMES),
        "reference_tiers": reference_tiers(samples),
        "mean_gap": round(float(targets(samples)[:, 0].mean()), 6),
        "strong_reference": STRONG,
        "weak_reference": WEAK,
    }
    return arrays, metadata


def model_from(arrays: dict[str, np.ndarray], metadata: dict) -> QualityModel:
    return QualityModel(arrays, metadata)
