"""Window features, the number of phases, and unmixing for :func:`~.segment.segment_phases`.

Features: each window's FFT magnitude inside the band |k| <= k_max, divided by its sum
and square-rooted. Dividing by the sum removes contrast and thickness changes between
windows; the square root (the Hellinger embedding of a distribution) evens out the
weight of strong and weak Bragg peaks, so N-FINDR, k-means and NMF separate phases
and orientations rather than brightness. The methods that work on linear structure
(N-FINDR, k-means, Gaussian mixtures, PCA) run in the leading principal components of
those features, which keeps memory at (windows x ~16) whatever the window size; the
energy outside that subspace is kept per window so the residual (the defect map) is
still measured in the full feature space. NMF needs the non-negative features
themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..unmix import NFINDR, NMF, PCA, GaussianMixture, KMeans

METHODS = ("nfindr", "nmf", "pca", "kmeans", "gmm")
_SCORE_DIMS = 16            # principal components the score-space methods work in
_DASK_FEATURES = 128 << 20  # feature matrices larger than this are reduced by incremental PCA in row blocks
_MAX_AUTO = 6               # largest number of phases the automatic choice considers
_MIN_SILHOUETTE = 0.5       # below this, no split into k >= 2 phases is distinct enough: one phase
_PURE = 0.8                 # a window is a pure example of a component above this abundance
_CHOOSE_SAMPLES = 20_000    # windows the choice of the number of phases looks at (a seeded subset)


@dataclass
class Unmixed:
    """Per-window unmixing outcome.

    abundance : (n, k) float; fractions summing to one for nfindr/nmf/kmeans/gmm, PCA scores for pca
    labels : (n,) int, the phase of each window
    residual : (n,) float, feature-space distance of each window from its unmixed model
    components : (k, n_features) float, the endmember / centroid / basis spectra
    """

    abundance: np.ndarray
    labels: np.ndarray
    residual: np.ndarray
    components: np.ndarray


def window_features(stack) -> np.ndarray:
    """(n_windows, n_features) float32: sqrt of each window's magnitude spectrum normalised to unit sum.

    ``stack`` is a magnitude sliding-FFT DataArray (wy, wx, ky, kx), numpy- or dask-backed;
    a dask stack is computed block by block, so only the features are ever in memory.
    """
    data = stack.data
    nwy, nwx, nky, nkx = data.shape
    out = np.empty((nwy * nwx, nky * nkx), dtype=np.float32)
    if hasattr(data, "dask"):
        data = data.rechunk({1: -1, 2: -1, 3: -1})
        row = 0
        for block in data.to_delayed()[:, 0, 0, 0]:
            values = np.asarray(block.compute())
            n = values.shape[0] * nwx
            out[row:row + n] = _normalise(values.reshape(n, -1))
            row += n
    else:
        out[:] = _normalise(np.asarray(data).reshape(nwy * nwx, -1))
    return out


def _normalise(m: np.ndarray) -> np.ndarray:
    total = m.sum(axis=1, keepdims=True, dtype=np.float64)
    if not np.all(total > 0):
        raise InputError("a window has an all-zero spectrum (a flat patch of the image); crop or fill it first")
    return np.sqrt(m / total).astype(np.float32)


@dataclass
class Scores:
    """Leading principal components of the features and each window's energy outside them."""

    scores: np.ndarray      # (n, d) float64
    outside: np.ndarray     # (n,) float64: squared distance from the PCA subspace
    pca: PCA


