"""Sublattices and integer lattice sites of an atom table, without a CIF.

:func:`identify_sublattices` works in three steps:

1. **Geometric lattice.** The peaks of the vector PDF that nearly every atom has a
   neighbour at are the translations of the point set; the shortest two independent
   ones form the fine basis, and clusters of fractional coordinates form its motif.
2. **Neighbour walk.** Every atom gets a motif site and an integer cell by walking
   from the atom nearest the table's centroid along short motif vectors, each step
   predicted from the measured position of the previous atom (robust to slow strain
   and rotation; outliers and duplicates are left out, see ``_lattice_walk``).
3. **Intensity.** Positions alone cannot tell a Sr column from a Ti-O column in
   perovskite [001] (A at (0, 0) and B at (1/2, 1/2) make a square point lattice of
   period a/2). A translation of the point set is kept as a crystal translation only
   when it maps every column onto columns of the same median intensity; this turns
   the fine lattice into the true one (a1, a2) and splits its motif into sublattices,
   numbered by decreasing mean intensity (0 = brightest, DESIGN "Atom tables").

:func:`find_vacancies` then lists the empty motif sites inside the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from . import _lattice_basis as basis_
from ._lattice_walk import index_atoms
from ._vacancies import confirm_vacancies, find_vacancies
from .vector_pdf import median_nn_distance, positions

__all__ = ["LatticeInfo", "identify_sublattices", "find_vacancies", "confirm_vacancies"]

# Matching tolerance of the walk, as a fraction of the nearest-neighbour distance: far
# above picometre noise and slow distortions, far below the distance to a wrong site.
TOL_FRACTION = 0.3
# Default PDF radius in nearest-neighbour distances: reaches the translations of a
# honeycomb (sqrt(3) d_nn) and of rectangular cells up to an aspect ratio of ~3.
RADIUS_FRACTION = 3.2
# Two column classes differ when their medians differ by more than this many standard
# errors plus 3 % of the spread of all class medians (so noise-free tables work too).
_Z_DIFFERENT = 6.0
_FLOOR_FRACTION = 0.03
_MIN_CLASS = 5
# Lattice vectors within this fraction of the shortest count as equally short for orientation.
_SHORT_SLACK = 0.05
# Motif sites with fewer atoms than this share of the fullest site are dropped.
_MIN_SITE_SHARE = 0.05


@dataclass(frozen=True)
class LatticeInfo:
    """The lattice found by :func:`identify_sublattices`.

    Attributes
    ----------
    a1, a2 : numpy.ndarray, shape (2,)
        Lattice vectors (x, y) in nm, fitted to all assigned atoms: ``a1`` is the shortest
        lattice vector closest to +x, ``a2`` the next shortest with ``a1 x a2 > 0`` (toward
        +y, y growing downward) at an acute angle (60 degrees in a hexagon, not 120).
    origin : numpy.ndarray, shape (2,)
        (x, y) in nm of site (site_i, site_j) = (0, 0) of sublattice 0.
    motif : numpy.ndarray, shape (n_sublattices, 2)
        Fractional position (along a1, along a2) of each sublattice; row 0 is (0, 0).
        Atom ``(site_i, site_j)`` of sublattice ``s`` sits near
        ``origin + (site_j + motif[s, 0]) a1 + (site_i + motif[s, 1]) a2``.
    counts : numpy.ndarray of int, shape (n_sublattices,)
        Atoms assigned to each sublattice.
    mean_intensity : numpy.ndarray, shape (n_sublattices,)
        Mean of the intensity column per sublattice (NaN without one).
    n_unassigned : int
        Atoms on no motif site (sublattice -1: outliers, duplicates, isolated atoms).
    extent : tuple of float
        (x_min, x_max, y_min, y_max) in nm of the table's atoms.
    translations : numpy.ndarray, shape (2, 2)
        Rows: reduced basis (nm) of the translations of the positions alone; equal to
        (a1, a2) up to a basis change when intensities split nothing.
    """

    a1: np.ndarray
    a2: np.ndarray
    origin: np.ndarray
    motif: np.ndarray
    counts: np.ndarray
    mean_intensity: np.ndarray
    n_unassigned: int
    extent: tuple
    translations: np.ndarray

    @property
    def n_sublattices(self) -> int:
        """Number of motif sites (sublattices)."""
        return int(self.motif.shape[0])


def identify_sublattices(table: pd.DataFrame, *, intensity: str | None = "amplitude",
                         radius_nm: float | None = None, progress=None):
    """Assign every atom to a sublattice and an integer lattice site.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table with ``x``, ``y`` (nm) and the ``intensity`` column. Not modified.
    intensity : str or None
        Column whose per-column values separate sublattices that positions alone cannot
        (``"amplitude"``, an integrated intensity, or an STM height). ``None``: positions
        only, i.e. every geometric motif site is a sublattice.
    radius_nm : float, optional
        Radius of the vector PDF (nm); default 3.2 nearest-neighbour distances.
    progress : callable, optional
        ``progress(done, total, message)`` after each of the four stages.

    Returns
    -------
    table : pandas.DataFrame
        A copy with ``sublattice`` (int, 0 = brightest mean intensity, -1 = on no site),
        ``site_i`` (along a2) and ``site_j`` (along a1), and ``cls`` set to ``"unknown"``
        for unassigned atoms (a missing ``cls`` column is created with ``"host"`` for the
        others, to be refined by classification). Site (0, 0) is the cell holding the
        assigned atom nearest the centroid of the table. Unassigned atoms get the indices
        of the cell they lie in.
    info : LatticeInfo

    Raises
    ------
    InputError
        Not a table, too few atoms, NaN positions, a missing intensity column, or no 2-D
        periodic lattice in the positions.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError("identify_sublattices needs an atom table (pandas DataFrame with x, y in nm)")
    xy = positions(table, "table")
    if xy.shape[0] < 8:
        raise InputError(f"the table has {xy.shape[0]} atoms; a lattice needs at least 8")
    val = _intensity(table, intensity)
    report = progress if callable(progress) else (lambda *a: None)

    d_nn = median_nn_distance(xy)
    tol = TOL_FRACTION * d_nn
    radius = RADIUS_FRACTION * d_nn if radius_nm is None else float(radius_nm)
    if not np.isfinite(radius) or radius <= 2 * tol:
        raise InputError(f"radius_nm={radius_nm!r} is below the nearest-neighbour distance {d_nn:.4g} nm")
    fine = basis_.translations(xy, radius, tol)
    report(1, 4, "lattice translations from the vector PDF")

    root, root_site, fine_motif = _root_and_motif(xy, fine, tol)
    site_g, cell, _ = index_atoms(xy, fine, fine_motif, root, root_site, tol)
    report(2, 4, "neighbour-walk indexing")

    cell_basis = _oriented(_superlattice(site_g, cell, val, len(fine_motif)), fine)
    label, w, motif_l = _cell_coordinates(site_g, cell, fine_motif, cell_basis)
    report(3, 4, "sublattices from intensities")

    out, info = _number(table, xy, val, label, w, motif_l, fine, root)
    report(4, 4, "sublattice numbering")
    return out, info


