"""Untried model families for the learned router, measured as procedures with nested cross-validation
on the training data alone (MT-Bench is never read here).

    python -m bench.routing_families screen NAME ...  # plain 5-fold CV, beside the ridge
    python -m bench.routing_families run NAME         # nested out-of-fold scores to OUT/NAME.json
    python -m bench.routing_families table A B        # as bench/routing_nested's table (same OUT)

The screen: the report's 5 folds, each family with its fixed settings and no length term, beside
the ridge (penalty 300, the shipped one) also without it; nothing is chosen on any fold. A family
goes on to the nested run only if the screen raises both MMLU held out and the pooled set.

Every family's settings are fixed before its run (below); the only setting chosen is the shipped
one, the length weight of the routing score (its gap + weight x the prompt's log length within its
cluster), by the shipped rule (the worst margin over prompt length) on each outer training part's
own 5 folds (seed 20261208 + k), clusters without the held fold, exactly as
`training.nested_out_of_fold` does for the ridge. The outer folds are the report's.

- `mf`: matrix factorisation over every model of the files (RouteLLM's "mf", linear): each
  (prompt, model) score predicted as b_m + x W v_m, x the ridge's inputs (both windows' vectors
  and the standardised scalars), W (528 x 16) and v_m (16) fitted together by full-batch Adam
  (400 steps, rate 0.01, L2 1e-4 on W and 1e-3 on v, squared error, each file weighted 1/sqrt
  of its size, split over its models; seeded start). The gap: the mean, over the files' own
  strong/weak pairs weighted by their files' weights, of predicted strong minus predicted weak.
  Being linear, it would fold into the per-word table as the ridge does (no run-time cost).
- `ngrams`: hashed character 3-, 4- and 5-grams of the ridge's two windows (folded text),
  2^18 buckets, presence, each window scaled to unit length, beside the ridge's dense inputs, one
  ridge (penalty 300 on the dense part as shipped, 3 on the n-grams, then 30 as a second and
  last try: NGRAM_PENALTY) for the gap, solved by conjugate gradient (scipy, 200 iterations at most).
- `gbt`: gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor: 200 rounds, rate
  0.05, depth 3, 50 a leaf, L2 1, seeded) on the gap, each file weighted as the ridge's, over the
  analyzer's numbers and the 32-dimensional projections of both windows.
- `gbt-stack`: the ridge's gap (penalty 300, fitted on the training part) plus the same trees
  fitted on what the ridge leaves: the training part's own out-of-fold ridge residuals.

scikit-learn and scipy are needed only here (they are not dependencies of the project).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.routing_nested import table
from orchestrator.core.routing_model.features import _FOLD
from orchestrator.router_training.data import Sample
from orchestrator.router_training.training import (
    FOLDS,
    SEED,
    Features,
    choose_length_weight,
    fit_ridge,
    folds,
    neighbourhoods,
    out_of_fold_relative_length,
    source_weights,
    targets,
)

OUT = Path(os.environ.get("ROUTING_NESTED_OUT", "/tmp/routing_nested"))
RIDGE_PENALTY = 300.0

# A fitter takes the training rows and returns a scorer of any rows (the predicted gap).
Fitter = Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]


def nested(samples: Sequence[Sample], f: Features, fitter: Fitter, seed: int = SEED) -> tuple[np.ndarray, list[float]]:
    fold = folds(samples, seed)
    scores, weights = np.zeros(len(samples)), []
    for k in range(FOLDS):
        held, kept = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        inner_fold = folds([samples[i] for i in kept], seed + 1 + k)
        inner = np.zeros(len(samples))
        for j in range(FOLDS):
            inner_held = kept[inner_fold == j]
            inner[inner_held] = fitter(kept[inner_fold != j])(inner_held)
        relative = out_of_fold_relative_length(f, samples, seed + 1 + k, kept)
        weight, _ = choose_length_weight(samples, inner, relative, kept)
        scores[held] = fitter(kept)(held) + weight * neighbourhoods(f, seed, kept).relative_length(f, held)
        weights.append(weight)
        print(f"outer fold {k}: length weight {weight}", flush=True)
    return scores, weights


def _design(f: Features, rows: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.hstack([f.whole[rows], f.last[rows], (f.scalars[rows] - mean) / scale])


# --- matrix factorisation -----------------------------------------------------------------

MF_DIMS, MF_STEPS, MF_RATE, MF_L2_W, MF_L2_V = 16, 400, 0.01, 1e-4, 1e-3


def mf_fitter(samples: Sequence[Sample], f: Features, seed: int = SEED) -> Fitter:
    models = sorted({m for s in samples for m in s.scores})
    column = {m: j for j, m in enumerate(models)}
    y = np.zeros((len(samples), len(models)))
    observed = np.zeros_like(y)
    for i, s in enumerate(samples):
        for m, v in s.scores.items():
            y[i, column[m]], observed[i, column[m]] = v, 1.0
    # MMLU's file has no per-model scores: its two references.
    from orchestrator.router_training.data import STRONG, WEAK
    for i, s in enumerate(samples):
        if not s.scores:
            y[i, column[STRONG]], y[i, column[WEAK]] = s.strong, s.weak
            observed[i, column[STRONG]] = observed[i, column[WEAK]] = 1.0
    pair = np.array([(column[_strong_of(s)], column[_weak_of(s)]) for s in samples])
    file_weight = source_weights(samples)

    def fit(rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        mean, scale = f.scalars[rows].mean(axis=0), f.scalars[rows].std(axis=0)
        scale[scale == 0] = 1.0
        x = _design(f, rows, mean, scale)
        x_mean = x.mean(axis=0)
        x = x - x_mean
        mask = observed[rows]
        w = (file_weight[rows] / mask.sum(axis=1))[:, None] * mask
        w = w / w.sum()
        target = y[rows]
        rng = np.random.default_rng(seed)
        params = {"W": rng.normal(0, 0.01, (x.shape[1], MF_DIMS)), "V": rng.normal(0, 0.1, (MF_DIMS, len(models))),
                  "b": (w * target).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-12)}
        moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
        for step in range(1, MF_STEPS + 1):
            z = x @ params["W"]
            error = (z @ params["V"] + params["b"] - target) * w  # d loss / d prediction (up to 2)
            grads = {"V": z.T @ error + MF_L2_V * params["V"], "W": x.T @ (error @ params["V"].T) + MF_L2_W * params["W"],
                     "b": error.sum(axis=0)}
            for k, g in grads.items():
                m1, m2 = moments[k]
                m1 *= 0.9
                m1 += 0.1 * g
                m2 *= 0.999
                m2 += 0.001 * g * g
                params[k] -= MF_RATE * (m1 / (1 - 0.9 ** step)) / (np.sqrt(m2 / (1 - 0.999 ** step)) + 1e-8)
        pairs = np.unique(pair[rows], axis=0)
        pair_weight = np.array([file_weight[rows][(pair[rows] == p).all(axis=1)].sum() for p in pairs])
        direction = sum(pw * (params["V"][:, s] - params["V"][:, wk]) for pw, (s, wk) in zip(pair_weight, pairs, strict=True))
        direction = direction / pair_weight.sum()
        projection = params["W"] @ direction

        def score(target_rows: np.ndarray) -> np.ndarray:
            return (_design(f, target_rows, mean, scale) - x_mean) @ projection

        return score

    return fit


def _strong_of(s: Sample) -> str:
    from orchestrator.router_training.data import STRONG
    return _reference(s, s.strong, STRONG, best=True)


def _weak_of(s: Sample) -> str:
    from orchestrator.router_training.data import WEAK
    return _reference(s, s.weak, WEAK, best=False)


_PAIRS: dict[str, tuple[str, str]] = {}


def _reference(s: Sample, value: float, default: str, best: bool) -> str:
    pair = _PAIRS.get(s.source)
    if pair is None:
        return default
    return pair[0] if best else pair[1]


def set_pairs(directory: Path) -> None:
    """Each file's strong and weak model, as data.load_training_file takes them."""
    from orchestrator.router_training.data import _lines, strong_and_weak, training_files
    for path in training_files(directory):
        _PAIRS[path.name.split(".")[0]] = strong_and_weak(_lines(path))