def principal_scores(features: np.ndarray, random_state) -> Scores:
    """Project the features on their leading principal axes (incremental over row blocks when large)."""
    n, f = features.shape
    d = int(min(_SCORE_DIMS, n - 1, f))
    if d < 1:
        raise InputError(f"{n} window(s) are too few to unmix; use a smaller step or window")
    if features.nbytes > _DASK_FEATURES:
        import dask.array as dsa

        rows = max(d, (32 << 20) // (4 * f))
        X = dsa.from_array(features, chunks=(rows, f))
        pca = PCA(d, random_state=random_state).fit(X)
        scores = np.asarray(pca.abundances_.compute())
    else:
        pca = PCA(d, random_state=random_state).fit(features)
        scores = np.asarray(pca.abundances_)
    centred = np.empty(n)
    for start in range(0, n, 65536):  # row blocks: no float64 copy of the whole matrix
        block = features[start:start + 65536].astype(np.float64) - pca.mean_
        centred[start:start + 65536] = np.einsum("ij,ij->i", block, block)
    outside = np.maximum(centred - np.einsum("ij,ij->i", scores, scores), 0.0)
    return Scores(scores, outside, pca)


def choose_n_components(sc: Scores, random_state, max_components: int = _MAX_AUTO) -> tuple[int, list[dict]]:
    """The number of phases: the k in 2..max_components whose k-means split has the highest silhouette.

    A candidate k counts only if each of its N-FINDR endmembers is the majority (abundance >=
    0.8) of at least max(5, 2 %) of the windows, so a k that only isolates a handful of
    boundary or noise windows is not a phase. Large images are judged on a seeded random
    subset of 20,000 windows. When no candidate reaches a mean silhouette
    of 0.5 the image is taken as one phase. Returns k and the criterion per candidate.
    """
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(_seed(random_state))
    seed = int(rng.integers(2**31 - 1))
    S = sc.scores
    if S.shape[0] > _CHOOSE_SAMPLES:  # the criterion is a fraction and a mean: a random subset estimates both
        S = S[np.sort(rng.choice(S.shape[0], _CHOOSE_SAMPLES, replace=False))]
    n = S.shape[0]
    rows = []
    best_k, best = 1, _MIN_SILHOUETTE
    for k in range(2, min(max_components, n - 1, S.shape[1] + 1) + 1):
        A = NFINDR(k, random_state=random_state).fit(S).abundances_
        pure = int(np.min(np.sum(A >= _PURE, axis=0)))
        labels = np.argmax(KMeans(k, random_state=random_state).fit(S).abundances_, axis=1)
        sil = float(silhouette_score(S, labels, sample_size=min(n, 5000), random_state=seed)) \
            if len(np.unique(labels)) > 1 else -1.0
        ok = pure >= max(5, 0.02 * n)
        rows.append({"k": k, "silhouette": sil, "min_pure_windows": pure, "eligible": ok})
        if ok and sil > best:
            best_k, best = k, sil
    return best_k, rows


def _seed(random_state) -> int | None:
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return random_state
    return int(random_state.integers(2**31 - 1))


def unmix(features: np.ndarray, sc: Scores | None, method: str, k: int, random_state) -> Unmixed:
    """Abundances, labels and residuals of every window with the named method."""
    if method == "nmf":
        return _nmf(features, k, random_state)
    if sc is None:
        raise InputError(f"method {method!r} needs principal scores")
    S = sc.scores
    n = S.shape[0]
    if k == 1:  # one phase: every window is all of it; the residual is the distance from the mean spectrum
        ones = np.ones((n, 1))
        return Unmixed(ones, np.zeros(n, np.int64), np.sqrt(np.einsum("ij,ij->i", S, S) + sc.outside),
                       sc.pca.mean_[None, :])
    if method == "nfindr":
        est = NFINDR(k, random_state=random_state).fit(S)
        A = np.asarray(est.abundances_)
        inside = S - A @ est.components_
        labels = np.argmax(A, axis=1)
        comps = sc.pca.inverse_transform(est.components_)
    elif method in ("kmeans", "gmm"):
        est = (KMeans(k, random_state=random_state) if method == "kmeans"
               else GaussianMixture(k, covariance_type="tied", random_state=random_state)).fit(S)
        A = np.asarray(est.abundances_)
        labels = np.argmax(A, axis=1)
        inside = S - est.components_[labels]
        comps = sc.pca.inverse_transform(est.components_)
    elif method == "pca":
        A = S[:, :k].copy()
        labels = np.argmax(np.asarray(KMeans(k, random_state=random_state).fit(A).abundances_), axis=1)
        inside = S[:, k:]
        comps = sc.pca.components_[:k]
    else:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    residual = np.sqrt(np.einsum("ij,ij->i", inside, inside) + sc.outside)
    return Unmixed(A, labels.astype(np.int64), residual, np.asarray(comps))


def _nmf(features: np.ndarray, k: int, random_state) -> Unmixed:
    est = NMF(k, random_state=random_state, max_iter=1000).fit(features)
    W = np.asarray(est.abundances_)
    H = est.components_
    model = W @ H
    residual = np.sqrt(np.einsum("ij,ij->i", features - model, features - model))
    # NMF's scale is shared between W and H: express each window as fractions of unit-norm components
    norms = np.linalg.norm(H, axis=1)
    F = W * norms
    total = F.sum(axis=1, keepdims=True)
    F = np.divide(F, total, out=np.full_like(F, 1.0 / k), where=total > 0)
    return Unmixed(F, np.argmax(F, axis=1).astype(np.int64), residual, H / np.where(norms > 0, norms, 1)[:, None])


def robust_z(values: np.ndarray) -> np.ndarray:
    """(v - median) / (1.4826 MAD): how many robust standard deviations each value lies above the typical one."""
    med = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - med)))
    if not mad > 0:
        return np.zeros_like(values, dtype=np.float64)
    return (values - med) / mad


__all__ = ["METHODS", "Scores", "Unmixed", "choose_n_components", "principal_scores", "robust_z", "unmix",
           "window_features"]