def _intensity(table: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    if column not in table.columns:
        raise InputError(
            f"the table has no intensity column {column!r}; name one (e.g. intensity='amplitude') "
            "or pass intensity=None to use positions only"
        )
    val = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(val), val, np.nan)


def _root_and_motif(xy, fine, tol):
    """The walk's first atom (on a motif site, near the centroid), its site, and the motif."""
    tree = cKDTree(xy)
    _, near = tree.query(xy.mean(axis=0), k=min(50, xy.shape[0]))
    near = np.atleast_1d(near)
    fine_motif = basis_.motif(xy, fine, xy[near[0]], tol)
    if fine_motif.shape[0] == 0:
        raise InputError("the atom positions form no repeated motif; check the table holds one crystal")
    # The motif is in coordinates relative to near[0]; take the first nearby atom that sits
    # on a motif site (near[0] itself unless it is an outlier).
    frac = (xy[near] - xy[near[0]]) @ np.linalg.inv(fine)
    d = frac[:, None, :] - fine_motif[None, :, :]
    off = (d - np.rint(d)) @ fine
    dist = np.hypot(off[..., 0], off[..., 1])
    best = np.argmin(dist, axis=1)
    ok = np.flatnonzero(dist[np.arange(near.size), best] < tol)
    if ok.size == 0:
        raise InputError("no atom near the centre of the table sits on the lattice; check the atom positions")
    return int(near[ok[0]]), int(best[ok[0]]), fine_motif


