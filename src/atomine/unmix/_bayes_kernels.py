"""Numba kernels of the Bayesian unmixing sampler: random numbers, truncated normals, constrained Gibbs passes.

Random numbers come from a counter-based generator (the splitmix64 finaliser applied to a
key and a counter), not from numba's global generator: each pixel of each sweep gets its
own key, so draws do not depend on which thread handles which pixel and a seed gives the
same chain for any thread count.

Truncated normal draws use the exact rejection samplers of Robert (1995, Stat. Comput. 5,
121): normal or uniform proposals when the interval holds the mode, a uniform proposal on
narrow tail intervals and a translated exponential proposal on wide ones; each accepts with
probability above ~0.4 whatever the bounds, so no tail is ever drawn by inverting a CDF
that rounds to 0 or 1.

A Gaussian restricted to a polytope is sampled coordinate by coordinate in coordinates
where its covariance is the identity (Rodriguez-Yam, Davis & Scharf 2004, "Efficient Gibbs
sampling of truncated multivariate normal with application to constrained linear
regression"): without active constraints each pass is an exact independent draw, so
strongly correlated abundances do not slow the chain down.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_PI = 2.0 * math.pi


@njit(cache=True)
def _mix(x):
    """splitmix64 finaliser: a bijective scramble of a 64-bit word (uint64 arithmetic wraps)."""
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


@njit(cache=True)
def stream_key(seed, index):
    """Key of stream ``index`` (a pixel, a component) under the sweep's ``seed``."""
    return _mix(np.uint64(seed) ^ _mix(np.uint64(index) * _GOLDEN + _GOLDEN))


@njit(cache=True)
def _uniform(key, state):
    """Uniform on the open interval (0, 1) from (key, counter ``state[0]``); advances the counter."""
    c = state[0]
    state[0] = c + np.uint64(1)
    x = _mix(key + c * _GOLDEN)
    return ((x >> _S11) + np.uint64(1)) * (1.0 / 9007199254740994.0)


