"""Abundances of known endmembers: unconstrained, sum-to-one, non-negative and fully constrained least squares.

Every solver takes data X (n_samples, n_features) and endmembers E (k, n_features) and
returns abundances A (n_samples, k) minimising ``||x_i - A_i @ E||`` per sample under

- ``ucls``: no constraint (pseudo-inverse projection);
- ``sum_to_one_ls``: ``sum(A_i) == 1`` (closed form);
- ``nnls``: ``A_i >= 0``;
- ``fcls``: ``A_i >= 0`` and ``sum(A_i) == 1`` (the abundance simplex).

The constrained solvers reduce each pixel to the k x k Gram problem
``min 1/2 a'Ga - b'a`` with ``G = E E'`` and ``b = E x`` (one BLAS product for all
pixels), then run an exact primal active-set method per pixel inside numba: the
optimum is found in a finite number of equality-constrained solves, so the answer
is exact to rounding, not to a penalty weight (the Heinz-Chang augmented matrix
with a large delta only approximates the sum-to-one constraint).

Dask arrays are processed with ``map_blocks`` over row blocks; the result is lazy.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit, prange

from ..errors import InputError
from ._base import check_matrix, is_dask

METHODS = ("fcls", "nnls", "ucls", "sto")


# ----------------------------------------------------------------------------- checks
_NAN_MESSAGE = "X holds NaN or inf values; remove or fill them first"


def _check_inputs(X, E):
    # X's NaN scan is done on the (n, k) products instead: one pass over X less
    X = check_matrix(X, "X", check_finite=False)
    E = check_matrix(E, "endmembers E", allow_dask=False)
    if E.shape[1] != X.shape[1]:
        raise InputError(f"endmembers have {E.shape[1]} features but X has {X.shape[1]}; "
                         "give E as (n_components, n_features) on the same feature axis as X")
    return X, E


def _blockwise(X, E, solve):
    """Apply ``solve(block, E)`` to all rows of X: directly, or per row block for dask."""
    if not is_dask(X):
        return solve(X, E)
    k = E.shape[0]
    X = X.rechunk({1: -1})  # each block needs every feature of its rows

    def _block(blk):
        return solve(np.asarray(blk, dtype=np.float64), E)  # the solvers find NaN in their products

    return X.map_blocks(_block, chunks=(X.chunks[0], (k,)), dtype=np.float64)


# ----------------------------------------------------------------------------- closed forms
def _finite_rows(A):
    if not np.isfinite(A).all():
        raise InputError(_NAN_MESSAGE)
    return A


def _ucls_np(X, E):
    # x ~ E' a  =>  a = pinv(E') x for every row at once: A = X pinv(E)
    return _finite_rows(X @ np.linalg.pinv(E))


def _sto_np(X, E):
    A = _ucls_np(X, E)
    G = E @ E.T
    g1 = np.linalg.pinv(G) @ np.ones(E.shape[0])
    denom = g1.sum()
    if not np.isfinite(denom) or abs(denom) < 1e-300:
        raise InputError("endmembers are degenerate (their Gram matrix is singular); remove duplicates")
    # Lagrange correction that moves the unconstrained solution onto sum(a) == 1 in the G metric
    return A - np.outer(A.sum(axis=1) - 1.0, g1 / denom)


def ucls(X, E):
    """Unconstrained least-squares abundances.

    Parameters
    ----------
    X : array (n_samples, n_features) or dask array
        Data, one sample (pixel, window) per row.
    E : array (k, n_features)
        Endmember spectra, one per row.

    Returns
    -------
    A : ndarray (n_samples, k), float64 (dask array for dask input)
        Minimum-norm least-squares abundances.
    """
    X, E = _check_inputs(X, E)
    return _blockwise(X, E, _ucls_np)


def sum_to_one_ls(X, E):
    """Least-squares abundances constrained to sum to one (no sign constraint).

    Parameters and returns as :func:`ucls`; each row of the result sums to 1.
    """
    X, E = _check_inputs(X, E)
    return _blockwise(X, E, _sto_np)


# ----------------------------------------------------------------------------- active set (numba)
@njit(cache=True)
def _solve_small(A, rhs, n, scale):
    """Solve A[:n,:n] z = rhs[:n] by Gaussian elimination with partial pivoting, in place.

    A pivot below ``1e-13 * scale`` is bumped to that size, which regularises the
    (rare) singular subproblems of rank-deficient endmember sets instead of failing.
    """
    tiny = 1e-13 * scale
    for c in range(n):
        p = c
        best = abs(A[c, c])
        for r in range(c + 1, n):
            if abs(A[r, c]) > best:
                best = abs(A[r, c])
                p = r
        if p != c:
            for j in range(n):
                t = A[c, j]
                A[c, j] = A[p, j]
                A[p, j] = t
            t = rhs[c]
            rhs[c] = rhs[p]
            rhs[p] = t
        if abs(A[c, c]) < tiny:
            A[c, c] = tiny if A[c, c] >= 0 else -tiny
        for r in range(c + 1, n):
            f = A[r, c] / A[c, c]
            if f != 0.0:
                for j in range(c, n):
                    A[r, j] -= f * A[c, j]
                rhs[r] -= f * rhs[c]
    for c in range(n - 1, -1, -1):
        s = rhs[c]
        for j in range(c + 1, n):
            s -= A[c, j] * rhs[j]
        rhs[c] = s / A[c, c]


@njit(cache=True)
def _active_set(G, b, sum_to_one, max_iter, x, free, idx, M, z, grad):
    """Exact minimiser of 1/2 x'Gx - b'x over x >= 0 (and sum(x) == 1 when ``sum_to_one``).

    Primal active-set method: keep a feasible x and a set of coordinates fixed at 0;
    solve the equality-constrained problem on the free coordinates; step towards it
    until a coordinate hits 0 (fix it), or, at the subproblem optimum, free the fixed
    coordinate with the most negative Lagrange multiplier. Stops when all multipliers
    are non-negative (KKT conditions hold). Writes the solution into ``x``; returns the
    number of iterations. ``free``, ``idx`` (k), ``M`` (k+1, k+1), ``z`` (k+1) and ``grad`` (k) are
    workspace, allocated once per block of pixels by the caller (allocation per pixel cost more
    than the solve).
    """
    k = G.shape[0]
    scale = 0.0
    for i in range(k):
        scale = max(scale, abs(G[i, i]))
    if scale == 0.0:
        scale = 1.0
    tol = 1e-12 * scale
    for i in range(k):
        free[i] = False
    if sum_to_one:
        for i in range(k):  # centre of the simplex: feasible, everything free
            x[i] = 1.0 / k
            free[i] = True
    else:
        for i in range(k):  # origin: feasible, everything fixed
            x[i] = 0.0
    it = 0
    need_solve = sum_to_one  # NNLS starts at the optimum of its (empty) subproblem
    while it < max_iter:
        it += 1
        if need_solve:
            m = 0
            for i in range(k):
                if free[i]:
                    idx[m] = i
                    m += 1
            n = m + 1 if sum_to_one else m
            for r in range(m):
                for c in range(m):
                    M[r, c] = G[idx[r], idx[c]]
                z[r] = b[idx[r]]
            if sum_to_one:
                for r in range(m):
                    M[r, m] = 1.0
                    M[m, r] = 1.0
                M[m, m] = 0.0
                z[m] = 1.0
            _solve_small(M, z, n, scale)
            # step from x towards z, stopping where the first free coordinate reaches 0
            alpha = 1.0
            block = -1
            for r in range(m):
                if z[r] <= 0.0:
                    xi = x[idx[r]]
                    a = xi / (xi - z[r]) if xi - z[r] > 0.0 else 0.0
                    if a < alpha:
                        alpha = a
                        block = r
            if block < 0:
                for i in range(k):
                    x[i] = 0.0
                for r in range(m):
                    x[idx[r]] = z[r]
            else:
                for i in range(k):
                    if not free[i]:
                        x[i] = 0.0
                for r in range(m):
                    x[idx[r]] += alpha * (z[r] - x[idx[r]])
                x[idx[block]] = 0.0
                free[idx[block]] = False
                for r in range(m):  # coordinates that reached 0 together with the blocking one
                    if x[idx[r]] <= 0.0:
                        x[idx[r]] = 0.0
                        free[idx[r]] = False
                if sum_to_one:  # re-normalise rounding drift so the iterate stays feasible
                    s = 0.0
                    for i in range(k):
                        s += x[i]
                    for i in range(k):
                        x[i] /= s
                continue  # solve again on the smaller free set
        need_solve = True
        # at the subproblem optimum: check the multipliers of the fixed coordinates
        for i in range(k):
            s = -b[i]
            for j in range(k):
                s += G[i, j] * x[j]
            grad[i] = s
        nu = 0.0
        if sum_to_one:  # multiplier of sum(x) == 1, from the free coordinates (their gradients agree)
            cnt = 0
            for i in range(k):
                if free[i]:
                    nu += grad[i]
                    cnt += 1
            nu /= max(cnt, 1)
        worst = -tol
        enter = -1
        for i in range(k):
            if not free[i]:
                lam = grad[i] - nu
                if lam < worst:
                    worst = lam
                    enter = i
        if enter < 0:
            return it
        free[enter] = True
    return -1


@njit(parallel=True, cache=True)
def _active_set_all(G, B, sum_to_one, max_iter):
    n, k = B.shape
    out = np.empty((n, k))
    iters = np.empty(n, dtype=np.int64)
    block = 256
    for c in prange((n + block - 1) // block):
        free = np.empty(k, dtype=np.bool_)
        idx = np.empty(k, dtype=np.int64)
        M = np.empty((k + 1, k + 1))
        z = np.empty(k + 1)
        grad = np.empty(k)
        for p in range(c * block, min(n, (c + 1) * block)):
            iters[p] = _active_set(G, B[p], sum_to_one, max_iter, out[p], free, idx, M, z, grad)
    return out, iters


def solve_gram(G, B, sum_to_one: bool, *, stacklevel: int = 2):
    """Exact rows a of ``min 1/2 a'Ga - b'a`` over a >= 0 (and sum(a) == 1 when ``sum_to_one``).

    The Gram form of NNLS / FCLS: ``G = E E'`` (k, k) and ``B = X E'`` (n, k) are all the
    solver needs, so callers that already hold these products (MCR-ALS) skip X entirely.

    Parameters
    ----------
    G : array (k, k)
        Gram matrix of the endmembers (symmetric positive semi-definite).
    B : array (n, k)
        Products of each sample with the endmembers.
    sum_to_one : bool
        Add the closure constraint (FCLS) to non-negativity (NNLS).

    Returns
    -------
    A : ndarray (n, k)
    """
    G = np.asarray(G, dtype=np.float64)
    # Scale the Gram problem to O(1): the minimiser is unchanged, and the sum-to-one row of the
    # KKT system (ones) then meets G on the same scale. Unscaled, spectra in counts (G ~ 1e8)
    # made the closure pivot fall below the singularity guard, which bent the constraint.
    s = float(np.abs(np.diag(G)).max()) if G.size else 1.0
    s = s if s > 0 and np.isfinite(s) else 1.0
    out, iters = _active_set_all(np.ascontiguousarray(G / s), np.ascontiguousarray(np.asarray(B, dtype=np.float64) / s),
                                 sum_to_one, 50 * G.shape[0] + 50)
    _warn_stuck(iters, sum_to_one, stacklevel + 2)
    return out


def _warn_stuck(iters, sum_to_one: bool, stacklevel: int) -> None:
    stuck = int((iters < 0).sum())
    if stuck:  # the method is finite in exact arithmetic; rounding on degenerate endmembers can make it cycle
        warnings.warn(f"{'FCLS' if sum_to_one else 'NNLS'} did not converge on {stuck} of {len(iters)} samples "
                      "(nearly collinear endmembers?); their abundances are feasible but may not be optimal",
                      RuntimeWarning, stacklevel=stacklevel)


@njit(parallel=True, cache=True)
def _project_and_solve(X, Es, G, sum_to_one, max_iter):
    """Per pixel: b = Es x (the Gram right-hand side), then the active set; one parallel pass over X.

    Fusing the product with the solve keeps BLAS's threads out of the way of numba's (on two
    cores the two pools fought and doubled the time) and reads X once. Rows whose products
    are not finite are flagged instead of solved.
    """
    n, m = X.shape
    k = Es.shape[0]
    out = np.zeros((n, k))
    iters = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=np.bool_)
    block = 256
    for c in prange((n + block - 1) // block):
        b = np.empty(k)
        free = np.empty(k, dtype=np.bool_)
        idx = np.empty(k, dtype=np.int64)
        M = np.empty((k + 1, k + 1))
        z = np.empty(k + 1)
        grad = np.empty(k)
        for p in range(c * block, min(n, (c + 1) * block)):
            finite = True
            for j in range(k):
                acc = 0.0
                for l in range(m):
                    acc += Es[j, l] * X[p, l]
                b[j] = acc
                if not np.isfinite(acc):
                    finite = False
            if finite:
                iters[p] = _active_set(G, b, sum_to_one, max_iter, out[p], free, idx, M, z, grad)
            else:
                bad[p] = True
    return out, iters, bad


def _constrained(X, E, sum_to_one):
    G = E @ E.T
    s = float(np.abs(np.diag(G)).max()) if G.size else 1.0  # the same O(1) scaling as solve_gram
    s = s if s > 0 and np.isfinite(s) else 1.0
    out, iters, bad = _project_and_solve(np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(E / s),
                                         np.ascontiguousarray(G / s), sum_to_one, 50 * E.shape[0] + 50)
    if bad.any():
        raise InputError(_NAN_MESSAGE)
    _warn_stuck(iters, sum_to_one, stacklevel=6)  # _warn_stuck, _constrained, _fcls_np, _blockwise, fcls, caller
    return out


def _nnls_np(X, E):
    return _constrained(X, E, False)


def _fcls_np(X, E):
    return _constrained(X, E, True)


def nnls(X, E):
    """Non-negative least-squares abundances (exact active set per sample, in parallel).

    Parameters and returns as :func:`ucls`; every abundance is >= 0.
    """
    X, E = _check_inputs(X, E)
    return _blockwise(X, E, _nnls_np)


def fcls(X, E):
    """Fully constrained least-squares abundances: non-negative and summing to one.

    Solves ``min ||x - E'a||^2`` over the simplex ``a >= 0, sum(a) = 1`` exactly for
    every sample (primal active set on the k x k Gram system, numba-parallel over samples).

    Parameters
    ----------
    X : array (n_samples, n_features) or dask array
        Data, one sample per row.
    E : array (k, n_features)
        Endmember spectra, one per row.

    Returns
    -------
    A : ndarray (n_samples, k), float64 (dask array for dask input)
        Abundances; every row is >= 0 and sums to 1.
    """
    X, E = _check_inputs(X, E)
    return _blockwise(X, E, _fcls_np)


_SOLVERS = {"fcls": fcls, "nnls": nnls, "ucls": ucls, "sto": sum_to_one_ls}


def abundances(X, E, method: str = "fcls"):
    """Abundances of endmembers E in data X by ``method``.

    Parameters
    ----------
    X : array (n_samples, n_features) or dask array
    E : array (k, n_features)
    method : {"fcls", "nnls", "ucls", "sto"}
        Fully constrained, non-negative, unconstrained, or sum-to-one least squares.

    Returns
    -------
    A : ndarray (n_samples, k)
    """
    try:
        solver = _SOLVERS[method]
    except (KeyError, TypeError):
        raise InputError(f"unknown abundance method {method!r}; choose one of {', '.join(METHODS)}") from None
    return solver(X, E)


__all__ = ["abundances", "fcls", "nnls", "ucls", "sum_to_one_ls", "solve_gram", "METHODS"]
