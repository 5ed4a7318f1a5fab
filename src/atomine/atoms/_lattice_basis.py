"""Geometric lattice of an atom table: translations from vector-PDF peaks, then the motif.

Private helpers of :mod:`atomine.atoms.sublattice`. "Geometric" means positions only:
the translations found here map the point set onto itself; whether they also map
every column onto a column of the same brightness is decided later from intensities.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import InputError
from .vector_pdf import neighbour_vectors

# A PDF peak is a translation of the point set when at least this fraction of the atoms
# have a neighbour at that vector: missing atoms and outliers lower a translation's
# weight a little, while an intra-cell vector (e.g. metal -> chalcogen in a honeycomb)
# reaches only the share of atoms on its source site (<= 1/2 for two sites).
MIN_TRANSLATION_WEIGHT = 0.75
# Origins used for the PDF: a few thousand interior atoms pin the peaks to ~1 pm.
_MAX_ORIGINS = 4000
# A motif site is kept when it holds at least this fraction of the fullest site's atoms.
_MIN_SITE_FRACTION = 0.2


def _interior(xy: np.ndarray, margin: float) -> np.ndarray:
    """Indices of atoms farther than ``margin`` from the bounding box edge (all if too few)."""
    lo, hi = xy.min(axis=0) + margin, xy.max(axis=0) - margin
    inside = np.flatnonzero(np.all((xy >= lo) & (xy <= hi), axis=1))
    # Edge atoms miss neighbours outside the field and would bias weights low; a tiny
    # table has no interior, so then every atom is an origin.
    return inside if inside.size >= 30 else np.arange(xy.shape[0])


def pdf_peaks(xy: np.ndarray, radius: float, tol: float):
    """Peaks of the vector PDF within ``radius`` (nm): positions (k, 2) and weights (k,).

    The weight of a peak is the fraction of origin atoms with a neighbour within ``tol``
    of that vector, a direct estimate of how many atoms the vector maps onto atoms.
    """
    origins = _interior(xy, radius)
    if origins.size > _MAX_ORIGINS:
        origins = origins[np.linspace(0, origins.size - 1, _MAX_ORIGINS).astype(np.int64)]
    vec = neighbour_vectors(xy, radius, pairs_of=(origins, np.arange(xy.shape[0])))
    if vec.shape[0] == 0:
        return np.zeros((0, 2)), np.zeros(0)
    bin_nm = tol / 4.0
    half = int(np.ceil(radius / bin_nm))
    nb = 2 * half + 1
    ix = np.clip(np.rint(vec[:, 0] / bin_nm).astype(np.int64) + half, 0, nb - 1)
    iy = np.clip(np.rint(vec[:, 1] / bin_nm).astype(np.int64) + half, 0, nb - 1)
    hist = np.bincount(iy * nb + ix, minlength=nb * nb).reshape(nb, nb).astype(np.float64)
    smooth = ndimage.gaussian_filter(hist, 1.0, mode="constant")
    size = 2 * int(np.ceil(tol / bin_nm)) + 1
    is_max = (smooth == ndimage.maximum_filter(smooth, size=size, mode="constant")) & (smooth > 0)
    py, px = np.nonzero(is_max)
    cand = np.column_stack([(px - half) * bin_nm, (py - half) * bin_nm])
    cand = cand[np.hypot(cand[:, 0], cand[:, 1]) > 2 * tol]  # the origin is no neighbour
    if cand.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    # Refine each peak as the mean of the vectors around it (twice: the first pass moves
    # the window onto the peak), and weigh it by how many origins it holds.
    vtree = cKDTree(vec)
    peaks, weights = [], []
    for c in cand:
        for _ in range(2):
            members = vtree.query_ball_point(c, tol)
            if not members:
                break
            c = vec[members].mean(axis=0)
        if members:
            peaks.append(c)
            weights.append(len(members) / origins.size)
    peaks, weights = np.asarray(peaks).reshape(-1, 2), np.asarray(weights)
    order = np.argsort(-weights, kind="stable")
    peaks, weights = peaks[order], weights[order]
    # Two maxima of one broad peak converge to the same place: keep the first.
    keep = np.ones(len(peaks), dtype=bool)
    for k in range(len(peaks)):
        if keep[k]:
            close = np.hypot(*(peaks[k + 1 :] - peaks[k]).T) < tol
            keep[k + 1 :][close] = False
    return peaks[keep], weights[keep]


def reduce_basis(basis: np.ndarray) -> np.ndarray:
    """Gauss-Lagrange reduced basis (rows) of the 2-D lattice spanned by ``basis`` rows."""
    a, b = basis[0].astype(np.float64), basis[1].astype(np.float64)
    for _ in range(100):
        if b @ b < a @ a:
            a, b = b, a
        mu = np.rint((a @ b) / (a @ a))
        if mu == 0:
            break
        b = b - mu * a
    return np.array([a, b])


def translations(xy: np.ndarray, radius: float, tol: float) -> np.ndarray:
    """Reduced basis (rows f1, f2 in nm) of the translations that map the point set onto itself."""
    peaks, weights = pdf_peaks(xy, radius, tol)
    trans = peaks[weights >= MIN_TRANSLATION_WEIGHT]
    if len(trans) < 2:
        raise InputError(
            "the atom positions show no periodic lattice (no two independent translations in the "
            "vector PDF); check that the table holds atoms of one crystal grain"
        )
    length = np.hypot(trans[:, 0], trans[:, 1])
    trans = trans[np.argsort(length, kind="stable")]
    f1 = trans[0]
    sines = np.abs(f1[0] * trans[:, 1] - f1[1] * trans[:, 0]) / (np.hypot(*f1) * np.hypot(*trans.T))
    independent = np.flatnonzero(sines > 0.3)
    if independent.size == 0:
        raise InputError("the atom positions are periodic along one direction only; a 2-D lattice is needed")
    basis = reduce_basis(np.array([f1, trans[independent[0]]]))
    # Least squares over every translation peak that is an integer combination refines the
    # basis from ~bin precision to the mean of many thousands of vectors.
    n = trans @ np.linalg.inv(basis)
    ok = np.all(np.abs(n - np.rint(n)) < 0.15, axis=1)
    if ok.sum() >= 2:
        basis = np.linalg.lstsq(np.rint(n[ok]), trans[ok], rcond=None)[0]
    return basis


def motif(xy: np.ndarray, basis: np.ndarray, centre: np.ndarray, tol: float, n_local: int = 600) -> np.ndarray:
    """Fractional positions (S, 2) in [0, 1) of the geometric motif sites, from atoms near ``centre``.

    Only the ``n_local`` atoms nearest ``centre`` are used, so that a slow strain gradient
    over a large field cannot smear the clusters of fractional coordinates.
    """
    k = min(n_local, xy.shape[0])
    _, near = cKDTree(xy).query(centre, k=k)
    near = np.atleast_1d(near)
    frac = np.mod((xy[near] - centre) @ np.linalg.inv(basis), 1.0)
    frac[frac >= 1.0] = 0.0  # mod can round up to exactly 1.0
    r_frac = tol / max(np.hypot(*basis[0]), np.hypot(*basis[1]))
    tree = cKDTree(frac, boxsize=1.0)
    counts = tree.query_ball_point(frac, r_frac, return_length=True)
    free = np.ones(k, dtype=bool)
    sites: list[np.ndarray] = []
    first = None
    while free.any():
        best = np.flatnonzero(free)[np.argmax(counts[free])]
        if first is None:
            first = counts[best]
        if counts[best] < max(3, _MIN_SITE_FRACTION * first):
            break
        d = np.mod(frac - frac[best] + 0.5, 1.0) - 0.5
        members = np.hypot(d[:, 0], d[:, 1]) < r_frac
        site = np.mod(frac[best] + d[members].mean(axis=0), 1.0)
        sites.append(site)
        d = np.mod(frac - site + 0.5, 1.0) - 0.5
        free &= np.hypot(d[:, 0], d[:, 1]) >= 2 * r_frac
    return np.mod(np.asarray(sites).reshape(-1, 2), 1.0)
