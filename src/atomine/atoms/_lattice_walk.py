"""Neighbour-walk indexing of atoms on a lattice with a motif.

Private helper of :mod:`atomine.atoms.sublattice`. Starting from one atom, a
breadth-first walk predicts each neighbour's position from the *current atom's*
measured position plus one short lattice vector, so a slow strain gradient or
rotation across the field never accumulates into a wrong index: each step only
needs the local lattice to match the mean one to within the matching tolerance.
The walk runs a whole frontier at a time (one KD-tree query per step), never one
Python iteration per atom.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

# Walk vectors up to this multiple of the longer basis vector: first-shell translations
# plus the diagonals, so a walk passes around a missing atom.
_WALK_REACH = 1.5
# Disconnected patches (beyond a crack or a blob of outliers) get their own walk,
# started from global fractional coordinates; patches smaller than this are outliers.
_MIN_PATCH = 10
_MAX_PATCHES = 20


def walk_vectors(basis: np.ndarray, motif: np.ndarray):
    """Short vectors between motif sites: source site, target site, cell step (2,), vector (nm)."""
    reach = _WALK_REACH * max(np.hypot(*basis[0]), np.hypot(*basis[1]))
    steps = np.array([(a, b) for a in range(-2, 3) for b in range(-2, 3)], dtype=np.int64)
    src, dst, dc, vec = [], [], [], []
    for s in range(len(motif)):
        for t in range(len(motif)):
            w = (steps + motif[t] - motif[s]) @ basis
            ok = (np.hypot(w[:, 0], w[:, 1]) <= reach) & np.any(np.abs(steps + motif[t] - motif[s]) > 1e-9, axis=1)
            src += [s] * int(ok.sum())
            dst += [t] * int(ok.sum())
            dc.append(steps[ok])
            vec.append(w[ok])
    return np.array(src), np.array(dst), np.concatenate(dc), np.concatenate(vec)


def _neighbours(tree, xy, atoms, site, walk, tol):
    """Atoms within ``tol`` of every walk prediction from ``atoms``: (origin, walk index, atom, distance)."""
    src, _, _, vec = walk
    origin, kidx = [], []
    for s in np.unique(site[atoms]):
        a = atoms[site[atoms] == s]
        ks = np.flatnonzero(src == s)
        origin.append(np.repeat(a, ks.size))
        kidx.append(np.tile(ks, a.size))
    origin, kidx = np.concatenate(origin), np.concatenate(kidx)
    # Two nearest candidates: an outlier nearer the prediction must not hide the real atom.
    dist, hit = tree.query(xy[origin] + vec[kidx], k=2, distance_upper_bound=tol)
    ok = hit < xy.shape[0]
    rows = np.nonzero(ok)[0]
    return origin[rows], kidx[rows], hit[ok], dist[ok]


def _walk(tree, xy, walk, tol, site, cell, root_site, root_cell, root):
    """Breadth-first walk from ``root``; fills ``site`` and ``cell`` in place; returns atoms reached."""
    _, dst, dc, _ = walk
    site[root], cell[root] = root_site, root_cell
    frontier = np.array([root])
    reached = 1
    while frontier.size:
        origin, k, hit, dist = _neighbours(tree, xy, frontier, site, walk, tol)
        new = site[hit] == -1
        origin, k, hit, dist = origin[new], k[new], hit[new], dist[new]
        if hit.size == 0:
            break
        # Reached from several atoms at once: trust the closest prediction.
        order = np.lexsort((dist, hit))
        hit, origin, k = hit[order], origin[order], k[order]
        first = np.concatenate([[True], hit[1:] != hit[:-1]])
        hit, origin, k = hit[first], origin[first], k[first]
        site[hit] = dst[k]
        cell[hit] = cell[origin] + dc[k]
        frontier = hit
        reached += hit.size
    return reached


def index_atoms(xy: np.ndarray, basis: np.ndarray, motif: np.ndarray, root: int, root_site: int, tol: float):
    """Motif site (-1 = none), integer cell (n, 2) in the ``basis`` and residual (nm) of every atom.

    The residual is the distance between an atom and the position its walk neighbours
    predict for it (median over neighbours); atoms with residual above ``tol`` and the
    worse of two atoms claiming one site are set to site -1.
    """
    n = xy.shape[0]
    tree = cKDTree(xy)
    walk = walk_vectors(basis, motif)
    site = np.full(n, -1, dtype=np.int64)
    cell = np.zeros((n, 2), dtype=np.int64)
    _walk(tree, xy, walk, tol, site, cell, root_site, np.zeros(2, dtype=np.int64), root)
    inv = np.linalg.inv(basis)
    origin_xy = xy[root] - motif[root_site] @ basis
    for _ in range(_MAX_PATCHES):
        left = np.flatnonzero(site < 0)
        if left.size < _MIN_PATCH:
            break
        # Global fractional coordinates place a new patch's first atom; accept it only when it
        # sits on a motif site, so a patch is never started from an outlier.
        frac = (xy[left] - origin_xy) @ inv
        d = frac[:, None, :] - motif[None, :, :]
        off = (d - np.rint(d)) @ basis
        dist = np.hypot(off[..., 0], off[..., 1])
        s_best = np.argmin(dist, axis=1)
        good = np.flatnonzero(dist[np.arange(left.size), s_best] < tol)
        if good.size == 0:
            break
        pick = good[0]
        start_cell = np.rint(d[pick, s_best[pick]]).astype(np.int64)
        before = site.copy()
        if _walk(tree, xy, walk, tol, site, cell, s_best[pick], start_cell, left[pick]) < _MIN_PATCH:
            patch = (before < 0) & (site >= 0)
            site[patch] = -2  # too small to trust; kept out of later patches, reset below
    site[site == -2] = -1
    resid = _residuals(tree, xy, walk, tol, site, cell)
    site[resid > tol] = -1
    _drop_duplicates(site, cell, resid)
    return site, cell, resid


def _residuals(tree, xy, walk, tol, site, cell):
    """Distance (nm) from each indexed atom to the median position its indexed neighbours predict."""
    _, dst, dc, vec = walk
    n = xy.shape[0]
    resid = np.full(n, np.nan)
    atoms = np.flatnonzero(site >= 0)
    if atoms.size == 0:
        return resid
    origin, k, hit, _ = _neighbours(tree, xy, atoms, site, walk, 2 * tol)
    consistent = (site[hit] == dst[k]) & np.all(cell[hit] == cell[origin] + dc[k], axis=1)
    origin, k, hit = origin[consistent], k[consistent], hit[consistent]
    if origin.size == 0:
        return resid
    pred = xy[hit] - vec[k]
    order = np.argsort(origin, kind="stable")
    origin, pred = origin[order], pred[order]
    starts = np.flatnonzero(np.concatenate([[True], origin[1:] != origin[:-1]]))
    counts = np.diff(np.append(starts, origin.size))
    # Per-atom median via sorting within groups (vectorised: sort by (atom, value)).
    med = np.empty((starts.size, 2))
    for ax in range(2):
        o = np.lexsort((pred[:, ax], origin))
        vals = pred[o, ax]
        lo = starts + (counts - 1) // 2
        hi = starts + counts // 2
        med[:, ax] = 0.5 * (vals[lo] + vals[hi])
    atoms_with = origin[starts]
    resid[atoms_with] = np.hypot(*(xy[atoms_with] - med).T)
    return resid


def _drop_duplicates(site, cell, resid):
    """Where two atoms claim the same (site, cell), keep the one closer to its predicted position."""
    idx = np.flatnonzero(site >= 0)
    if idx.size == 0:
        return
    r = np.where(np.isfinite(resid[idx]), resid[idx], np.inf)
    order = np.lexsort((r, cell[idx, 1], cell[idx, 0], site[idx]))
    s, c = site[idx][order], cell[idx][order]
    dup = np.concatenate([[False], (s[1:] == s[:-1]) & np.all(c[1:] == c[:-1], axis=1)])
    site[idx[order][dup]] = -1