def _superlattice(site_g, cell, val, n_sites) -> np.ndarray:
    """Integer basis (rows, in fine-cell units) of the translations that also keep intensities.

    Candidates are the fine translations modulo 2 (this covers the A/B and O1/O2 splits of
    perovskites); a candidate is kept when, for every motif site, the columns of each
    parity class and of the class it is shifted onto have indistinguishable medians.
    """
    identity = np.eye(2, dtype=np.int64)
    if val is None:
        return identity
    ok = (site_g >= 0) & np.isfinite(val)
    q = np.mod(cell[ok], 2)
    code = site_g[ok] * 4 + q[:, 0] * 2 + q[:, 1]
    v = val[ok]
    med = np.full(n_sites * 4, np.nan)
    se = np.full(n_sites * 4, np.nan)
    for c in np.unique(code):
        x = v[code == c]
        if x.size >= _MIN_CLASS:
            med[c] = np.median(x)
            # Standard error of a median from the robust spread (MAD * 1.4826 * sqrt(pi/2)).
            se[c] = 1.8583 * np.median(np.abs(x - med[c])) / np.sqrt(x.size)
    if np.sum(np.isfinite(med)) < 2:
        return identity
    floor = _FLOOR_FRACTION * (np.nanmax(med) - np.nanmin(med))

    def worst(tau):
        stats = [0.0]
        for s in range(n_sites):
            for q0 in ((0, 0), (0, 1), (1, 0), (1, 1)):
                q1 = ((q0[0] + tau[0]) % 2, (q0[1] + tau[1]) % 2)
                c0, c1 = s * 4 + q0[0] * 2 + q0[1], s * 4 + q1[0] * 2 + q1[1]
                if np.isfinite(med[c0]) and np.isfinite(med[c1]):
                    bound = _Z_DIFFERENT * np.hypot(se[c0], se[c1]) + floor
                    stats.append(abs(med[c0] - med[c1]) / bound if bound > 0 else 0.0)
        return max(stats)

    taus = [(1, 0), (0, 1), (1, 1)]
    score = np.array([worst(t) for t in taus])
    keep = score < 1.0
    if keep.all():
        return identity
    if keep.sum() == 2:  # not a group: trust only the clearest one
        keep = score == score.min()
    if not keep.any():
        return 2 * identity
    tau = taus[int(np.flatnonzero(keep)[0])]
    return {(1, 0): np.array([[1, 0], [0, 2]]), (0, 1): np.array([[2, 0], [0, 1]]),
            (1, 1): np.array([[1, 1], [2, 0]])}[tau].astype(np.int64)


