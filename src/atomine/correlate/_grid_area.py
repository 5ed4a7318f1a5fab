"""Area (Voronoi-cell) weighting of per-atom values over spectral-pixel footprints.

Used by :func:`atomine.correlate.grid.atoms_to_grid` with ``weighting="area"``: each atom
owns its Voronoi cell (the points nearer to it than to any other atom with a value), and a
spectral pixel gets the mean of its atoms' values weighted by the area of the pixel's
footprint lying in each cell. The footprint is sampled at ``s x s`` equal sub-area centres
(the same rule as :func:`atomine.correlate.grid.map_to_grid` and the correlated-pair
simulator's truth ``dopant_fraction``), so the result is the exact area-weighted mean up to
the sampling of cell boundaries (error ~ 1 / s of a cell edge's share of the footprint).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError


def footprint_points(xs: np.ndarray, ys: np.ndarray, dx: float, dy: float, m: np.ndarray,
                     s: int) -> tuple[np.ndarray, np.ndarray]:
    """Image-frame (x, y) in nm of the ``s*s`` sub-area centres of every spectral pixel: (ny, nx, s*s)."""
    off = (np.arange(s) + 0.5) / s - 0.5
    px = xs[None, :, None, None] + dx * off[None, None, None, :]
    py = ys[:, None, None, None] + dy * off[None, None, :, None]
    px, py = np.broadcast_arrays(px, py)
    qx = m[0, 0] * px + m[0, 1] * py + m[0, 2]
    qy = m[1, 0] * px + m[1, 1] * py + m[1, 2]
    shape = (ys.size, xs.size, s * s)
    return qx.reshape(shape), qy.reshape(shape)


def median_nn_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Median nearest-neighbour distance (nm) of a point set (>= 2 distinct points)."""
    if x.size < 2:
        raise InputError("area weighting needs at least 2 atoms with a finite value to set max_distance_nm; "
                         "give max_distance_nm explicitly")
    d, _ = cKDTree(np.c_[x, y]).query(np.c_[x, y], k=2)
    med = float(np.median(d[:, 1]))
    if not med > 0:
        raise InputError("the atom table has coincident atoms (median nearest-neighbour distance 0); "
                         "give max_distance_nm explicitly")
    return med


def area_means(x: np.ndarray, y: np.ndarray, vals: np.ndarray, qx: np.ndarray, qy: np.ndarray,
               max_distance_nm: float | None) -> np.ndarray:
    """Per-pixel area-weighted mean of ``vals`` over the Voronoi cells of the atoms at (x, y).

    Parameters
    ----------
    x, y, vals : numpy.ndarray
        Image-frame atom positions (nm) and their values; only finite values are used.
    qx, qy : numpy.ndarray (ny, nx, n)
        Image-frame sample points (nm) of each pixel's footprint.
    max_distance_nm : float or None
        Sample points farther than this from their nearest atom are ignored (outside the
        atom field); None: 0.75 x the median nearest-neighbour distance of the atoms used.

    Returns
    -------
    numpy.ndarray (ny, nx)
        NaN where no sample point of the footprint is within reach of an atom.
    """
    use = np.isfinite(vals) & np.isfinite(x) & np.isfinite(y)
    x, y, v = x[use], y[use], vals[use]
    if v.size == 0:
        return np.full(qx.shape[:2], np.nan)
    reach = 0.75 * median_nn_distance(x, y) if max_distance_nm is None else float(max_distance_nm)
    # distance_upper_bound makes points out of reach come back with index == v.size
    _, idx = cKDTree(np.c_[x, y]).query(np.c_[qx.ravel(), qy.ravel()], distance_upper_bound=reach)
    hit = (idx < v.size).reshape(qx.shape)
    got = np.where(hit, v[np.minimum(idx, v.size - 1)].reshape(qx.shape), 0.0)
    n = hit.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, got.sum(axis=2) / np.maximum(n, 1), np.nan)


def radius_sums(x: np.ndarray, y: np.ndarray, is_dop: np.ndarray, dopants: np.ndarray, n_found: np.ndarray,
                n_dd: np.ndarray, spectral_grid, transform, radius_nm: float) -> tuple[np.ndarray, ...]:
    """Per spectral pixel: pairs, dopant-dopant pairs, sites and dopants within ``radius_nm`` of its centre.

    Parameters
    ----------
    x, y, is_dop : numpy.ndarray
        Image-frame positions (nm) of the sublattice's host + dopant sites, and which are dopants.
    dopants : numpy.ndarray of int
        Rows of the dopants; ``n_found`` / ``n_dd`` are their neighbours found / dopant neighbours.
    spectral_grid, transform
        As in :func:`atomine.correlate.grid.sro_to_grid`.
    radius_nm : float
        Pooling radius (image frame, nm).

    Returns
    -------
    pairs, dd, n_all, n_dop : numpy.ndarray (ny, nx)
    """
    from .grid import _grid_geometry, _matrix  # shared validation of the grid and transform

    xs, ys, _, _ = _grid_geometry(spectral_grid)
    m = _matrix(transform)
    u, v = np.meshgrid(xs, ys)
    cx = m[0, 0] * u + m[0, 1] * v + m[0, 2]
    cy = m[1, 0] * u + m[1, 1] * v + m[1, 2]
    shape = u.shape
    size = u.size
    centres = cKDTree(np.c_[cx.ravel(), cy.ravel()])
    # (pixel, site) pairs within the radius as index arrays: no loop over pixels
    hits = centres.sparse_distance_matrix(cKDTree(np.c_[x, y]), radius_nm, output_type="ndarray")
    pix, site = hits["i"].astype(np.int64), hits["j"].astype(np.int64)
    per_site_pairs = np.zeros(x.size)
    per_site_dd = np.zeros(x.size)
    per_site_pairs[dopants] = n_found
    per_site_dd[dopants] = n_dd

    def total(weights):
        return np.bincount(pix, weights=weights, minlength=size).reshape(shape).astype(float)

    return (total(per_site_pairs[site]), total(per_site_dd[site]), total(np.ones(site.size)),
            total(is_dop[site].astype(float)))
