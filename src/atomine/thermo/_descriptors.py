"""Enumeration of local-configuration classes and the numba kernels that classify sites.

A descriptor looks at the spins on a fixed set of index offsets around every site (the
centre first). Each site gets an integer *code* = sum_k w_k [sigma(site + offset_k) = +1]
and the class is ``lut[code]``. Two kinds of weights cover every descriptor here:

- orbit descriptors (``nn``, ``nnn``, ``plaquette``): w_k = 2**k, and ``lut`` maps each of the
  2**n bit codes to its orbit under the symmetry group, so symmetric configurations share
  a class by construction;
- ``shell_counts``: mixed-radix weights, so that the code already *is* the class index
  (centre, number of dopants in shell 1, 2, ...) and ``lut`` is the identity.

A site whose neighbourhood touches a 0 (masked) site or leaves an open grid gets class -1.
"""

from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
from numba import njit, prange

from ..errors import InputError
from .lattice import cartesian, point_group, shell_offsets

MAX_ORBIT_SITES = 13  # 2**13 = 8192 codes: the largest table enumerated by brute force


def descriptor_offsets(kind: str, name: str, n_shells: int) -> np.ndarray:
    """Index offsets (n, 2) of a descriptor, the centre (0, 0) first."""
    centre = np.zeros((1, 2), dtype=np.int64)
    if name == "nn":
        return np.vstack([centre, shell_offsets(kind, 1)])
    if name == "nnn":
        return np.vstack([centre, shell_offsets(kind, 1), shell_offsets(kind, 2)])
    if name == "plaquette":
        block = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
        return np.vstack([centre, np.array(block, dtype=np.int64)])
    # shell_counts
    return np.vstack([centre] + [shell_offsets(kind, m) for m in range(1, n_shells + 1)])


def stabiliser(kind: str, offsets: np.ndarray) -> np.ndarray:
    """The point-group operations that map the offset set onto itself (n_ops, 2, 2)."""
    have = {tuple(o) for o in offsets.tolist()}
    keep = [g for g in point_group(kind) if {tuple(o) for o in (offsets @ g.T).tolist()} == have]
    return np.array(keep, dtype=np.int64)


def permutations(offsets: np.ndarray, group: np.ndarray) -> np.ndarray:
    """perm[g, k] = index of the offset that operation g sends offset k to."""
    index = {tuple(o): k for k, o in enumerate(offsets.tolist())}
    return np.array([[index[tuple(o)] for o in (offsets @ g.T).tolist()] for g in group], dtype=np.int64)


def orbit_tables(offsets: np.ndarray, group: np.ndarray):
    """Classes of all 2**n configurations under ``group``.

    Returns
    -------
    lut : ndarray of int32, shape (2**n,)
        Class index of every bit code (bit k set = dopant on offset k).
    canon : ndarray of int64, shape (n_classes,)
        The smallest code of each class (its canonical member).
    mult : ndarray of int64, shape (n_classes,)
        Orbit sizes (number of raw configurations per class).

    Classes are ordered by number of dopants, then by canonical code, so indices are stable.
    """
    n = len(offsets)
    codes = np.arange(2**n, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n)) & 1
    # a configuration with bit k moves to position perm[k]; its code under g
    images = bits @ (np.int64(1) << permutations(offsets, group)).T
    canonical = images.min(axis=1)
    canon, inverse, mult = np.unique(canonical, return_inverse=True, return_counts=True)
    pop = ((canon[:, None] >> np.arange(n)) & 1).sum(axis=1)
    order = np.lexsort((canon, pop))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int32), canon[order], mult[order]


def bits_to_spins(codes: np.ndarray, n: int) -> np.ndarray:
    """+/-1 spins (len(codes), n) of bit codes."""
    bits = (np.asarray(codes, dtype=np.int64)[:, None] >> np.arange(n)) & 1
    return (2 * bits - 1).astype(np.int8)


def orbit_labels(kind: str, offsets: np.ndarray, canon: np.ndarray, shell_of: np.ndarray) -> tuple[str, ...]:
    """Readable labels: centre and per-shell dopant counts, plus dopant-pair distances where needed.

    Distinct classes may share the counts (two dopants adjacent or opposite in shell 1); the
    sorted distances (in units of a) between the non-centre dopants tell them apart.
    """
    n = len(offsets)
    xy = cartesian(kind, offsets)
    spins = bits_to_spins(canon, n)
    n_shells = int(shell_of.max())
    base, dist = [], []
    for s in spins:
        dop = s > 0
        counts = " ".join(f"n{m}={int(np.count_nonzero(dop & (shell_of == m)))}" for m in range(1, n_shells + 1))
        base.append(f"c={int(dop[0])} {counts}")
        p = xy[1:][dop[1:]]
        d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))[np.triu_indices(len(p), 1)]
        dist.append(", ".join(f"{v:.3g}" for v in np.sort(d)))
    same = Counter(base)
    labels = [b if same[b] == 1 else f"{b} (dopant pairs at {d or 'none'} a)" for b, d in zip(base, dist)]
    again = Counter(labels)
    seen: Counter = Counter()
    out = []
    for lab in labels:  # homometric sets (same distances, different shapes) get a running number
        seen[lab] += 1
        out.append(lab if again[lab] == 1 else f"{lab} #{seen[lab]}")
    return tuple(out)