def _oriented(cell_basis: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Reduced integer basis with a1 closest to +x, a1 x a2 > 0 and a 60 (not 120) degree hexagon."""
    b = cell_basis.astype(np.int64).copy()
    for _ in range(100):
        a, c = b[0] @ fine, b[1] @ fine
        if c @ c < a @ a - 1e-12:
            b = b[::-1].copy()
            continue
        mu = int(np.rint((a @ c) / (a @ a)))
        if mu == 0:
            break
        b[1] -= mu * b[0]
    # Among the shortest vectors (six in a hexagon, four in a square; 5 % slack so that a
    # slightly strained square keeps a1 along x) a1 is the one closest to +x; a2 completes a
    # basis of the same lattice with a1 x a2 > 0, at 60 rather than 120 degrees.
    cands = np.array([b[0], b[1], b[0] + b[1], b[0] - b[1]])
    cands = np.concatenate([cands, -cands])
    vec = cands @ fine
    length = np.hypot(vec[:, 0], vec[:, 1])
    short = np.flatnonzero(length <= length.min() * (1 + _SHORT_SLACK))
    a1 = cands[short[np.argmax(vec[short, 0] / length[short])]]
    v1 = a1 @ fine
    same_lattice = np.abs(a1[0] * cands[:, 1] - a1[1] * cands[:, 0]) == abs(b[0, 0] * b[1, 1] - b[0, 1] * b[1, 0])
    cross = v1[0] * vec[:, 1] - v1[1] * vec[:, 0]
    ok = np.flatnonzero(same_lattice & (cross > 0) & (length <= np.hypot(*(b[1] @ fine)) * (1 + _SHORT_SLACK)))
    a2 = cands[ok[np.argmax(vec[ok] @ v1)]]
    return np.array([a1, a2], dtype=np.int64)


def _cell_coordinates(site_g, cell, fine_motif, cell_basis):
    """Motif label per atom (-1 = none), fractional coordinates in the crystal basis, motif positions."""
    det = int(round(abs(np.linalg.det(cell_basis))))
    inv = np.linalg.inv(cell_basis)
    label = np.full(site_g.shape, -1, dtype=np.int64)
    w = np.full((site_g.size, 2), np.nan)
    idx = np.flatnonzero(site_g >= 0)
    if idx.size == 0:
        raise InputError("no atom could be placed on the lattice; check the atom positions")
    w[idx] = (cell[idx] + fine_motif[site_g[idx]]) @ inv
    coset = np.mod(np.rint(np.mod(cell[idx] @ inv, 1.0) * det).astype(np.int64), det)
    key = (site_g[idx] * det + coset[:, 0]) * det + coset[:, 1]
    uniq, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    # A motif site holding a few atoms where the others hold hundreds is no site of the crystal
    # (e.g. a handful of atoms indexed across a dislocation's cut): leave those atoms unassigned.
    real = counts >= _MIN_SITE_SHARE * counts.max()
    new_label = np.cumsum(real) - 1
    label[idx] = np.where(real[inverse], new_label[inverse], -1)
    motif_l = np.mod(w[idx[first[real]]], 1.0)
    return label, w, motif_l


def _number(table, xy, val, label, w, motif_l, fine, root):
    """Number sublattices by brightness, index sites from sublattice 0, fit a1, a2 and the motif."""
    n_lab = motif_l.shape[0]
    assigned = label >= 0
    if val is not None and np.any(np.isfinite(val[assigned])):
        sums = np.bincount(label[assigned], weights=np.nan_to_num(val[assigned]), minlength=n_lab)
        cnt = np.bincount(label[assigned], weights=np.isfinite(val[assigned]).astype(float), minlength=n_lab)
        mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), -np.inf)
    else:
        mean = np.bincount(label[assigned], minlength=n_lab).astype(float)  # then most populated first
    order = np.argsort(-mean, kind="stable")  # label order[k] becomes sublattice k
    sub_of_label = np.empty(n_lab, dtype=np.int64)
    sub_of_label[order] = np.arange(n_lab)
    motif = np.mod(motif_l[order] - motif_l[order[0]], 1.0)
    motif[motif > 1 - 1e-6] = 0.0
    sub = np.where(assigned, sub_of_label[np.maximum(label, 0)], -1)

    idx = np.zeros((xy.shape[0], 2), dtype=np.int64)
    a = np.flatnonzero(assigned)
    idx[a] = np.rint(w[a] - motif_l[order[0]] - motif[sub[a]]).astype(np.int64)
    centre_atom = root if assigned[root] else a[np.argmin(np.hypot(*(xy[a] - xy.mean(axis=0)).T))]
    idx[a] -= idx[centre_atom]

    # Least squares: each sublattice has its own origin, all share a1 and a2.
    design = np.zeros((a.size, n_lab + 2))
    design[np.arange(a.size), sub[a]] = 1.0
    design[:, n_lab] = idx[a, 0]
    design[:, n_lab + 1] = idx[a, 1]
    coef = np.linalg.lstsq(design, xy[a], rcond=None)[0]
    a1, a2 = coef[n_lab], coef[n_lab + 1]
    lattice = np.array([a1, a2])
    origins = coef[:n_lab]
    missing = np.bincount(sub[a], minlength=n_lab) == 0
    origins[missing] = coef[0] + motif[missing] @ lattice  # unreachable in practice; keeps shapes
    motif_fit = (origins - origins[0]) @ np.linalg.inv(lattice)

    un = np.flatnonzero(~assigned)
    if un.size:  # the cell an unassigned atom lies in, placed from its nearest assigned atom
        _, nb = cKDTree(xy[a]).query(xy[un])
        b = a[nb]
        frac = idx[b] + motif_fit[sub[b]] + (xy[un] - xy[b]) @ np.linalg.inv(lattice)
        idx[un] = np.floor(frac + 1e-9).astype(np.int64)

    out = table.copy()
    out["sublattice"] = sub
    out["site_i"] = idx[:, 1]
    out["site_j"] = idx[:, 0]
    if "cls" not in out.columns:
        out["cls"] = "host"
    out["cls"] = out["cls"].astype(object)
    out.loc[~assigned, "cls"] = "unknown"
    counts = np.bincount(sub[a], minlength=n_lab)
    if val is not None:
        mean_i = np.array([np.nanmean(val[a][sub[a] == s]) if np.any(np.isfinite(val[a][sub[a] == s]))
                           else np.nan for s in range(n_lab)])
    else:
        mean_i = np.full(n_lab, np.nan)
    info = LatticeInfo(
        a1=a1, a2=a2, origin=origins[0], motif=motif_fit, counts=counts, mean_intensity=mean_i,
        n_unassigned=int(un.size), extent=(float(xy[:, 0].min()), float(xy[:, 0].max()),
                                           float(xy[:, 1].min()), float(xy[:, 1].max())),
        translations=fine,
    )
    return out, info

