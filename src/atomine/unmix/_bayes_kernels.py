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


_LOG_FLOOR = 1e-12  # abundances at a face: bounds the prior's pole a ** (alpha - 1) (mass below ~1e-12 ** alpha)
_SLICE_WIDTH = 2.0  # initial slice bracket, in conditional standard deviations


@njit(cache=True)
def _log_coordinate(t, i, z, a, G, alpha):
    """Log full conditional of whitened coordinate i at value t, up to a constant (the others held)."""
    out = -0.5 * t * t
    for r in range(G.shape[0]):
        if alpha[r] != 1.0:
            out += (alpha[r] - 1.0) * math.log(max(a[r] - G[r, i] * (t - z[i]), _LOG_FLOOR))
    return out


@njit(cache=True)
def _slice_coordinate(i, z, a, G, alpha, lo, hi, key, state):
    """Slice-sampling draw (stepping out, then shrinkage; Neal 2003) of coordinate i on [lo, hi]."""
    x0 = z[i]
    level = _log_coordinate(x0, i, z, a, G, alpha) + math.log(_uniform(key, state))
    left = x0 - _SLICE_WIDTH * _uniform(key, state)
    right = left + _SLICE_WIDTH
    for _ in range(30):
        if left <= lo or _log_coordinate(left, i, z, a, G, alpha) <= level:
            break
        left -= _SLICE_WIDTH
    for _ in range(30):
        if right >= hi or _log_coordinate(right, i, z, a, G, alpha) <= level:
            break
        right += _SLICE_WIDTH
    left, right = max(left, lo), min(right, hi)
    for _ in range(200):
        t = left + (right - left) * _uniform(key, state)
        if _log_coordinate(t, i, z, a, G, alpha) > level:
            return t
        if t < x0:
            left = t
        else:
            right = t
    return x0  # the slice shrank to the current point (rounding): keep it


@njit(cache=True)
def _dirichlet_pass(z, a, G, h, alpha, key, state):
    """One coordinate pass over abundances with a Dirichlet(alpha) prior, in whitened coordinates z.

    Each coordinate's conditional is its Gaussian restricted to the simplex times
    prod_k a_k ** (alpha_k - 1). With alpha = 1 (uniform prior) that is a truncated normal,
    drawn exactly; otherwise it is slice-sampled, which, unlike a Metropolis step with the
    Gaussian as proposal, does not stick at a face where the prior has its pole (alpha < 1).
    ``a = h - G z`` (the slacks) is kept up to date with z.
    """
    n_con, d = G.shape
    flat = True
    for r in range(n_con):
        if alpha[r] != 1.0:
            flat = False
    for i in range(d):
        lo = -np.inf
        hi = np.inf
        for r in range(n_con):
            g = G[r, i]
            if g == 0.0:
                continue
            bound = (a[r] + g * z[i]) / g  # slack of constraint r without coordinate i, over g
            if g > 0.0:
                if bound < hi:
                    hi = bound
            elif bound > lo:
                lo = bound
        if lo < hi:
            if flat:
                znew = truncated_normal(lo, hi, key, state)
            else:
                znew = _slice_coordinate(i, z, a, G, alpha, lo, hi, key, state)
        elif np.isfinite(lo) and np.isfinite(hi):
            znew = 0.5 * (lo + hi)
        else:
            continue
        step = znew - z[i]
        z[i] = znew
        for r in range(n_con):
            a[r] -= G[r, i] * step


@njit(cache=True)
def _pixel(A, H, U, G, alpha, seed, n_pass, p):
    """Update of pixel p's abundances; the last one closes the sum (rounding at a face clipped)."""
    d = U.shape[0]
    K = d + 1
    # whitened coordinates of the current abundances: z = U^-1 (a - h) (U upper triangular)
    z = np.empty(d)
    for i in range(d - 1, -1, -1):
        s = A[p, i] - H[p, i]
        for j in range(i + 1, d):
            s -= U[i, j] * z[j]
        z[i] = s / U[i, i]
    a = np.empty(K)
    for r in range(K):
        s = H[p, r]
        for j in range(d):
            s -= G[r, j] * z[j]
        a[r] = s
    key = stream_key(seed, p)
    state = np.zeros(1, dtype=np.uint64)
    for _ in range(n_pass):
        _dirichlet_pass(z, a, G, H[p], alpha, key, state)
    # back from z exactly (the running slacks drift by rounding)
    last = 1.0
    for i in range(d):
        s = H[p, i]
        for j in range(i, d):
            s += U[i, j] * z[j]
        if s < 0.0:
            s = 0.0
        a[i] = s
        last -= s
    if last < 0.0:
        tot = 1.0 - last
        for i in range(d):
            a[i] /= tot
        last = 0.0
    for i in range(d):
        A[p, i] = a[i]
    A[p, d] = last


