"""Numba kernels of the lattice-model Monte Carlo: per-chain random numbers, Kawasaki exchange, spin flips.

Data layout (built by :mod:`atomine.thermo.montecarlo`): the n model sites (non-zero spins)
are numbered 0..n-1; index n is a *ghost* site whose spin is always 0. ``nb[a, m, q]`` is
the q-th neighbour of site a in shell m (0-based), or the ghost where the neighbour lies
beyond an open boundary, is masked, or is a itself on a tiny periodic grid. The ghost
makes every neighbour sum branch-free. Neighbours are a multiset, exactly as in
``lattice.pair_sums``: on a small periodic grid one site may appear twice in a shell and
its bond is then counted twice in r_m as well.

Energy (one convention everywhere): E = sum_m J_m r_m - h F, r_m = sum over the bonds of
shell m of s_i s_j, F = sum_i f_i s_i. With n_am = sum_{c in shell m of a} s_c:

- flipping a changes r_m by -2 s_a n_am;
- exchanging unlike a, b (s_a = -s_b) changes r_m by -2 s_a (n_am - n_bm) - 4 k_m, where
  k_m is how many times b appears in shell m of a: the bonds between a and b do not change
  (both spins flip) but were counted in both -2 s n terms.

r_m is kept as an exact int64 and updated for all three shells on every accepted move, so
energies never drift; only the shells with a non-zero coupling enter the acceptance test.

Random numbers: xoshiro256** (Blackman & Vigna 2018), one 256-bit state per chain, seeded
from numpy's SeedSequence, so a chain's trajectory does not depend on the thread that runs
it. A bounded integer is the high word of a 32x32-bit product (bias below n / 2**32).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

LOCAL, NONLOCAL, MIXED, SGC = 0, 1, 2, 3

_U5 = np.uint64(5)
_U9 = np.uint64(9)
_S7 = np.uint64(7)
_S57 = np.uint64(57)
_S17 = np.uint64(17)
_S45 = np.uint64(45)
_S19 = np.uint64(19)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def _next(s0, s1, s2, s3):
    """One xoshiro256** step: (output, new state)."""
    x = s1 * _U5
    out = ((x << _S7) | (x >> _S57)) * _U9
    t = s1 << _S17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _S45) | (s3 >> _S19)
    return out, s0, s1, s2, s3


@njit(cache=True, inline="always")
def _below(x, n):
    """An integer uniform on 0..n-1 from the random word x (n < 2**32)."""
    return np.int64(((x >> _S32) * np.uint64(n)) >> _S32)


@njit(cache=True, inline="always")
def _unit(x):
    """A float uniform on [0, 1) from the random word x."""
    return np.float64(x >> _S11) * _INV53


@njit(cache=True, inline="always")
def _shell_sum(s, nb, a, m, z):
    """n_am = sum of the spins in shell m of site a."""
    acc = 0
    for q in range(z):
        acc += s[nb[a, m, q]]
    return acc


@njit(cache=True, inline="always")
def _exchange_dr(s, nb, a, b, m, z):
    """Change of r_m when the unlike spins of a and b are exchanged (see the module docstring)."""
    na = 0
    nbm = 0
    k = 0
    for q in range(z):
        x = nb[a, m, q]
        na += s[x]
        if x == b:
            k += 1
        nbm += s[nb[b, m, q]]
    return -2 * s[a] * (na - nbm) - 4 * k


@njit(cache=True)
def _run_chain(c, s, order, pos, r, fsum, mag, rng, accepted, nb, coup, n_active, f, h, mu, beta,
               mode, n_dop, sweep0, sweep1, n_equil, thin, snap_of, energy, pairs, fields, mags,
               snaps, flat):
    """Advance chain c from sweep0 to sweep1 (global sweep numbers), recording as it goes."""
    n = s.shape[1] - 1
    z = nb.shape[2]
    n_host = n - n_dop
    s_c = s[c]
    order_c = order[c]
    pos_c = pos[c]
    s0, s1, s2, s3 = rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3]
    r0, r1, r2 = r[c, 0], r[c, 1], r[c, 2]
    F = fsum[c]
    M = mag[c]
    acc = accepted[c]
    for sweep in range(sweep0, sweep1):
        for attempt in range(n):
            x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            if mode == SGC:
                a = _below(x, n)
                sa = s_c[a]
                dE = 0.0
                for m in range(n_active):
                    dE += coup[m] * (-2 * sa * _shell_sum(s_c, nb, a, m, z))
                dE += 2.0 * sa * (h * f[a] + mu)
                if dE > 0.0:
                    x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                    if _unit(x) >= math.exp(-beta * dE):
                        continue
                r0 += -2 * sa * _shell_sum(s_c, nb, a, 0, z)
                r1 += -2 * sa * _shell_sum(s_c, nb, a, 1, z)
                r2 += -2 * sa * _shell_sum(s_c, nb, a, 2, z)
                F -= 2.0 * f[a] * sa
                M -= 2 * sa
                s_c[a] = -sa
                acc += 1
                continue
            # mixed alternates local and non-local attempts: each kind alone leaves the Boltzmann
            # distribution invariant, so does their sequence, and a fixed pattern costs no branch misses
            local = mode == LOCAL or (mode == MIXED and (attempt & 1) == 0)
            if local:
                a = _below(x, n)
                x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                b = np.int64(nb[a, 0, _below(x, z)])
                if b == n or s_c[a] == s_c[b]:
                    continue  # nothing to exchange: a rejected attempt
            else:
                a = np.int64(order_c[_below(x, n_dop)])
                x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                b = np.int64(order_c[n_dop + _below(x, n_host)])
            sa = s_c[a]
            sb = s_c[b]
            dE = 0.0
            for m in range(n_active):
                dE += coup[m] * _exchange_dr(s_c, nb, a, b, m, z)
            dE += 2.0 * h * (f[a] * sa + f[b] * sb)
            if dE > 0.0:
                x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                if _unit(x) >= math.exp(-beta * dE):
                    continue
            r0 += _exchange_dr(s_c, nb, a, b, 0, z)
            r1 += _exchange_dr(s_c, nb, a, b, 1, z)
            r2 += _exchange_dr(s_c, nb, a, b, 2, z)
            F -= 2.0 * (f[a] * sa + f[b] * sb)
            s_c[a] = sb
            s_c[b] = sa
            # keep dopants first in `order`: a and b trade places in it
            pa = pos_c[a]
            pb = pos_c[b]
            order_c[pa] = b
            order_c[pb] = a
            pos_c[a] = pb
            pos_c[b] = pa
            acc += 1
        k = sweep - n_equil
        if k >= 0:
            if (k + 1) % thin == 0:
                i = (k + 1) // thin - 1
                energy[c, i] = coup[0] * r0 + coup[1] * r1 + coup[2] * r2 - h * F
                pairs[c, i, 0] = r0
                pairs[c, i, 1] = r1
                pairs[c, i, 2] = r2
                fields[c, i] = F
                mags[c, i] = M / n
            j = snap_of[k]
            if j >= 0:
                for a in range(n):
                    snaps[c, j, flat[a]] = s_c[a]
    rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3] = s0, s1, s2, s3
    r[c, 0], r[c, 1], r[c, 2] = r0, r1, r2
    fsum[c] = F
    mag[c] = M
    accepted[c] = acc


@njit(cache=True, parallel=True)
def run_block(s, order, pos, r, fsum, mag, rng, accepted, nb, coup, n_active, f, h, mu, beta, mode,
              n_dop, sweep0, sweep1, n_equil, thin, snap_of, energy, pairs, fields, mags, snaps, flat):
    """Advance every chain (in parallel) from global sweep sweep0 to sweep1; state arrays are updated in place.

    Parameters are the per-chain state (spins ``s`` (n_chains, n+1) int8 with a ghost, ``order``
    and ``pos`` the dopant-first site list and its inverse, ``r`` (n_chains, 3) int64, ``fsum``,
    ``mag`` (int64 sum of spins), ``rng`` (n_chains, 4) uint64, ``accepted``), the model
    (``nb``, ``coup`` (3,), ``n_active`` shells in the acceptance test, ``f`` (n+1,), ``h``,
    ``mu``, ``beta`` = 1/t, ``mode``, ``n_dop``) and the recording plan and outputs.
    """
    for c in prange(s.shape[0]):
        _run_chain(c, s, order, pos, r, fsum, mag, rng, accepted, nb, coup, n_active, f, h, mu, beta,
                   mode, n_dop, sweep0, sweep1, n_equil, thin, snap_of, energy, pairs, fields, mags,
                   snaps, flat)
