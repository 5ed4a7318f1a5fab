"""VCA: vertex component analysis (Nascimento & Dias 2005, IEEE TGRS 43, 898).

The data are projected onto a k-dimensional subspace; then k times, a random
direction orthogonal to the endmembers found so far is drawn and the sample with
the largest |projection| on it becomes the next endmember. A linear function over
the convex hull of the data peaks at a vertex, so with pure samples present every
pick is a pure sample.

Subspace choice follows the paper: at high estimated SNR the data are projected
onto the k leading singular vectors of the raw (uncentred) data and then scaled
projectively (each sample divided by its projection on the mean direction), which
maps every mixture onto the simplex plane; at low SNR onto the k-1 leading
principal components, with a constant k-th coordinate.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..errors import InputError
from ._base import UnmixingEstimator, check_matrix, check_n_components, check_random_state
from .abundance import METHODS, abundances


def _leading_axes(S, d):
    """The d leading eigenvectors of the symmetric matrix S (columns, largest first)."""
    f = S.shape[0]
    _, vecs = scipy.linalg.eigh(S, subset_by_index=[f - d, f - 1])
    return vecs[:, ::-1]


def estimate_snr(X, n_components: int) -> float:
    """SNR (dB) of X as seen by a k-dimensional signal subspace (Nascimento & Dias, eq. 13).

    Returns +inf for noiseless data (all power inside the subspace).
    """
    n, f = X.shape
    k = n_components
    mean = X.mean(axis=0)
    Xc = X - mean
    axes = _leading_axes(Xc.T @ Xc / n, k)
    p_y = float(np.einsum("ij,ij->", X, X)) / n
    proj = Xc @ axes
    p_x = float(np.einsum("ij,ij->", proj, proj)) / n + float(mean @ mean)
    signal, noise = p_x - k / f * p_y, p_y - p_x
    if noise <= 1e-14 * p_y:
        return float("inf")
    if signal <= 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))


def vca(X, n_components: int, *, snr: float | None = None, random_state=None) -> np.ndarray:
    """Indices of ``n_components`` endmember samples found by VCA.

    Parameters
    ----------
    X : array (n_samples, n_features)
        Data, one sample per row.
    n_components : int
        Number of endmembers k.
    snr : float, optional
        Signal-to-noise ratio in dB, deciding the projection; estimated from X when None.
    random_state : None, int or numpy Generator
        Seed of the random directions.

    Returns
    -------
    indices : ndarray (k,) of int
    """
    X = check_matrix(X, "X", allow_dask=False)
    n, f = X.shape
    k = check_n_components(n_components, n, f)
    if k > f:
        raise InputError(f"VCA needs n_components <= n_features ({f}), got {k}")
    rng = check_random_state(random_state)
    if k == 1:  # a 0-dimensional simplex: any sample is its vertex; take the largest, as ATGP does
        return np.array([int(np.argmax(np.einsum("ij,ij->i", X, X)))], dtype=np.int64)
    if snr is None:
        snr = estimate_snr(X, k)
    threshold = 15 + 10 * np.log10(k)
    if snr < threshold:  # noisy: centred PCA to k-1 dims plus a constant coordinate
        mean = X.mean(axis=0)
        Xc = X - mean
        proj = Xc @ _leading_axes(Xc.T @ Xc / n, k - 1)
        c = np.sqrt((proj ** 2).sum(axis=1).max())
        Y = np.hstack([proj, np.full((n, 1), c if c > 0 else 1.0)])
    else:  # clean: projective projection onto the simplex plane
        proj = X @ _leading_axes(X.T @ X / n, k)
        u = proj.mean(axis=0)
        denom = proj @ u
        if np.any(denom <= 1e-12 * np.abs(denom).max()):
            raise InputError("VCA's projective step needs data on one side of the origin "
                             "(e.g. non-negative spectra); pass a low snr to use the centred projection")
        Y = proj / denom[:, None]
    A = np.zeros((k, k))
    A[-1, 0] = 1.0
    indices = np.empty(k, dtype=np.int64)
    for t in range(k):
        w = rng.standard_normal(k)
        fdir = w - A @ (np.linalg.pinv(A) @ w)  # part of w orthogonal to the endmembers found so far
        fdir /= np.linalg.norm(fdir)
        v = np.abs(Y @ fdir)
        v[indices[:t]] = -np.inf  # numerically, a chosen vertex may not project to exactly 0
        indices[t] = int(np.argmax(v))
        A[:, t] = Y[indices[t]]
    return indices


class VCA(UnmixingEstimator):
    """Vertex component analysis as an estimator.

    Parameters
    ----------
    n_components : int
        Number of endmembers.
    snr : float, optional
        SNR in dB choosing the projection (estimated when None).
    abundance : {"fcls", "nnls", "ucls", "sto"}
        Solver for ``abundances_`` and :meth:`transform`.
    random_state : None, int or numpy Generator
        Seed of VCA's random directions; equal seeds give equal results.

    Attributes
    ----------
    indices_ : ndarray (n_components,)
    components_ : ndarray (n_components, n_features)
        The chosen samples' spectra.
    abundances_ : ndarray (n_samples, n_components)
    """

    def __init__(self, n_components: int, *, snr: float | None = None, abundance: str = "fcls",
                 random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.snr = snr
        self.abundance = abundance

    def _fit(self, X):
        if self.abundance not in METHODS:
            raise InputError(f"unknown abundance method {self.abundance!r}; choose one of {', '.join(METHODS)}")
        self.indices_ = vca(X, self.n_components, snr=self.snr, random_state=self.random_state)
        E = X[self.indices_].copy()
        return E, abundances(X, E, self.abundance)

    def _transform(self, X):
        return abundances(X, self.components_, self.abundance)


__all__ = ["VCA", "vca", "estimate_snr"]
