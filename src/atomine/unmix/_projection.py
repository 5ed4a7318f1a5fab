"""The k-1 leading principal axes for N-FINDR: subspace iteration on tall data, the exact eigenproblem otherwise.

The PCA costs more than the search. Volume ratios, and so the chosen vertices, do not
depend on the basis of the reduced space, only on the subspace, so for tall data we
find the k-1 leading principal axes by subspace iteration started from the PCA of a
strided subsample: each pass over X (numba, one read of each row) gives the reduced
coordinates X_c V and the next iterate X_c' X_c V. It stops when the estimated error of
the reduced coordinates, relative to their spread, is below 1e-6 (on 30 dB mixtures: two
passes, ~4x cheaper than the covariance). When the gap between the k-1-th and k-th
eigenvalues is small, the iteration is slow and we solve the exact eigenproblem instead.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from numba import njit, prange

from ..errors import InputError
from ._base import check_matrix


_SUBSAMPLE = 256  # rows of the subsample whose PCA starts the subspace iteration
_MAX_PASSES = 5  # passes over X before the iterative PCA gives up and solves exactly
_SLOW = 0.1  # contraction per pass above which the iteration is abandoned for the exact PCA
_TOL = 1e-6  # estimated relative error of the reduced coordinates at which the iteration stops
_CHUNKS = 16  # fixed row chunks for the parallel pass: same sums (bitwise) for any thread count
_FASTMATH = {"reassoc", "contract"}  # vectorised sums; NaN and inf still propagate


def _exact_axes(X, mean, n_dims: int):
    """The leading ``n_dims`` principal axes of X (mean ``mean``) from the full eigenproblem."""
    n, f = X.shape
    if n_dims == 0:
        return np.zeros((f, 0))
    if f <= n:
        # covariance as X'X - n m m': no centred copy of X; loses nothing in float64 unless the
        # mean exceeds the spread by ~1e6 (BLAS syrk would halve the flops but is slower in
        # OpenBLAS for tall-skinny X)
        S = X.T @ X
        S -= n * np.outer(mean, mean)
        _, vecs = scipy.linalg.eigh(S, subset_by_index=[f - n_dims, f - 1])
        axes = vecs[:, ::-1]
    else:  # more features than samples: the thin SVD is cheaper than an f x f covariance
        _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
        axes = vt[:n_dims].T
    return np.ascontiguousarray(axes)


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _power_pass(X, V, Z, W):
    """Z = X V' and, per row chunk c, W[c] = [1, Z_c]' X_c (column sums, then Z' X).

    One read of each row serves both products; chunk partial sums are added by the caller.
    """
    n, f = X.shape
    l = V.shape[0]
    nc = W.shape[0]
    for c in prange(nc):
        for r in range(c * n // nc, (c + 1) * n // nc):
            for a in range(l):
                acc = 0.0
                for j in range(f):
                    acc += X[r, j] * V[a, j]
                Z[r, a] = acc
            for j in range(f):
                W[c, 0, j] += X[r, j]
            for a in range(l):
                za = Z[r, a]
                for j in range(f):
                    W[c, a + 1, j] += za * X[r, j]


def _orth_rows(W):
    """Orthonormal rows spanning the rows of W (l x f), l << f; LinAlgError when they are dependent."""
    # unit rows first, so the eigenvalue spread of the iterate does not enter the conditioning;
    # then Cholesky QR twice, the second sweep restoring orthogonality to rounding
    W = W / np.linalg.norm(W, axis=1, keepdims=True)
    for _ in range(2):
        W = np.linalg.inv(np.linalg.cholesky(W @ W.T)) @ W
    return W


def _start_axes(X, n_dims: int):
    """Leading axes (rows, n_dims x f) of a strided subsample, or None for non-finite data."""
    step = max(1, X.shape[0] // _SUBSAMPLE)
    Xs = X[::step]
    if not np.isfinite(Xs).all():
        return None
    Xs = Xs - Xs.mean(axis=0)
    # a few block power steps on the subsample covariance: only a start, accuracy comes later
    V = np.random.default_rng(0).standard_normal((n_dims, X.shape[1]))
    try:
        for _ in range(3):
            V = _orth_rows((V @ Xs.T) @ Xs)
    except np.linalg.LinAlgError:  # the subsample spans fewer dimensions: no start
        return None
    return V


def _iterative_pca(X, n_dims: int):
    """Mean, axes (f, n_dims) and centred coordinates (n, n_dims) by subspace iteration, or None.

    None means: not converged fast enough (small eigen-gap), or non-finite data; the caller
    then solves exactly (and reports bad values).
    """
    n, f = X.shape
    V = _start_axes(X, n_dims)
    if V is None:
        return None
    Z = np.empty((n, n_dims))
    W = np.zeros((_CHUNKS, n_dims + 1, f))
    t_prev = None
    for _ in range(_MAX_PASSES):
        W[:] = 0.0
        _power_pass(X, V, Z, W)
        Wsum = W.sum(axis=0)
        colsum = Wsum[0]
        if not np.isfinite(Wsum).all():
            return None
        mean = colsum / n
        mV = V @ mean
        # centring after the fact: X_c V' = Z - 1 (V m)', and Z_c' X_c = Z' X - (V m) s'
        Wc = Wsum[1:] - np.outer(mV, colsum)
        H = Wc @ V.T  # V X_c' X_c V', symmetric
        H = 0.5 * (H + H.T)
        R = Wc - H @ V  # the part of X_c' X_c V' outside span(V)
        try:
            t = np.linalg.norm(np.linalg.solve(H, R), 2)  # tan of the angle to the next iterate
        except np.linalg.LinAlgError:
            return None
        if not np.isfinite(t):
            return None
        # the coordinates err by ~ t sqrt(rho) relative, rho = lambda_{k}/lambda_{k-1}, the
        # contraction per pass, measured as the ratio of successive angles
        rho = 1.0 if t_prev is None or t_prev == 0 else min(1.0, t / t_prev)
        if t == 0 or t * math.sqrt(rho) <= _TOL:
            Z -= mV
            vals, Q = np.linalg.eigh(H)
            Q = Q[:, ::-1]
            return mean, np.ascontiguousarray(V.T @ Q), Z @ Q
        if t_prev is not None and rho > _SLOW:
            return None
        t_prev = t
        try:
            V = _orth_rows(Wc)
        except np.linalg.LinAlgError:
            return None
    return None


def reduce_to(X, n_dims: int, method: str):
    """Mean, axes (f, n_dims) and centred reduced coordinates (n, n_dims) of X."""
    n, f = X.shape
    if method not in ("auto", "exact", "iterative"):
        raise InputError(f"pca must be 'auto', 'exact' or 'iterative', got {method!r}")
    # the iteration pays off when the covariance (n f^2) costs several passes (n f n_dims)
    if n_dims > 0 and method != "exact" and (method == "iterative" or (f >= 8 * n_dims and n >= 4 * f)):
        out = _iterative_pca(np.ascontiguousarray(X), n_dims)
        if out is not None:
            return out
    mean = X.mean(axis=0)
    if not np.isfinite(mean).all():  # NaN or inf somewhere: let the shared check name it
        check_matrix(X, "X", allow_dask=False)
        raise InputError("X is too large in magnitude for a covariance in float64; rescale it")
    axes = _exact_axes(X, mean, n_dims)
    return mean, axes, X @ axes - mean @ axes


def pca_projection(X, n_dims: int, *, method: str = "auto"):
    """Mean and the leading ``n_dims`` principal axes of X.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    n_dims : int
    method : {"auto", "exact", "iterative"}
        "exact" solves the covariance (or thin SVD) eigenproblem; "iterative" uses subspace
        iteration (see the module notes) and falls back to "exact" when it converges slowly;
        "auto" iterates only for tall data with many more features than ``n_dims``.

    Returns
    -------
    mean : ndarray (n_features,)
    axes : ndarray (n_features, n_dims), orthonormal columns, largest variance first
    """
    mean, axes, _ = reduce_to(np.asarray(X, dtype=np.float64), n_dims, method)
    return mean, axes


__all__ = ["pca_projection", "reduce_to"]
