"""N-FINDR: the k samples spanning the simplex of largest volume (Winter 1999).

The data are reduced to k-1 dimensions by PCA. A simplex with vertices y_1..y_k
has volume |det M| / (k-1)! with M = [[1 ... 1], [y_1 ... y_k]] (k x k). Replacing
vertex j by sample y scales the determinant by the j-th entry of M^-1 [1; y]
(Cramer's rule), so one product ``C = M^-1 [1; Y']`` gives the volume ratio of
every possible single swap, for all samples and vertices at once. We make the best
swap while it grows the volume and update C by the matching rank-one
(Sherman-Morrison) formula, O(k n) per swap; C is recomputed from scratch every
few swaps and before stopping, so rounding never decides convergence.

The PCA (:mod:`._projection`) costs more than the search; for tall data it is found by
subspace iteration, which depends only on the subspace the vertices are chosen in.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit

from ..errors import InputError
from ._base import UnmixingEstimator, check_matrix, check_n_components, check_random_state
from ._projection import pca_projection, reduce_to
from .abundance import METHODS, abundances
from .atgp import atgp

_REFRESH = 16  # swaps between exact recomputations of the swap-ratio matrix
_GROW = 1e-10  # a swap must grow the volume by this relative amount to count

def simplex_volume(points) -> float:
    """Volume of the simplex with vertices ``points`` (k, k-1) in k-1 dimensions.

    Units: those of the points to the power k-1.
    """
    P = np.asarray(points, dtype=np.float64)
    k = P.shape[0]
    if P.ndim != 2 or P.shape[1] != k - 1:
        raise InputError(f"a simplex in k-1 dimensions needs (k, k-1) vertices, got shape {P.shape}")
    M = np.vstack([np.ones(k), P.T])
    return abs(float(np.linalg.det(M))) / math.factorial(k - 1)


@njit(cache=True)
def _best_swap(C):
    """(vertex j, sample i) of the largest |C[j, i]|: the single swap that grows the volume most."""
    k, n = C.shape
    best, bj, bi = -1.0, 0, 0
    for j in range(k):
        for i in range(n):
            v = abs(C[j, i])
            if v > best:
                best, bj, bi = v, j, i
    return bj, bi, best


@njit(cache=True)
def _apply_swap(C, j, i):
    """Sherman-Morrison: column j of M replaced by sample i changes M^-1 Ya by a rank-one term."""
    k, n = C.shape
    u = C[:, i].copy()
    u[j] -= 1.0
    piv = C[j, i]
    for m in range(n):
        r = C[j, m] / piv
        if r != 0.0:
            for a in range(k):
                C[a, m] -= u[a] * r


def _swap_ratios(Ya, idx):
    """C = M^-1 Ya for the simplex with vertices Ya[:, idx], or None when it is degenerate."""
    M = Ya[:, idx]
    if np.linalg.cond(M) > 1e12:
        return None
    return _ratios(Ya, idx)


def _ratios(Ya, idx):
    # the k x k inverse times Ya is ~10x cheaper than a solve with n right-hand sides, and as
    # accurate for the well-conditioned M that volume-growing swaps keep
    return np.linalg.inv(Ya[:, idx]) @ Ya


def _initial(Ya, k, init, rng):
    n = Ya.shape[1]
    if init == "atgp":
        # ATGP on the reduced coordinates [1, y]: targets are affinely independent vertices, and
        # it costs O(n k^2) instead of a pass over all features
        try:
            idx = atgp(Ya.T, k)
        except InputError:
            idx = None
        C = None if idx is None else _swap_ratios(Ya, idx)
        if C is not None:
            return idx, C
    # random start; retry a few draws in case one happens to be flat
    for _ in range(50):
        idx = rng.choice(n, size=k, replace=False)
        C = _swap_ratios(Ya, idx)
        if C is not None:
            return idx, C
    raise InputError(f"the data do not span {k - 1} dimensions (every simplex of {k} samples is flat); "
                     "ask for fewer components")


def _as_matrix(X):
    """X as a float64 matrix; for a float64 ndarray the NaN/inf scan rides on the first pass (_reduce)."""
    if isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2 and X.size:
        return X
    return check_matrix(X, "X", allow_dask=False)


def nfindr(X, n_components: int, *, init: str = "atgp", max_iter: int = 1000, random_state=None,
           pca: str = "auto"):
    """Indices of the samples spanning the largest simplex (N-FINDR with best-swap updates).

    Parameters
    ----------
    X : array (n_samples, n_features)
        Data, one sample per row.
    n_components : int
        Number of endmembers k (simplex vertices).
    init : {"atgp", "random"}
        Starting vertices: ATGP targets in the reduced coordinates, or k distinct samples
        drawn with ``random_state``.
    max_iter : int
        Maximum number of vertex swaps.
    random_state : None, int or numpy Generator
    pca : {"auto", "exact", "iterative"}
        How the k-1 principal axes are found (see :func:`pca_projection`).

    Returns
    -------
    indices : ndarray (k,) of int
        Row indices of the vertices.
    volume : float
        Simplex volume in the k-1 leading principal components (data units ** (k-1)).
    n_iter : int
        Number of swaps made.
    mean, axes : ndarrays
        The PCA projection used (see :func:`pca_projection`).
    """
    X = _as_matrix(X)
    k = check_n_components(n_components, X.shape[0], X.shape[1])
    if init not in ("atgp", "random"):
        raise InputError(f"init must be 'atgp' or 'random', got {init!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise InputError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    rng = check_random_state(random_state)
    mean, axes, Y = reduce_to(X, k - 1, pca)
    # unit RMS coordinates make the degeneracy test (condition number) independent of data units
    spread = math.sqrt(float(np.einsum("ij,ij->", Y, Y)) / Y.size) if k > 1 else 1.0
    if not spread > 0:
        raise InputError(f"all samples are identical; the data do not span {k - 1} dimensions")
    Ya = np.empty((k, X.shape[0]))
    Ya[0] = 1.0
    Ya[1:] = Y.T
    Ya[1:] /= spread
    idx, C = _initial(Ya, k, init, rng)
    idx = np.array(idx, dtype=np.int64)
    n_iter = 0
    fresh = True
    while True:
        j, i, ratio = _best_swap(C)
        if ratio <= 1.0 + _GROW or n_iter >= max_iter:
            if fresh or n_iter >= max_iter:
                break
            C = _ratios(Ya, idx)  # confirm convergence on exact ratios
            fresh = True
            continue
        _apply_swap(C, j, i)
        idx[j] = i
        n_iter += 1
        fresh = False
        if n_iter % _REFRESH == 0:
            C = _ratios(Ya, idx)
            fresh = True
    volume = abs(float(np.linalg.det(Ya[:, idx]))) * spread ** (k - 1) / math.factorial(k - 1)
    return idx, volume, n_iter, mean, axes


class NFINDR(UnmixingEstimator):
    """N-FINDR endmember extraction.

    Parameters
    ----------
    n_components : int
        Number of endmembers.
    init : {"atgp", "random"}
        Initial vertices.
    max_iter : int
        Maximum number of vertex swaps.
    abundance : {"fcls", "nnls", "ucls", "sto"}
        Solver for ``abundances_`` and :meth:`transform`.
    random_state : None, int or numpy Generator
        Seed for ``init="random"``; results are identical for equal seeds.
    pca : {"auto", "exact", "iterative"}
        How the k-1 principal axes are found (see :func:`pca_projection`).

    Attributes
    ----------
    indices_ : ndarray (n_components,)
        Rows of X chosen as endmembers.
    components_ : ndarray (n_components, n_features)
        Those rows' spectra.
    abundances_ : ndarray (n_samples, n_components)
    volume_ : float
        Simplex volume in the fitted PCA space.
    n_iter_ : int
        Swaps made.
    mean_, axes_ : ndarray
        PCA projection used; :meth:`volume_of` measures other endmember sets in it.
    """

    def __init__(self, n_components: int, *, init: str = "atgp", max_iter: int = 1000,
                 abundance: str = "fcls", random_state=None, pca: str = "auto"):
        super().__init__(n_components, random_state=random_state)
        self.init = init
        self.pca = pca
        self.max_iter = max_iter
        self.abundance = abundance

    def _fit(self, X):
        if self.abundance not in METHODS:
            raise InputError(f"unknown abundance method {self.abundance!r}; choose one of {', '.join(METHODS)}")
        idx, vol, n_iter, mean, axes = nfindr(X, self.n_components, init=self.init, max_iter=self.max_iter,
                                              random_state=self.random_state, pca=self.pca)
        self.indices_, self.volume_, self.n_iter_, self.mean_, self.axes_ = idx, vol, n_iter, mean, axes
        E = X[idx].copy()
        return E, abundances(X, E, self.abundance)

    def _transform(self, X):
        return abundances(X, self.components_, self.abundance)

    def volume_of(self, endmembers) -> float:
        """Volume of the simplex spanned by ``endmembers`` (k, n_features) in the fitted PCA space."""
        self._check_fitted()
        E = check_matrix(endmembers, "endmembers", allow_dask=False)
        if E.shape != self.components_.shape:
            raise InputError(f"endmembers must have shape {self.components_.shape}, got {E.shape}")
        return simplex_volume((E - self.mean_) @ self.axes_)


__all__ = ["NFINDR", "nfindr", "simplex_volume", "pca_projection"]
