"""Structural descriptors resampled onto a spectrum image's pixel grid, with area weighting.

A spectral pixel is a square in the SPECTRAL frame; mapped into the image frame by the
registration's :class:`~atomine.correlate.transform.AffineTransform` it becomes a
parallelogram (its *footprint*). Every function here gives each spectral pixel the mean of
a structural quantity over its footprint:

* :func:`atoms_to_grid` - per-atom values (strain, polarisation, dopant indicator, ...):
  the mean over the atoms inside the footprint. Atom positions are mapped back into the
  spectral frame with the inverse transform and binned by pixel, which is exact for an
  affine map (a point is in the parallelogram iff its pre-image is in the square).
  With ``weighting="area"`` each atom owns its Voronoi cell and the mean is weighted by
  the footprint's area in each cell, for spectral pixels no larger than the atom spacing.
* :func:`map_to_grid` - maps on the image grid (phase abundances, strain maps): the
  area-weighted footprint mean, by bilinear sampling at ``supersample**2`` points.
* :func:`sro_to_grid` - the local Warren-Cowley alpha_1 of dopant-host pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from ..errors import InputError
from ._grid_area import area_means, footprint_points, radius_sums
from .transform import AffineTransform

_SHELL_OFFSETS = {
    1: np.array([(1, 0), (-1, 0), (0, 1), (0, -1)]),
    2: np.array([(1, 1), (1, -1), (-1, 1), (-1, -1)]),
}


def _grid_geometry(spectral_grid) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Pixel-centre coords (x, y in nm) and the signed pixel steps of a (y, x) grid."""
    if not isinstance(spectral_grid, xr.DataArray) or spectral_grid.dims != ("y", "x"):
        raise InputError("spectral_grid must be an xarray.DataArray with dims ('y', 'x'); "
                         "pass one spectral plane, e.g. si.isel(energy=0)")
    steps = []
    coords = []
    for d in ("x", "y"):
        if d not in spectral_grid.coords:
            raise InputError(f"spectral_grid has no '{d}' coordinate; give the pixel centres in nm")
        c = np.asarray(spectral_grid.coords[d].values, dtype=float)
        if c.size < 2 or not np.all(np.isfinite(c)):
            raise InputError(f"spectral_grid needs >= 2 finite '{d}' pixel centres, got {c.size}")
        diff = np.diff(c)
        if diff[0] == 0 or not np.allclose(diff, diff[0], rtol=1e-6, atol=0.0):
            raise InputError(f"spectral_grid '{d}' coordinate must be uniformly spaced and monotonic")
        coords.append(c)
        steps.append(float(diff[0]))
    return coords[0], coords[1], steps[0], steps[1]


def _matrix(transform) -> np.ndarray:
    if transform is None:
        return np.eye(3)
    if not isinstance(transform, AffineTransform):
        raise InputError("transform must be an AffineTransform (spectral -> image) or None, "
                         f"got {type(transform).__name__}")
    return np.asarray(transform.matrix, dtype=float)


def _bin_atoms(table: pd.DataFrame, spectral_grid, transform) -> tuple[np.ndarray, tuple[int, int]]:
    """Flat spectral-pixel index of every atom (-1 outside the grid)."""
    if not isinstance(table, pd.DataFrame) or not {"x", "y"} <= set(table.columns):
        raise InputError("table must be an atom table (pandas DataFrame) with 'x' and 'y' columns in nm")
    xs, ys, dx, dy = _grid_geometry(spectral_grid)
    inv = np.linalg.inv(_matrix(transform))
    xi = table["x"].to_numpy(dtype=float)
    yi = table["y"].to_numpy(dtype=float)
    # image frame -> spectral frame -> fractional pixel index; rounding = membership in the square
    u = inv[0, 0] * xi + inv[0, 1] * yi + inv[0, 2]
    v = inv[1, 0] * xi + inv[1, 1] * yi + inv[1, 2]
    j = np.floor((u - xs[0]) / dx + 0.5)
    i = np.floor((v - ys[0]) / dy + 0.5)
    ny, nx = ys.size, xs.size
    ok = np.isfinite(i) & np.isfinite(j) & (i >= 0) & (i < ny) & (j >= 0) & (j < nx)
    flat = np.full(xi.shape, -1, dtype=np.int64)
    flat[ok] = i[ok].astype(np.int64) * nx + j[ok].astype(np.int64)
    return flat, (ny, nx)