# --- hashed character n-grams -------------------------------------------------------------

NGRAM_BITS, NGRAM_SIZES, NGRAM_PENALTY = 18, (3, 4, 5), float(os.environ.get("NGRAM_PENALTY", "30"))


def _ngrams(text: bytes) -> np.ndarray:
    data = np.frombuffer(text, dtype=np.uint8).astype(np.uint64)
    found = []
    for n in NGRAM_SIZES:
        if len(data) < n:
            continue
        h = np.full(len(data) - n + 1, np.uint64(n))
        for j in range(n):
            h = h * np.uint64(1_000_003) + data[j:len(data) - n + 1 + j]
        found.append(h % np.uint64(1 << NGRAM_BITS))
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


def ngram_matrix(readings) -> object:
    from scipy import sparse
    blocks = []
    for window in ("words", "last_words"):
        rows, cols = [], []
        for i, r in enumerate(readings):
            grams = _ngrams(b" ".join(getattr(r, window)).translate(_FOLD))
            rows.append(np.full(len(grams), i))
            cols.append(grams.astype(np.int64))
        r_, c_ = np.concatenate(rows), np.concatenate(cols)
        values = np.ones(len(r_))
        counts = np.bincount(r_, minlength=len(readings)).astype(float)
        values /= np.sqrt(np.maximum(counts[r_], 1))
        blocks.append(sparse.csr_matrix((values, (r_, c_)), shape=(len(readings), 1 << NGRAM_BITS)))
    return sparse.hstack(blocks).tocsr()