def shell_count_tables(kind: str, n_shells: int):
    """Mixed-radix weights, labels, representatives and multiplicities of the shell-count classes."""
    z = len(shell_offsets(kind, 1))
    radix = z + 1
    n_classes = 2 * radix**n_shells
    weights = [radix**n_shells] + [radix ** (n_shells - m) for m in range(1, n_shells + 1) for _ in range(z)]
    idx = np.arange(n_classes)
    digits = np.array([(idx // radix ** (n_shells - m)) % radix for m in range(0, n_shells + 1)]).T
    digits[:, 0] = idx // radix**n_shells
    labels = tuple(f"c={d[0]} " + " ".join(f"n{m}={d[m]}" for m in range(1, n_shells + 1)) for d in digits)
    reps = -np.ones((n_classes, 1 + z * n_shells), dtype=np.int8)
    reps[:, 0] = 2 * digits[:, 0] - 1
    for m in range(1, n_shells + 1):  # the first n_m sites of shell m carry the dopants
        first = 1 + (m - 1) * z
        reps[:, first:first + z] = np.where(np.arange(z)[None, :] < digits[:, m:m + 1], 1, -1)
    mult = np.array([np.prod([comb(z, int(k)) for k in d[1:]]) for d in digits], dtype=np.int64)
    return np.array(weights, dtype=np.int64), labels, reps, mult


def shell_index(kind: str, offsets: np.ndarray) -> np.ndarray:
    """Shell number (0 = centre) of each offset."""
    out = np.zeros(len(offsets), dtype=np.int64)
    for m in (1, 2, 3):
        ring = {tuple(o) for o in shell_offsets(kind, m).tolist()}
        out[[tuple(o) in ring for o in offsets.tolist()]] = m
    return out


def neighbour_indices(n: int, d: np.ndarray, periodic: bool) -> np.ndarray:
    """idx[k, i] = i + d[k] (wrapped when periodic, -1 beyond an open edge)."""
    raw = np.arange(n)[None, :] + d[:, None]
    if periodic:
        return raw % n
    return np.where((raw >= 0) & (raw < n), raw, -1)


@njit(cache=True, inline="always")
def _site_class(s, i, j, iidx, jidx, weights, lut):
    code = 0
    for k in range(weights.shape[0]):
        ii = iidx[k, i]
        jj = jidx[k, j]
        if ii < 0 or jj < 0:
            return -1
        v = s[ii, jj]
        if v == 0:
            return -1
        if v > 0:
            code += weights[k]
    return lut[code]


@njit(cache=True)
def class_map_kernel(s, iidx, jidx, weights, lut):
    """Class index of every site of one (n_i, n_j) grid (-1 where undefined).

    Serial: one image is a few microseconds of work per thousand sites, less than the cost
    of waking a thread pool on a busy machine.
    """
    ni, nj = s.shape
    out = np.empty((ni, nj), dtype=np.int32)
    for i in range(ni):
        for j in range(nj):
            out[i, j] = _site_class(s, i, j, iidx, jidx, weights, lut)
    return out


@njit(cache=True, parallel=True)
def class_counts_kernel(snaps, iidx, jidx, weights, lut, n_classes):
    """Class histogram (n_snap, n_classes) of a stack of grids, parallel over snapshots."""
    n, ni, nj = snaps.shape
    out = np.zeros((n, n_classes), dtype=np.int64)
    for t in prange(n):
        s = snaps[t]
        for i in range(ni):
            for j in range(nj):
                c = _site_class(s, i, j, iidx, jidx, weights, lut)
                if c >= 0:
                    out[t, c] += 1
    return out


def check_spins(spins, what: str = "spins", *, min_ndim: int = 2, max_ndim: int | None = 2) -> np.ndarray:
    """Spins as a C-contiguous int8 array of -1/0/+1 (never written to), or an InputError saying what is wrong."""
    from .lattice import Lattice

    if isinstance(spins, Lattice):
        spins = spins.spins
    a = np.asarray(spins)
    if a.ndim < min_ndim or (max_ndim is not None and a.ndim > max_ndim):
        shape = "(n_i, n_j)" if max_ndim == 2 else "(..., n_i, n_j)"
        raise InputError(f"{what} must be an array of shape {shape}, got shape {a.shape}")
    if a.size == 0:
        raise InputError(f"{what} is empty")
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"{what} must hold integers -1 (host), 0 (masked), +1 (dopant), got dtype {a.dtype}")
    if a.dtype != np.int8:
        ok = np.isin(a, (-1, 0, 1))
        if not ok.all():
            raise InputError(f"{what} must hold only -1 (host), 0 (masked), +1 (dopant); "
                             f"found {a[~ok].ravel()[0]!r}")
        return a.astype(np.int8)
    if a.min() < -1 or a.max() > 1:
        raise InputError(f"{what} must hold only -1 (host), 0 (masked), +1 (dopant)")
    return np.ascontiguousarray(a)  # read only below: no copy of large snapshot stacks