def _positive_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and bool(np.isfinite(v) and v > 0)


def _like(spectral_grid, values: np.ndarray, name: str) -> xr.DataArray:
    return xr.DataArray(values, dims=("y", "x"),
                        coords={"y": spectral_grid.coords["y"], "x": spectral_grid.coords["x"]}, name=name)


def _column_values(table: pd.DataFrame, name: str, spec) -> np.ndarray:
    if callable(spec):
        vals = np.asarray(spec(table), dtype=float)
    elif isinstance(spec, str):
        if spec not in table.columns:
            raise InputError(f"descriptor {name!r}: the atom table has no column {spec!r}; "
                             f"available: {', '.join(map(str, table.columns))}")
        vals = table[spec].to_numpy(dtype=float)
    else:
        raise InputError(f"descriptor {name!r}: give a column name or a callable(table) -> values, got {spec!r}")
    if vals.shape != (len(table),):
        raise InputError(f"descriptor {name!r} gave shape {vals.shape}, expected one value per atom ({len(table)})")
    return vals


def atoms_to_grid(table: pd.DataFrame, columns: Mapping[str, str | Callable], spectral_grid: xr.DataArray,
                  transform: AffineTransform | None = None, *, min_atoms: int = 1, weighting: str = "count",
                  supersample: int = 8, max_distance_nm: float | None = None) -> xr.Dataset:
    """Mean of per-atom descriptors over each spectral pixel's footprint.

    ``weighting="count"`` averages the atoms whose positions fall inside the footprint;
    it needs several atoms per spectral pixel (pixels holding none are NaN).
    ``weighting="area"`` gives each atom its Voronoi cell (the points nearer to it than
    to any other atom with a finite value) and averages the values weighted by the
    area of the footprint lying in each cell, sampled at ``supersample x supersample``
    points. Use it when spectral pixels are comparable to or smaller than the atom
    spacing: every pixel inside the atom field gets a value. It is the definition the
    correlated-pair simulator uses for its truth ``dopant_fraction`` (feed it the A-site
    columns) and tends to the count mean for footprints holding many cells.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table with ``x``, ``y`` in nm (IMAGE frame).
    columns : mapping
        Descriptor name -> column name, or callable(table) -> one value per atom
        (e.g. ``{"dopant_fraction": lambda t: t.cls == "dopant"}``). NaN values are skipped.
    spectral_grid : xarray.DataArray (y, x)
        Any map on the spectral grid; its coords are the pixel centres (SPECTRAL frame, nm).
    transform : AffineTransform or None
        Spectral -> image frame; None means both frames coincide.
    min_atoms : int
        ``"count"`` only: pixels with fewer atoms (with a finite value) get NaN.
    weighting : {"count", "area"}
        Atoms inside the footprint, equally weighted; or Voronoi-cell areas (see above).
    supersample : int
        ``"area"`` only: sample points per spectral-pixel side.
    max_distance_nm : float or None
        ``"area"`` only: sample points farther than this from the nearest atom with a
        finite value are ignored, so pixels outside the atom field stay NaN (a pixel at
        its edge averages its covered part). None: 0.75 x the median nearest-neighbour
        distance of the atoms with a finite value of that descriptor (beyond the
        farthest point of a square lattice's cell, a / sqrt(2) = 0.707 a).

    Returns
    -------
    xarray.Dataset
        One (y, x) variable per descriptor, plus ``n_atoms`` (atoms inside each footprint,
        whatever the weighting).
    """
    if not isinstance(columns, Mapping) or not columns:
        raise InputError("columns must be a non-empty dict: descriptor name -> column name or callable")
    if int(min_atoms) < 1:
        raise InputError(f"min_atoms must be >= 1, got {min_atoms}")
    if weighting not in ("count", "area"):
        raise InputError(f"weighting must be 'count' or 'area', got {weighting!r}")
    if weighting == "area":
        if int(min_atoms) != 1:
            raise InputError("min_atoms applies to weighting='count' only; with 'area' every pixel inside the "
                             "atom field gets a value (use max_distance_nm to bound the field)")
        if not isinstance(supersample, (int, np.integer)) or supersample < 1:
            raise InputError(f"supersample must be a positive integer, got {supersample!r}")
        if max_distance_nm is not None and not _positive_number(max_distance_nm):
            raise InputError(f"max_distance_nm must be a positive number of nm or None, got {max_distance_nm!r}")
    flat, shape = _bin_atoms(table, spectral_grid, transform)
    inside = flat >= 0
    size = shape[0] * shape[1]
    n_atoms = np.bincount(flat[inside], minlength=size).reshape(shape)
    out = {"n_atoms": _like(spectral_grid, n_atoms, "n_atoms")}
    if weighting == "area":
        xs, ys, dx, dy = _grid_geometry(spectral_grid)
        qx, qy = footprint_points(xs, ys, dx, dy, _matrix(transform), int(supersample))
        ax, ay = table["x"].to_numpy(dtype=float), table["y"].to_numpy(dtype=float)
        for name, spec in columns.items():
            vals = _column_values(table, name, spec)
            out[name] = _like(spectral_grid, area_means(ax, ay, vals, qx, qy, max_distance_nm), name)
        return xr.Dataset(out)
    for name, spec in columns.items():
        vals = _column_values(table, name, spec)
        use = inside & np.isfinite(vals)
        total = np.bincount(flat[use], weights=vals[use], minlength=size)
        count = np.bincount(flat[use], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count >= int(min_atoms), total / np.maximum(count, 1), np.nan)
        out[name] = _like(spectral_grid, mean.reshape(shape), name)
    return xr.Dataset(out)