def ngram_fitter(samples: Sequence[Sample], f: Features, grams) -> Fitter:
    from scipy import sparse
    from scipy.sparse.linalg import LinearOperator, cg
    y, file_weight = targets(samples)[:, 0], source_weights(samples)

    def fit(rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        mean, scale = f.scalars[rows].mean(axis=0), f.scalars[rows].std(axis=0)
        scale[scale == 0] = 1.0
        dense = _design(f, rows, mean, scale)
        x = sparse.hstack([sparse.csr_matrix(dense), grams[rows]]).tocsr()
        w = file_weight[rows]
        x_mean = np.asarray(x.T @ w).ravel() / w.sum()
        y_mean = w @ y[rows] / w.sum()
        dims = dense.shape[1]
        penalty = np.r_[np.full(dims - f.scalars.shape[1], RIDGE_PENALTY), np.ones(f.scalars.shape[1]),
                        np.full(x.shape[1] - dims, NGRAM_PENALTY)]

        def normal(v: np.ndarray) -> np.ndarray:
            u = x @ v - x_mean @ v
            return x.T @ (w * u) - x_mean * (w @ u) + penalty * v

        rhs = x.T @ (w * (y[rows] - y_mean)) - x_mean * (w @ (y[rows] - y_mean))
        operator = LinearOperator((x.shape[1], x.shape[1]), matvec=normal, dtype=float)
        coef, _ = cg(operator, rhs, maxiter=200, rtol=1e-6)

        def score(target_rows: np.ndarray) -> np.ndarray:
            xt = sparse.hstack([sparse.csr_matrix(_design(f, target_rows, mean, scale)), grams[target_rows]]).tocsr()
            return xt @ coef - x_mean @ coef + y_mean

        return score

    return fit


# --- gradient-boosted trees ---------------------------------------------------------------

def _tree_inputs(f: Features, last_projected: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.hstack([f.scalars[rows], f.projected[rows], last_projected[rows]])


def _trees(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_depth=3, min_samples_leaf=50,
                                         l2_regularization=1.0, early_stopping=False, random_state=seed)


def gbt_fitter(samples: Sequence[Sample], f: Features, last_projected: np.ndarray, stacked: bool,
               seed: int = SEED) -> Fitter:
    y, file_weight = targets(samples), source_weights(samples)

    def fit(rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        if not stacked:
            model = _trees(seed).fit(_tree_inputs(f, last_projected, rows), y[rows, 0], sample_weight=file_weight[rows])
            return lambda target_rows: model.predict(_tree_inputs(f, last_projected, target_rows))
        ridge = fit_ridge(f, y, file_weight, rows, RIDGE_PENALTY)
        inner_fold, residual = folds([samples[i] for i in rows], seed + 99), np.zeros(len(rows))
        for j in range(FOLDS):
            part = inner_fold == j
            inner = fit_ridge(f, y, file_weight, rows[~part], RIDGE_PENALTY)
            residual[part] = y[rows[part], 0] - inner.predict(f, rows[part])[:, 0]
        model = _trees(seed).fit(_tree_inputs(f, last_projected, rows), residual, sample_weight=file_weight[rows])
        return lambda target_rows: (ridge.predict(f, target_rows)[:, 0]
                                    + model.predict(_tree_inputs(f, last_projected, target_rows)))

    return fit


def _loaded():
    import pickle
    cache = Path(os.environ.get("ROUTING_FEATURES_CACHE", "")) if os.environ.get("ROUTING_FEATURES_CACHE") else None
    if cache is not None and cache.exists():  # a pickle of these four, to save a minute a run
        loaded = pickle.loads(cache.read_bytes())
        return loaded["samples"], loaded["readings"], loaded["f"], loaded["vectors"]
    from orchestrator.router_training.data import DEFAULT_DIR, load_training_set, training_files
    from orchestrator.router_training.training import features, reading_of, word_vectors
    samples = load_training_set(DEFAULT_DIR, training_files(DEFAULT_DIR))
    readings = [reading_of(s.turns) for s in samples]
    vectors = word_vectors(readings)
    f = features(vectors, readings)
    if cache is not None:
        cache.write_bytes(pickle.dumps({"samples": samples, "readings": readings, "f": f, "vectors": vectors}))
    return samples, readings, f, vectors


def _fitter(name: str, samples, readings, f, vectors) -> Fitter:
    if name == "mf":
        from orchestrator.router_training.data import DEFAULT_DIR
        set_pairs(DEFAULT_DIR)
        fitter = mf_fitter(samples, f)
    elif name == "ngrams":
        fitter = ngram_fitter(samples, f, ngram_matrix(readings))
    elif name in ("gbt", "gbt-stack"):
        from orchestrator.router_training.training import _window_vectors
        _, last_projected = _window_vectors(vectors, [r.last_words for r in readings])
        fitter = gbt_fitter(samples, f, last_projected, stacked=name == "gbt-stack")
    else:
        raise SystemExit(f"unknown variant {name}")
    return fitter


def screen(names: list[str]) -> str:
    from orchestrator.router_training.evaluation import apgr
    from orchestrator.router_training.training import evaluation_sets, out_of_fold
    samples, readings, f, vectors = _loaded()
    fold = folds(samples, SEED)
    columns = {"ridge (penalty 300)": out_of_fold(f, samples, RIDGE_PENALTY)[:, 0]}
    for name in names:
        fitter, scores = _fitter(name, samples, readings, f, vectors), np.zeros(len(samples))
        for k in range(FOLDS):
            scores[fold == k] = fitter(np.flatnonzero(fold != k))(np.flatnonzero(fold == k))
        columns[name] = scores
    lines = ["| set | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for set_name, rows in evaluation_sets(samples).items():
        picked = [samples[i] for i in rows]
        lines.append(f"| {set_name} | " + " | ".join(f"{apgr(c[rows], picked)[0]:.3f}" for c in columns.values()) + " |")
    return "\n".join(lines)


def run(name: str) -> None:
    samples, readings, f, vectors = _loaded()
    fitter = _fitter(name, samples, readings, f, vectors)
    scores, weights = nested(samples, f, fitter)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"scores": scores.tolist(),
                                                   "choices": [{"penalty": RIDGE_PENALTY if name != "mf" else float("nan"),
                                                                 "length_weight": w} for w in weights]}))


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2])
    elif sys.argv[1] == "screen":
        print(screen(sys.argv[2:]))
    else:
        print(table(sys.argv[2:]))