@njit(cache=True)
def _sweep_serial(A, H, U, alpha, seed, n_pass):
    G = _simplex_gram(U)
    for p in range(A.shape[0]):
        _pixel(A, H, U, G, alpha, seed, n_pass, p)


@njit(cache=True, parallel=True)
def _sweep_parallel(A, H, U, alpha, seed, n_pass):
    G = _simplex_gram(U)
    for p in prange(A.shape[0]):
        _pixel(A, H, U, G, alpha, seed, n_pass, p)


@njit(cache=True)
def _log_concentration(u, k, alpha, S, n, prior_sd):
    """Log conditional of u = log alpha_k: n log B(alpha)^-1 + (alpha_k - 1) S_k + log N(u; 0, prior_sd^2)."""
    ak = math.exp(u)
    tot = ak
    for j in range(alpha.shape[0]):
        if j != k:
            tot += alpha[j]
    return n * (math.lgamma(tot) - math.lgamma(ak)) + (ak - 1.0) * S[k] - 0.5 * (u / prior_sd) ** 2


@njit(cache=True)
def dirichlet_concentration(alpha, S, n, prior_sd, width, key):
    """One slice-sampling update (stepping out, then shrinkage; Neal 2003) of each log alpha_k, in place.

    ``S[k] = sum_p log a_pk`` over the ``n`` pixels: the Dirichlet likelihood of the
    abundances depends on them only through S. Prior: log alpha_k ~ N(0, prior_sd^2),
    centred on the uniform simplex (alpha = 1).
    """
    state = np.zeros(1, dtype=np.uint64)
    for k in range(alpha.shape[0]):
        u0 = math.log(alpha[k])
        level = _log_concentration(u0, k, alpha, S, n, prior_sd) + math.log(_uniform(key, state))
        lo = u0 - width * _uniform(key, state)
        hi = lo + width
        for _ in range(50):
            if _log_concentration(lo, k, alpha, S, n, prior_sd) <= level:
                break
            lo -= width
        for _ in range(50):
            if _log_concentration(hi, k, alpha, S, n, prior_sd) <= level:
                break
            hi += width
        while True:
            u = lo + (hi - lo) * _uniform(key, state)
            if _log_concentration(u, k, alpha, S, n, prior_sd) > level:
                alpha[k] = math.exp(u)
                break
            if u < u0:
                lo = u
            else:
                hi = u
            if hi - lo < 1e-12:  # the slice is a point: keep the current value
                break


_PARALLEL_PIXELS = 50_000  # below this a sweep takes ~1 ms and threads cost more than they save


def abundance_sweep(A, H, U, seed, n_pass, alpha=None):
    """One update of every pixel's abundances on the simplex, in place.

    Parameters
    ----------
    A : (n, K) current abundances (rows on the simplex); overwritten by the new draw.
    H : (n, K) unconstrained sum-to-one least-squares abundances (the conditional mean).
    U : (K-1, K-1) upper triangular; U U' is the covariance of the first K-1 abundances.
    seed : uint64 key of this sweep; pixel p draws from its own stream, so the result
        does not depend on the number of threads.
    n_pass : coordinate passes per pixel.
    alpha : (K,) Dirichlet concentrations of the abundance prior; None = ones (uniform on
        the simplex: exact Gibbs passes). Otherwise each coordinate draw is a Metropolis
        proposal from the Gaussian part of its conditional.
    """
    alpha = np.ones(A.shape[1]) if alpha is None else np.ascontiguousarray(alpha, dtype=np.float64)
    run = _sweep_parallel if A.shape[0] >= _PARALLEL_PIXELS else _sweep_serial
    run(A, H, U, alpha, np.uint64(seed), n_pass)