def _image_geometry(image_map) -> tuple[np.ndarray, float, float, float, float]:
    if not isinstance(image_map, xr.DataArray) or image_map.dims != ("y", "x"):
        raise InputError("image_map must be an xarray.DataArray with dims ('y', 'x') and coords in nm")
    xs, ys, dx, dy = _grid_geometry(image_map)
    return np.asarray(image_map.values, dtype=float), xs[0], ys[0], dx, dy


def map_to_grid(image_map: xr.DataArray, spectral_grid: xr.DataArray, transform: AffineTransform | None = None,
                *, supersample: int = 4) -> xr.DataArray:
    """Area-weighted mean of an image-grid map over each spectral pixel's footprint.

    Each spectral pixel square is divided into ``supersample x supersample`` equal
    sub-squares whose centres are mapped into the image frame and sampled bilinearly;
    their plain mean is the area-weighted footprint mean (equal sub-areas, affine map).
    It is exact for maps that are linear in position.

    Parameters
    ----------
    image_map : xarray.DataArray (y, x)
        Map on the IMAGE grid (coords in nm), e.g. a phase abundance or a strain map.
    spectral_grid : xarray.DataArray (y, x)
        Map on the spectral grid (SPECTRAL frame pixel centres, nm).
    transform : AffineTransform or None
        Spectral -> image frame; None means both frames coincide.
    supersample : int
        Sample points per spectral pixel side.

    Returns
    -------
    xarray.DataArray (y, x) on the spectral grid
        NaN where any part of the footprint leaves the image (or touches NaN in the map).
    """
    s = int(supersample)
    if s < 1:
        raise InputError(f"supersample must be >= 1, got {supersample}")
    img, x0, y0, idx, idy = _image_geometry(image_map)
    xs, ys, dx, dy = _grid_geometry(spectral_grid)
    m = _matrix(transform)
    off = ((np.arange(s) + 0.5) / s - 0.5)
    # spectral-frame sample points: (ny, nx, s, s)
    px = xs[None, :, None, None] + dx * off[None, None, None, :]
    py = ys[:, None, None, None] + dy * off[None, None, :, None]
    px, py = np.broadcast_arrays(px, py)
    qx = m[0, 0] * px + m[0, 1] * py + m[0, 2]
    qy = m[1, 0] * px + m[1, 1] * py + m[1, 2]
    col = (qx - x0) / idx
    row = (qy - y0) / idy
    ny_i, nx_i = img.shape
    tol = 1e-9
    # the footprint (convex) lies in the image rectangle iff its four corners do
    outside = np.zeros((ys.size, xs.size), bool)
    for cx in (-0.5, 0.5):
        for cy in (-0.5, 0.5):
            u, v = xs[None, :] + cx * dx, ys[:, None] + cy * dy
            c = (m[0, 0] * u + m[0, 1] * v + m[0, 2] - x0) / idx
            r = (m[1, 0] * u + m[1, 1] * v + m[1, 2] - y0) / idy
            outside |= (c < -0.5 - tol) | (c > nx_i - 0.5 + tol) | (r < -0.5 - tol) | (r > ny_i - 0.5 + tol)
    # the image covers [-0.5, n-0.5] px; an odd reflection pads one pixel by linear
    # extrapolation, so a linear map stays exact out to the image's edge
    padded = np.pad(img, 1, mode="reflect", reflect_type="odd") if min(img.shape) >= 2 else np.pad(img, 1, mode="edge")
    vals = ndimage.map_coordinates(padded, [np.clip(row, -0.5, ny_i - 0.5).ravel() + 1,
                                            np.clip(col, -0.5, nx_i - 0.5).ravel() + 1],
                                   order=1, mode="nearest").reshape(col.shape)
    out = vals.mean(axis=(2, 3))
    out[outside] = np.nan
    name = image_map.name if image_map.name is not None else "value"
    return _like(spectral_grid, out, str(name))


