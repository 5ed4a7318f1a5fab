"""Per-atom column intensities and their normalisation by same-sublattice neighbours.

The integrated intensity of a column (disk sum minus a local background, or the fitted
Gaussian's volume) is the statistic that separates dopants from hosts in HAADF (roughly
proportional to sum Z^n of the column). Thickness, focus and background drift change it
smoothly across a field of view; dividing each atom's value by the median of its
same-sublattice neighbours cancels those slow variations while a lone dopant, outvoted
by its neighbours, keeps its contrast.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError

_TILE_PX = 1024  # atoms are processed per image tile so a dask image is read region by region
_CHUNK = 4096  # atoms per vectorised gather: bounds the (atoms, window pixels) work arrays to ~100 MB


def check_table(table, columns, what: str = "table") -> pd.DataFrame:
    """Raise InputError unless ``table`` is a non-empty DataFrame with finite numeric ``columns``."""
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame (an atom table), got {type(table).__name__}")
    if len(table) == 0:
        raise InputError(f"{what} is empty: no atoms to analyse; find atoms first")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)}")
    for c in columns:
        v = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(v).all():
            raise InputError(f"{what} column {c!r} has NaN, inf or non-numeric values; drop or fix those rows")
    return table


def _scales(image) -> tuple[float, float]:
    """Pixel size (y, x) from a DataArray's coords, else 1 (pixel units)."""
    out = []
    for d in ("y", "x"):
        c = getattr(image, "coords", {}).get(d) if hasattr(image, "coords") else None
        if c is None or c.size < 2:
            out.append(1.0)
            continue
        step = float(abs(c.values[1] - c.values[0]))
        if not np.isfinite(step) or step == 0:
            raise InputError(f"image coordinate {d!r} has an unusable pixel size {step!r}; fix the calibration")
        out.append(step)
    return out[0], out[1]


def _raw(image):
    arr = image.data if hasattr(image, "dims") else image  # an xarray's numpy or dask array, else itself
    if not hasattr(arr, "dtype"):
        arr = np.asarray(arr)
    if getattr(arr, "ndim", None) != 2:
        raise InputError(f"image must be 2-D (y, x), got shape {getattr(arr, 'shape', None)}")
    if 0 in arr.shape:
        raise InputError(f"image is empty (shape {arr.shape})")
    if np.dtype(arr.dtype).kind not in "biuf":
        raise InputError(f"image must be real numbers, got dtype {arr.dtype}")
    return arr