@njit(cache=True)
def _normal(key, state):
    """Standard normal (Box-Muller, one of the pair)."""
    u1 = _uniform(key, state)
    u2 = _uniform(key, state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(cache=True)
def _tail(a, b, key, state):
    """Standard normal truncated to [a, b] with 0 <= a < b (b may be inf)."""
    lam = 0.5 * (a + math.sqrt(a * a + 4.0))  # Robert's optimal exponential rate
    if (b - a) * lam < 1.0:
        # narrow interval: uniform proposal, accepted with exp(-(z^2 - a^2) / 2) <= 1
        while True:
            z = a + (b - a) * _uniform(key, state)
            if _uniform(key, state) <= math.exp(0.5 * (a * a - z * z)):
                return z
    while True:
        z = a - math.log(_uniform(key, state)) / lam
        if z <= b and _uniform(key, state) <= math.exp(-0.5 * (z - lam) * (z - lam)):
            return z


@njit(cache=True)
def truncated_normal(a, b, key, state):
    """Standard normal truncated to [a, b], a < b; either bound may be infinite."""
    if a >= 0.0:
        return _tail(a, b, key, state)
    if b <= 0.0:
        return -_tail(-b, -a, key, state)
    if b - a > 2.5:
        # the interval holds the mode and at least ~49 % of the mass
        while True:
            z = _normal(key, state)
            if a <= z <= b:
                return z
    while True:  # narrow interval around the mode: uniform proposal
        z = a + (b - a) * _uniform(key, state)
        if _uniform(key, state) <= math.exp(-0.5 * z * z):
            return z


@njit(cache=True)
def gibbs_pass(z, G, h, key, state):
    """One coordinate pass over z ~ N(0, I) restricted to {G z <= h}, in place.

    z must be feasible on entry. A coordinate whose bounds cross by rounding (a vertex of
    the polytope) is put at their midpoint.
    """
    n_con, d = G.shape
    for i in range(d):
        lo = -np.inf
        hi = np.inf
        for r in range(n_con):
            g = G[r, i]
            if g == 0.0:
                continue
            s = h[r]
            for j in range(d):
                if j != i:
                    s -= G[r, j] * z[j]
            bound = s / g
            if g > 0.0:
                if bound < hi:
                    hi = bound
            elif bound > lo:
                lo = bound
        if lo < hi:
            z[i] = truncated_normal(lo, hi, key, state)
        elif np.isfinite(lo) and np.isfinite(hi):
            z[i] = 0.5 * (lo + hi)


@njit(cache=True)
def constrained_gaussian(x, mean, U, G, h, key, n_pass):
    """Draw x = mean + U z with z ~ N(0, I) restricted to {G z <= h}, starting from the current x.

    ``U`` is the inverse transposed Cholesky factor of the precision (so U U' is the
    covariance, upper triangular); ``x`` (feasible) is updated in place.
    """
    d = x.shape[0]
    z = np.empty(d)
    # z = U^-1 (x - mean) by back substitution (U is upper triangular)
    for i in range(d - 1, -1, -1):
        s = x[i] - mean[i]
        for j in range(i + 1, d):
            s -= U[i, j] * z[j]
        z[i] = s / U[i, i]
    state = np.zeros(1, dtype=np.uint64)
    for _ in range(n_pass):
        gibbs_pass(z, G, h, key, state)
    for i in range(d):
        s = mean[i]
        for j in range(i, d):
            s += U[i, j] * z[j]
        x[i] = s


@njit(cache=True)
def _simplex_gram(U):
    """Constraint matrix G of a >= 0 in the whitened coordinates z: a = h + D U z, D = [I; -1']."""
    d = U.shape[0]
    G = np.zeros((d + 1, d))
    for i in range(d):
        for j in range(d):
            G[i, j] = -U[i, j]
            G[d, j] += U[i, j]
    return G


@njit(cache=True)
def _pixel(A, H, U, G, seed, n_pass, p):
    """Gibbs update of pixel p's abundances; the last one closes the sum (rounding at a face clipped)."""
    d = U.shape[0]
    x = A[p, :d].copy()
    constrained_gaussian(x, H[p, :d], U, G, H[p], stream_key(seed, p), n_pass)
    last = 1.0
    for i in range(d):
        if x[i] < 0.0:
            x[i] = 0.0
        last -= x[i]
    if last < 0.0:
        tot = 1.0 - last
        for i in range(d):
            x[i] /= tot
        last = 0.0
    for i in range(d):
        A[p, i] = x[i]
    A[p, d] = last


@njit(cache=True)
def _sweep_serial(A, H, U, seed, n_pass):
    G = _simplex_gram(U)
    for p in range(A.shape[0]):
        _pixel(A, H, U, G, seed, n_pass, p)


@njit(cache=True, parallel=True)
def _sweep_parallel(A, H, U, seed, n_pass):
    G = _simplex_gram(U)
    for p in prange(A.shape[0]):
        _pixel(A, H, U, G, seed, n_pass, p)


_PARALLEL_PIXELS = 50_000  # below this a sweep takes ~1 ms and threads cost more than they save


def abundance_sweep(A, H, U, seed, n_pass):
    """One Gibbs update of every pixel's abundances on the simplex, in place.

    Parameters
    ----------
    A : (n, K) current abundances (rows on the simplex); overwritten by the new draw.
    H : (n, K) unconstrained sum-to-one least-squares abundances (the conditional mean).
    U : (K-1, K-1) upper triangular; U U' is the covariance of the first K-1 abundances.
    seed : uint64 key of this sweep; pixel p draws from its own stream, so the result
        does not depend on the number of threads.
    n_pass : coordinate passes per pixel.
    """
    run = _sweep_parallel if A.shape[0] >= _PARALLEL_PIXELS else _sweep_serial
    run(A, H, U, np.uint64(seed), n_pass)