def _dopant_sublattice(table: pd.DataFrame) -> pd.DataFrame:
    need = {"site_i", "site_j", "cls"}
    if not need <= set(table.columns):
        raise InputError(f"SRO needs an atom table with columns {sorted(need)}; run the atoms workflow "
                         "(it indexes the lattice) first")
    if "sublattice" in table.columns:
        dop = table.loc[table["cls"] == "dopant", "sublattice"]
        if dop.empty:
            raise InputError("SRO needs dopants: the atom table has no atom with cls == 'dopant'")
        return table[table["sublattice"] == dop.value_counts().idxmax()]
    return table


def sro_to_grid(table: pd.DataFrame, spectral_grid: xr.DataArray, transform: AffineTransform | None = None,
                *, shell: int = 1, window_px: int = 1, radius_nm: float | None = None) -> xr.DataArray:
    """Local Warren-Cowley alpha of dopant-host pairs on the spectral grid.

    Only the sublattice that holds most dopants is used. For every dopant ``A`` on it the
    ``shell`` neighbours are found by lattice-index offsets (shell 1: (+-1, 0), (0, +-1);
    shell 2: the four diagonals of ``site_i``, ``site_j``), which assumes the atoms workflow's
    (rectangular) site indexing; neighbours that are missing or neither host nor dopant are
    skipped. A pair belongs to the spectral pixel whose footprint holds its dopant, summed over
    a ``window_px x window_px`` window of pixels. With ``c`` the dopant fraction among the
    sublattice's host + dopant atoms in the same window, ``P(D|D)`` the fraction of dopant
    neighbours of those dopants::

        alpha = (P(D|D) - c) / (1 - c)   ( = 1 - P(H|D) / (1 - c) )

    i.e. 0 for a random local arrangement, > 0 when dopants cluster, < 0 when they avoid
    each other. The local ``c`` (not the global one) keeps alpha from simply echoing the
    dopant density.

    alpha from a handful of sites is mostly noise: pick the window to hold >= ~20 sites of
    the sublattice (a side of >= ~4.5 lattice spacings). A spectral pixel of 0.2 nm on
    SrTiO3 (a = 0.39 nm) holds ~0.26 sites, so use ``window_px=9`` (1.8 nm) or, equivalently
    and independent of the pixel size, ``radius_nm=1.0`` (~20 sites).

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed atom table (``x``, ``y`` in nm, IMAGE frame; ``site_i``, ``site_j``, ``cls``).
    spectral_grid : xarray.DataArray (y, x)
        Any map on the spectral grid (SPECTRAL frame pixel centres, nm).
    transform : AffineTransform or None
        Spectral -> image frame; None means both frames coincide.
    shell : {1, 2}
        Neighbour shell of the pairs.
    window_px : int
        Odd side of the window of spectral pixels pooled per pixel (1: the pixel alone).
    radius_nm : float, optional
        Instead of a pixel window: pool the dopants (their pairs) and sites within this
        distance (nm, image frame) of each pixel centre's image position. Exclusive with
        ``window_px > 1``.

    Returns
    -------
    xarray.DataArray (y, x), name ``sro_alpha{shell}``
        NaN where the window holds no dopant pair or no host.
    """
    if int(shell) not in _SHELL_OFFSETS:
        raise InputError(f"shell must be 1 or 2, got {shell}")
    w = int(window_px)
    if w < 1 or w % 2 == 0:
        raise InputError(f"window_px must be a positive odd integer (a centred window), got {window_px}")
    if radius_nm is not None:
        if w > 1:
            raise InputError("give either window_px > 1 or radius_nm, not both")
        if not _positive_number(radius_nm):
            raise InputError(f"radius_nm must be a positive number of nm or None, got {radius_nm!r}")
    if not isinstance(table, pd.DataFrame):
        raise InputError("table must be an atom table (pandas DataFrame)")
    sub = _dopant_sublattice(table)
    sub = sub[sub["cls"].isin(["host", "dopant"])]
    flat, shape = _bin_atoms(sub, spectral_grid, transform)
    si = sub["site_i"].to_numpy(dtype=np.int64)
    sj = sub["site_j"].to_numpy(dtype=np.int64)
    is_dop = (sub["cls"] == "dopant").to_numpy()
    # sorted integer keys give a vectorised (site_i, site_j) -> row lookup
    span = int(np.abs(sj).max()) * 2 + 8 if sj.size else 8
    keys = si * span + sj
    order = np.argsort(keys, kind="stable")
    skeys = keys[order]
    d = np.flatnonzero(is_dop)
    offs = _SHELL_OFFSETS[int(shell)]
    nbr_keys = (si[d, None] + offs[None, :, 0]) * span + (sj[d, None] + offs[None, :, 1])
    pos = np.clip(np.searchsorted(skeys, nbr_keys), 0, max(skeys.size - 1, 0))
    found = skeys[pos] == nbr_keys if skeys.size else np.zeros_like(nbr_keys, dtype=bool)
    nbr_dop = np.where(found, is_dop[order[pos]], False)
    size = shape[0] * shape[1]
    if radius_nm is not None:
        pairs, dd, n_all, n_dop = radius_sums(sub["x"].to_numpy(dtype=float), sub["y"].to_numpy(dtype=float), is_dop,
                                              d, found.sum(axis=1), nbr_dop.sum(axis=1), spectral_grid, transform,
                                              float(radius_nm))
        return _alpha(pairs, dd, n_all, n_dop, spectral_grid, shell)
    first = np.repeat(flat[d], nbr_keys.shape[1])
    keep = found.ravel() & (first >= 0)
    pairs = np.bincount(first[keep], minlength=size).reshape(shape).astype(float)
    dd = np.bincount(first[keep], weights=nbr_dop.ravel()[keep].astype(float), minlength=size).reshape(shape)
    ins = flat >= 0
    n_all = np.bincount(flat[ins], minlength=size).reshape(shape).astype(float)
    n_dop = np.bincount(flat[ins], weights=is_dop[ins].astype(float), minlength=size).reshape(shape)
    if w > 1:
        kernel = np.ones((w, w))
        pairs, dd, n_all, n_dop = (ndimage.convolve(a, kernel, mode="constant") for a in (pairs, dd, n_all, n_dop))
    return _alpha(pairs, dd, n_all, n_dop, spectral_grid, shell)


def _alpha(pairs, dd, n_all, n_dop, spectral_grid, shell) -> xr.DataArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        c = n_dop / n_all
        alpha = (dd / pairs - c) / (1.0 - c)
    alpha[(pairs == 0) | (c >= 1.0) | ~np.isfinite(alpha)] = np.nan
    return _like(spectral_grid, alpha, f"sro_alpha{int(shell)}")


__all__ = ["atoms_to_grid", "map_to_grid", "sro_to_grid"]