def _row_quantiles(vals: np.ndarray, mask: np.ndarray, qs) -> np.ndarray:
    """Linear-interpolated quantiles of each row's masked values (NaN for an empty row), shape (rows, len(qs))."""
    srt = np.sort(np.where(mask, vals, np.inf), axis=1)  # masked-out values sort to the end
    n = mask.sum(axis=1)
    rows = np.arange(vals.shape[0])
    out = np.full((vals.shape[0], len(qs)), np.nan)
    ok = n > 0
    for k, q in enumerate(qs):
        pos = q * (np.maximum(n, 1) - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        f = pos - lo
        out[ok, k] = (srt[rows, lo] * (1 - f) + srt[rows, hi] * f)[ok]
    return out


def _gather(tile: np.ndarray, yc, xc, ry, rx, r_bg):
    """Disk sums and ring backgrounds of atoms centred at (yc, xc) in tile pixel coordinates.

    The disk has an anti-aliased edge (pixel weight = covered fraction, linearly in the
    distance) so the sum varies smoothly with the sub-pixel centre.
    """
    hy, hx = int(np.ceil(ry * r_bg)) + 1, int(np.ceil(rx * r_bg)) + 1
    dy, dx = (a.ravel() for a in np.mgrid[-hy:hy + 1, -hx:hx + 1])
    # Only offsets that can fall inside the ring for some sub-pixel centre (shift <= 0.71 px).
    near = np.hypot(dy / ry, dx / rx) <= r_bg + 0.75 / min(ry, rx)
    dy, dx = dy[near], dx[near]
    iy0, ix0 = np.rint(yc).astype(np.int64), np.rint(xc).astype(np.int64)
    py = iy0[:, None] + dy[None, :]
    px = ix0[:, None] + dx[None, :]
    inside = (py >= 0) & (py < tile.shape[0]) & (px >= 0) & (px < tile.shape[1])
    vals = tile[np.clip(py, 0, tile.shape[0] - 1), np.clip(px, 0, tile.shape[1] - 1)].astype(np.float64)
    # elliptical radius in units of the disk radius (pixel sizes may differ along y and x)
    rho = np.hypot((py - yc[:, None]) / ry, (px - xc[:, None]) / rx)
    w_disk = np.clip((1.0 - rho) * min(ry, rx) + 0.5, 0.0, 1.0)
    w = w_disk * inside
    w_disk = w_disk.sum(axis=1)  # the same disk without the image edge
    ring = inside & (rho >= 1.0) & (rho <= r_bg)
    if not np.isfinite(vals[inside]).all():
        raise InputError("image has NaN or inf values near atoms; mask or interpolate them before measuring intensity")
    # The ring crosses neighbouring columns; its extreme pixels sample the background between them.
    bg = _row_quantiles(vals, ring, (0.1, 0.5, 0.9))
    full = w.sum(axis=1) >= 0.9 * w_disk  # at most a sliver of the disk beyond the image edge
    return (w * vals).sum(axis=1), w.sum(axis=1), bg, full


def column_intensity(image, table: pd.DataFrame, radius_nm: float | None = None, *, method: str = "auto",
                     background="auto", polarity: str = "auto") -> pd.DataFrame:
    """Background-subtracted integrated intensity of every atom column.

    Parameters
    ----------
    image : xarray.DataArray or numpy/dask array, shape (y, x)
        The image the atoms were found in. A DataArray's ``x``/``y`` coords give the pixel
        size (nm); a plain array is in pixel units (``radius_nm`` then in pixels).
        Not needed (may be None) when ``method="gaussian"``.
    table : pandas.DataFrame
        Atom table with ``x_px``, ``y_px`` (pixel index geometry). For the Gaussian volume it
        needs ``amplitude``, ``sigma_x``, ``sigma_y`` (nm); ``fit_ok`` is honoured when present.
    radius_nm : float, optional
        Disk radius (nm). Default: 0.45 x the median nearest-neighbour distance of all atoms,
        so disks of neighbouring columns do not overlap.
    method : {"auto", "disk", "gaussian"}
        ``"gaussian"``: 2 pi A sigma_x sigma_y (value x nm^2); failed fits (``fit_ok`` False or
        non-finite parameters) get NaN, never a silent substitute. ``"disk"``: sum over the
        disk of (pixel - background) x pixel area (value x nm^2). ``"auto"``: gaussian when
        the table has the fit columns, else disk.
    background : "auto", "ring", "table", float or None
        Per-pixel background for the disk: ``"ring"`` = 10th percentile of a ring from 1 to
        1.6 radii (between the neighbours), ``"table"`` = the ``background`` column, a number
        = that constant, None = no subtraction. ``"auto"`` = table when present, else ring.

    polarity : {"auto", "bright", "dark"}
        Bright columns on a dark background (HAADF, STM) or dark columns on a bright one
        (ABF, BF). For dark columns the intensity is the integrated dip (background minus
        pixel), so it is positive and an empty column is near 0 in both cases. ``"auto"``:
        from the sign of the median disk-minus-ring contrast of all atoms; give it explicitly
        when the positions are not columns (STM sub-surface sites sit in surface hollows).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``intensity`` (value x nm^2, NaN where it cannot be
        measured: disk mostly outside the image, failed fit) and ``intensity_background``
        (per-pixel background used; NaN for the Gaussian volume).
    """
    if polarity not in ("auto", "bright", "dark"):
        raise InputError(f"polarity must be 'auto', 'bright' or 'dark', got {polarity!r}")
    if method not in ("auto", "disk", "gaussian"):
        raise InputError(f"method must be 'auto', 'disk' or 'gaussian', got {method!r}")
    fit_cols = ("amplitude", "sigma_x", "sigma_y")
    if method == "auto":
        method = "gaussian" if isinstance(table, pd.DataFrame) and all(c in table for c in fit_cols) else "disk"
    out = check_table(table, ("x_px", "y_px")).copy()
    if method == "gaussian":
        missing = [c for c in fit_cols if c not in table]
        if missing:
            raise InputError(f"method='gaussian' needs fitted columns {', '.join(missing)}; "
                             "fit the atoms or use 'disk'")
        a, sx, sy = (pd.to_numeric(table[c], errors="coerce").to_numpy(np.float64) for c in fit_cols)
        vol = 2.0 * np.pi * a * np.abs(sx) * np.abs(sy)
        ok = np.isfinite(vol)
        if "fit_ok" in table:
            ok &= table["fit_ok"].fillna(False).to_numpy(dtype=bool)
        out["intensity"] = np.where(ok, vol, np.nan)
        out["intensity_background"] = np.nan
        return out

    if image is None:
        raise InputError("method='disk' needs the image; pass it or use method='gaussian' with fitted columns")
    arr = _raw(image)
    sy, sx = _scales(image)
    yx = out[["y_px", "x_px"]].to_numpy(np.float64)
    if radius_nm is None:
        if len(out) < 2:
            raise InputError("radius_nm is needed for a single atom (no neighbour distance to scale it from)")
        d, _ = cKDTree(yx * [sy, sx]).query(yx * [sy, sx], k=2)
        radius_nm = 0.45 * float(np.median(d[:, 1]))
    radius_nm = float(radius_nm)
    if not np.isfinite(radius_nm) or radius_nm <= 0:
        raise InputError(f"radius_nm must be a positive number of nm, got {radius_nm!r}")
    ry, rx = radius_nm / sy, radius_nm / sx
    if min(ry, rx) < 0.5 or max(ry, rx) > 200:
        raise InputError(f"radius_nm = {radius_nm:g} is {min(ry, rx):.2g}..{max(ry, rx):.3g} px; "
                         "use a radius between 0.5 and 200 pixels")

    bg_mode = background
    if isinstance(background, str):
        if background not in ("auto", "ring", "table"):
            raise InputError(f"background must be 'auto', 'ring', 'table', a number or None, got {background!r}")
        bg_mode = "table" if background == "table" or (background == "auto" and "background" in table) else "ring"
        if bg_mode == "table" and "background" not in table:
            raise InputError("background='table' needs a 'background' column; use 'ring' or a number")
    elif background is not None and not np.isfinite(float(background)):
        raise InputError(f"background must be finite, got {background!r}")

    r_bg = 1.6
    total = np.full(len(out), np.nan)
    weight = np.zeros(len(out))
    ring_bg = np.full((len(out), 3), np.nan)  # 10th, 50th, 90th percentile of the ring
    full = np.zeros(len(out), dtype=bool)
    halo = int(np.ceil(max(ry, rx) * r_bg)) + 2
    ny, nx = arr.shape
    tile_key = (np.floor(yx[:, 0] / _TILE_PX).astype(np.int64) * (nx // _TILE_PX + 2)
                + np.floor(yx[:, 1] / _TILE_PX).astype(np.int64))
    for key in np.unique(tile_key):
        sel = np.flatnonzero(tile_key == key)
        y0 = max(int(np.floor(yx[sel, 0].min())) - halo, 0)
        x0 = max(int(np.floor(yx[sel, 1].min())) - halo, 0)
        y1 = min(int(np.ceil(yx[sel, 0].max())) + halo + 1, ny)
        x1 = min(int(np.ceil(yx[sel, 1].max())) + halo + 1, nx)
        if y1 <= y0 or x1 <= x0:
            continue  # every atom of this tile lies outside the image: left NaN
        tile = np.asarray(arr[y0:y1, x0:x1])  # reads only this region of a lazy image
        for start in range(0, sel.size, _CHUNK):
            idx = sel[start:start + _CHUNK]
            s, w, b, f = _gather(tile, yx[idx, 0] - y0, yx[idx, 1] - x0, ry, rx, r_bg)
            total[idx], weight[idx], ring_bg[idx], full[idx] = s, w, b, f

    with np.errstate(all="ignore"):
        contrast = np.nanmedian(total / weight - ring_bg[:, 1]) if np.isfinite(ring_bg[:, 1]).any() else 1.0
    dark = polarity == "dark" or (polarity == "auto" and contrast < 0)
    if bg_mode == "ring":
        # The ring's far side from the columns is background: its darkest pixels under bright
        # columns (HAADF), its brightest around dark ones (ABF).
        bg = ring_bg[:, 2] if dark else ring_bg[:, 0]
    elif bg_mode == "table":
        bg = pd.to_numeric(table["background"], errors="coerce").to_numpy(np.float64)
    else:
        bg = np.zeros(len(out)) if background is None else np.full(len(out), float(background))
    # A disk cut by the image edge would read as a dim column (a false vacancy): NaN instead.
    signal = (bg * weight - total) if dark else (total - bg * weight)
    out["intensity"] = np.where(full, signal * sy * sx, np.nan)
    out["intensity_background"] = bg
    return out


def normalise_by_neighbours(table: pd.DataFrame, column: str = "intensity", *, by: str | None = "sublattice",
                            radius_nm: float | None = None, how: str = "ratio", min_neighbours: int = 3,
                            max_neighbours: int = 64, reference=None, out: str | None = None) -> pd.DataFrame:
    """Each atom's value relative to the median of its same-group neighbours.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table with ``x``, ``y`` (nm), ``column`` and (unless ``by`` is None) ``by``.
    column : str
        Column to normalise (e.g. ``intensity``).
    by : str or None
        Grouping column; neighbours are taken within the same group (sublattice).
    radius_nm : float, optional
        Neighbourhood radius (nm). Default 4 x the group's median nearest-neighbour
        distance (about 50 neighbours): wide enough that the median is steady even at tens
        of percent dopants (with 12 neighbours their random count moves it by a large part
        of the contrast), narrow enough to follow thickness and background gradients.
    how : {"ratio", "difference"}
        ``value / median`` (multiplicative changes: thickness, HAADF) or ``value - median``
        (additive ones: STM apparent height, a background offset).
    min_neighbours : int
        Atoms with fewer finite neighbours get NaN (too few to estimate the local level).
    max_neighbours : int
        At most this many nearest neighbours are used.
    reference : str or array of bool, optional
        Only these atoms (a boolean column name or mask) serve as neighbours, e.g. the atoms a
        first classification called host: where dopants cluster, the plain median of the
        neighbours is a dopant level and hides them.
    out : str, optional
        Output column name; default ``column + "_norm"``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the new column.
    """
    if how not in ("ratio", "difference"):
        raise InputError(f"how must be 'ratio' or 'difference', got {how!r}")
    need = ("x", "y") + ((by,) if by is not None else ())
    check_table(table, need)
    if column not in table:
        raise InputError(f"table has no column {column!r} to normalise; compute it first (column_intensity)")
    if int(min_neighbours) < 1 or int(max_neighbours) < int(min_neighbours):
        raise InputError(f"need 1 <= min_neighbours <= max_neighbours, got {min_neighbours}, {max_neighbours}")
    if radius_nm is not None and not (np.isfinite(float(radius_nm)) and float(radius_nm) > 0):
        raise InputError(f"radius_nm must be a positive number of nm, got {radius_nm!r}")
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
    xy = table[["x", "y"]].to_numpy(np.float64)
    use = np.ones(len(table), bool)
    if reference is not None:
        use = np.asarray(table[reference] if isinstance(reference, str) else reference)
        if use.shape != (len(table),) or use.dtype != bool:
            raise InputError(f"reference must be a boolean column or mask of {len(table)} atoms")
    groups = table[by].to_numpy() if by is not None else np.zeros(len(table), dtype=np.int64)
    result = np.full(len(table), np.nan)
    for g in pd.unique(groups):
        idx = np.flatnonzero(groups == g)
        ref = idx[use[idx]]
        if idx.size < 2 or ref.size < 2:
            continue
        r = radius_nm
        if r is None:
            d1, _ = cKDTree(xy[idx]).query(xy[idx], k=2)
            r = 4.0 * float(np.median(d1[:, 1]))
        tree = cKDTree(xy[ref])
        k = min(int(max_neighbours) + 1, ref.size)
        d, nb = tree.query(xy[idx], k=k, distance_upper_bound=float(r))
        d, nb = d.reshape(idx.size, k), nb.reshape(idx.size, k)
        nb_atom = ref[np.minimum(nb, ref.size - 1)]
        valid = np.isfinite(d) & (nb_atom != idx[:, None])  # never the atom itself
        nv = np.where(valid, values[nb_atom], np.nan)
        count = np.isfinite(nv).sum(axis=1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN, handled below
            med = np.nanmedian(nv, axis=1) if nv.shape[1] else np.full(idx.size, np.nan)
            val = values[idx] / med if how == "ratio" else values[idx] - med
        result[idx] = np.where(count >= int(min_neighbours), val, np.nan)
    res = table.copy()
    res[out or f"{column}_norm"] = result
    return res


__all__ = ["column_intensity", "normalise_by_neighbours"]
