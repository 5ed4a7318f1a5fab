"""Vector pair distribution functions of atom positions.

The vector PDF is the 2-D histogram of the difference vectors ``r_j - r_i`` between
every atom ``i`` and its neighbours ``j`` within a radius. Its peaks are the lattice
translations and the intra-cell (motif) vectors of the crystal, which is what
:mod:`atomine.atoms.sublattice` reads the lattice and motif from without a CIF.

Pairs come from a KD-tree (:class:`scipy.spatial.cKDTree`), so memory grows with the
number of pairs within the radius, never with N^2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from ..errors import InputError

# Above this many bins per axis a histogram is mostly empty and slow to draw: refuse.
_MAX_BINS_PER_AXIS = 2001


def positions(data, name: str = "atoms") -> np.ndarray:
    """Atom positions (n, 2) as float64 (x, y) in nm from an atom table or an array.

    Parameters
    ----------
    data : pandas.DataFrame or array_like, shape (n, 2)
        An atom table with columns ``x`` and ``y`` (nm), or the positions themselves.
    name : str
        How the input is called in error messages.

    Raises
    ------
    InputError
        Missing columns, wrong shape, no rows, or NaN/inf positions.
    """
    if isinstance(data, pd.DataFrame):
        missing = [c for c in ("x", "y") if c not in data.columns]
        if missing:
            raise InputError(f"{name} has no column(s) {', '.join(missing)}; pass an atom table with x, y in nm")
        xy = data[["x", "y"]].to_numpy(dtype=np.float64)
    else:
        try:
            xy = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name} is neither an atom table nor an (n, 2) array of positions in nm") from exc
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise InputError(f"{name} has shape {xy.shape}; positions must be an (n, 2) array of (x, y) in nm")
    if xy.shape[0] == 0:
        raise InputError(f"{name} is empty; there are no atoms to analyse")
    if not np.all(np.isfinite(xy)):
        n_bad = int(np.sum(~np.all(np.isfinite(xy), axis=1)))
        raise InputError(f"{name} has {n_bad} atom(s) with NaN or inf x/y; drop those rows first")
    return xy


def median_nn_distance(xy: np.ndarray) -> float:
    """Median nearest-neighbour distance (nm) of the positions ``xy`` (n, 2).

    Used as the natural length scale of an atom table, so that no parameter of the
    sublattice analysis needs a magic number in nm.
    """
    xy = positions(xy)
    if xy.shape[0] < 2:
        raise InputError("need at least two atoms to measure a nearest-neighbour distance")
    dist, _ = cKDTree(xy).query(xy, k=2)
    d = dist[:, 1]
    d = d[d > 0]  # exact duplicates say nothing about the lattice
    if d.size == 0:
        raise InputError("all atoms sit at the same position; there is no lattice to analyse")
    return float(np.median(d))


def _check_radius(radius_nm) -> float:
    r = float(radius_nm)
    if not np.isfinite(r) or r <= 0:
        raise InputError(f"radius_nm must be a positive length in nm, got {radius_nm!r}")
    return r


def _selection(sel, data, n: int) -> np.ndarray:
    """Index array of one side of ``pairs_of``: a sublattice number, a boolean mask or indices."""
    if np.isscalar(sel) and not isinstance(sel, (bool, np.bool_)):
        if not isinstance(data, pd.DataFrame) or "sublattice" not in data.columns:
            raise InputError("pairs_of with sublattice numbers needs an atom table with a 'sublattice' column")
        return np.flatnonzero(data["sublattice"].to_numpy() == int(sel))
    arr = np.asarray(sel)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InputError(f"a boolean selection in pairs_of must have one entry per atom ({n}), got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise InputError("pairs_of entries must be sublattice numbers, boolean masks or integer index arrays")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise InputError(f"pairs_of indices must lie in 0..{n - 1}")
    return arr.astype(np.int64)


def neighbour_vectors(data, radius_nm: float, *, pairs_of=None, return_pairs: bool = False):
    """All difference vectors between atoms closer than ``radius_nm``.

    Parameters
    ----------
    data : pandas.DataFrame or array_like, shape (n, 2)
        Atom table (columns ``x``, ``y`` in nm) or positions (x, y) in nm.
    radius_nm : float
        Largest neighbour distance kept (nm).
    pairs_of : tuple of two selections, optional
        ``(from, to)``: keep only vectors from atoms of the first selection to atoms of the
        second (cross-sublattice vectors). Each selection is a sublattice number (needs a
        ``sublattice`` column), a boolean mask over the atoms, or an integer index array.
        By default every ordered pair is kept, so each vector appears with its opposite.
    return_pairs : bool
        Also return the atom indices ``i`` (origin) and ``j`` (neighbour) of every vector.

    Returns
    -------
    vectors : numpy.ndarray, shape (m, 2)
        ``(dx, dy) = r_j - r_i`` in nm, float64.
    i, j : numpy.ndarray of int64, shape (m,)
        Only with ``return_pairs``.
    """
    xy = positions(data)
    r = _check_radius(radius_nm)
    n = xy.shape[0]
    if pairs_of is None:
        pairs = cKDTree(xy).query_pairs(r, output_type="ndarray")
        i = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int64)
        j = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int64)
    else:
        if not isinstance(pairs_of, (tuple, list)) or len(pairs_of) != 2:
            raise InputError("pairs_of must be a pair (from, to) of selections")
        ia, ib = (_selection(s, data, n) for s in pairs_of)
        if ia.size == 0 or ib.size == 0:
            i = j = np.zeros(0, dtype=np.int64)
        else:
            sdm = cKDTree(xy[ia]).sparse_distance_matrix(cKDTree(xy[ib]), r, output_type="ndarray")
            i, j = ia[sdm["i"]], ib[sdm["j"]]
            keep = i != j  # an atom is not its own neighbour when the selections overlap
            i, j = i[keep], j[keep]
    vectors = xy[j] - xy[i]
    return (vectors, i, j) if return_pairs else vectors


def _bin_centres(radius: float, bin_nm: float) -> np.ndarray:
    half = int(np.ceil(radius / bin_nm))
    if 2 * half + 1 > _MAX_BINS_PER_AXIS:
        raise InputError(
            f"bin_nm={bin_nm:g} gives {2 * half + 1} bins per axis for radius {radius:g} nm; use a larger bin"
        )
    return np.arange(-half, half + 1) * bin_nm


def vector_pdf(data, radius_nm: float, bin_nm: float | None = None, *, by: str | None = None, pairs_of=None):
    """2-D vector pair distribution function of an atom table.

    Parameters
    ----------
    data : pandas.DataFrame or array_like, shape (n, 2)
        Atom table (``x``, ``y`` in nm; ``sublattice`` for ``by="sublattice"``) or positions.
    radius_nm : float
        Largest neighbour distance (nm).
    bin_nm : float, optional
        Bin width (nm). Default: 1/20 of the median nearest-neighbour distance, fine enough
        to resolve picometre-scale peak shifts on any lattice.
    by : {None, "sublattice"}
        ``"sublattice"``: one PDF per ordered pair of sublattices (atoms with sublattice < 0
        are left out), i.e. the cross-sublattice vector PDFs.
    pairs_of : tuple, optional
        As in :func:`neighbour_vectors` (only without ``by``).

    Returns
    -------
    xarray.DataArray
        Dims ``("dy", "dx")`` (nm), or ``("from_sublattice", "to_sublattice", "dy", "dx")``.
        Values are neighbours per origin atom per bin: summing over the bins gives the mean
        number of neighbours within the radius, so tables of different size compare directly.
    """
    xy = positions(data)
    r = _check_radius(radius_nm)
    if bin_nm is None:
        bin_nm = median_nn_distance(xy) / 20.0 if xy.shape[0] > 1 else r / 50.0
    bin_nm = float(bin_nm)
    if not np.isfinite(bin_nm) or bin_nm <= 0:
        raise InputError(f"bin_nm must be a positive length in nm, got {bin_nm!r}")
    centres = _bin_centres(r, bin_nm)
    nb = centres.size
    coords = {"dy": ("dy", centres, {"units": "nm"}), "dx": ("dx", centres, {"units": "nm"})}
    attrs = {"units": "neighbours per atom per bin", "radius_nm": r, "bin_nm": bin_nm}

    if by is None:
        vec, i, _ = neighbour_vectors(data, r, pairs_of=pairs_of, return_pairs=True)
        n_origin = xy.shape[0] if pairs_of is None else _selection(pairs_of[0], data, xy.shape[0]).size
        counts = _histogram(vec, centres, bin_nm, np.zeros(len(vec), dtype=np.int64), 1)[0]
        pdf = counts / max(n_origin, 1)
        return xr.DataArray(pdf, dims=("dy", "dx"), coords=coords, attrs={**attrs, "n_atoms": int(n_origin)})

    if by != "sublattice":
        raise InputError(f"by must be None or 'sublattice', got {by!r}")
    if pairs_of is not None:
        raise InputError("give either by='sublattice' or pairs_of, not both")
    if not isinstance(data, pd.DataFrame) or "sublattice" not in data.columns:
        raise InputError("by='sublattice' needs an atom table with a 'sublattice' column (run identify_sublattices)")
    sub = data["sublattice"].to_numpy().astype(np.int64)
    labels = np.unique(sub[sub >= 0])
    if labels.size == 0:
        raise InputError("no atom is assigned to a sublattice (all sublattice values are negative)")
    vec, i, j = neighbour_vectors(xy, r, return_pairs=True)
    code = np.full(sub.shape, -1, dtype=np.int64)
    code[sub >= 0] = np.searchsorted(labels, sub[sub >= 0])
    keep = (code[i] >= 0) & (code[j] >= 0)
    nl = labels.size
    pair = code[i[keep]] * nl + code[j[keep]]
    counts = _histogram(vec[keep], centres, bin_nm, pair, nl * nl).reshape(nl, nl, nb, nb)
    n_from = np.bincount(code[code >= 0], minlength=nl).astype(np.float64)
    pdf = counts / n_from[:, None, None, None]
    coords.update({"from_sublattice": labels, "to_sublattice": labels})
    return xr.DataArray(
        pdf, dims=("from_sublattice", "to_sublattice", "dy", "dx"), coords=coords, attrs=attrs
    )


def _histogram(vec: np.ndarray, centres: np.ndarray, bin_nm: float, group: np.ndarray, n_groups: int):
    """Counts of ``vec`` (dx, dy) in square bins around ``centres``, one (dy, dx) map per group."""
    nb = centres.size
    ix = np.rint((vec[:, 0] - centres[0]) / bin_nm).astype(np.int64)
    iy = np.rint((vec[:, 1] - centres[0]) / bin_nm).astype(np.int64)
    ok = (ix >= 0) & (ix < nb) & (iy >= 0) & (iy < nb)
    flat = (group[ok] * nb + iy[ok]) * nb + ix[ok]
    return np.bincount(flat, minlength=n_groups * nb * nb).astype(np.float64).reshape(n_groups, nb, nb)
