"""Background-subtracted centre of mass of every atom column, vectorised over atoms."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from ._grid import check_table, finite_array, image_grid

#: Default disk radius as a fraction of each atom's nearest-neighbour distance: the disk
#: then holds the column and none of its neighbours' peaks.
RADIUS_FRACTION = 0.5
_ITERATIONS = 3
_CHUNK = 8192  # atoms per vectorised block, to bound memory at (2R+1)^2 * chunk floats


def neighbour_distance_px(x_px: np.ndarray, y_px: np.ndarray) -> np.ndarray:
    """Distance (px) from each atom to its nearest other atom; inf for a lone atom."""
    if x_px.size < 2:
        return np.full(x_px.size, np.inf)
    d, _ = cKDTree(np.column_stack([x_px, y_px])).query(np.column_stack([x_px, y_px]), k=2)
    return d[:, 1]


def radius_px(x_px, y_px, radius_nm, scale: float, shape) -> np.ndarray:
    """Per-atom patch radius (px): the given one, or half the nearest-neighbour distance."""
    if radius_nm is None:
        r = RADIUS_FRACTION * neighbour_distance_px(x_px, y_px)
        # a lone atom: a fixed fraction of the image, enough for any column
        r = np.where(np.isfinite(r), r, min(shape) / 8.0)
    else:
        try:
            r0 = float(radius_nm) / scale
        except (TypeError, ValueError):
            raise InputError(f"radius_nm must be a number, got {radius_nm!r}") from None
        if not np.isfinite(r0) or r0 < 1.0 or r0 > min(shape) / 2:
            raise InputError(f"radius_nm={radius_nm!r} is {r0:.3g} px; it must be between 1 px and half the "
                             f"image side ({min(shape) / 2:g} px)")
        r = np.full(x_px.size, r0)
    return np.maximum(r, 1.0)


def _centroids(values, x, y, r):
    """One centre-of-mass step for a block of atoms (pixel units)."""
    ny, nx = values.shape
    R = int(np.ceil(r.max()))
    off = np.arange(-R, R + 1)
    ix = np.rint(x).astype(np.int64)[:, None, None] + off[None, None, :]
    iy = np.rint(y).astype(np.int64)[:, None, None] + off[None, :, None]
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    dx, dy = ix - x[:, None, None], iy - y[:, None, None]
    rr = np.hypot(dx, dy)
    disk = inside & (rr <= r[:, None, None])
    ring = disk & (rr > r[:, None, None] - 1.5)
    v = values[np.clip(iy, 0, ny - 1), np.clip(ix, 0, nx - 1)]
    # local background: median of the disk's rim, which the column barely reaches
    background = np.nanmedian(np.where(ring, v, np.nan).reshape(len(x), -1), axis=1)
    w = np.where(disk, np.clip(v - background[:, None, None], 0.0, None), 0.0)
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = x + (w * dx).sum(axis=(1, 2)) / total
        cy = y + (w * dy).sum(axis=(1, 2)) / total
    return cx, cy, total > 0


def refine_centroid(image, table: pd.DataFrame, radius_nm=None, *, invert: bool = False) -> pd.DataFrame:
    """Refine atom positions to the background-subtracted centre of mass.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D array
        The image the table's pixel positions refer to.
    table : pandas.DataFrame
        Atoms with ``x_px``, ``y_px`` (e.g. from :func:`find_seeds`); not modified.
    radius_nm : float, optional
        Disk radius in the image's length units. Default: half of each atom's
        nearest-neighbour distance.
    invert : bool
        Dark columns (ABF): the centre of mass of the dip.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``x``, ``y``, ``x_px``, ``y_px`` replaced by the centre of
        mass (3 iterations, disk re-centred each time). An atom whose disk holds no signal
        above its rim, or whose centre would leave its disk, keeps its input position.

    Raises
    ------
    InputError
        Not a finite 2-D image, table without finite ``x_px``/``y_px``, absurd radius.
    """
    grid = image_grid(image)
    values = finite_array(grid.data) * (-1.0 if invert else 1.0)
    xy = check_table(table)
    out = table.copy()
    if len(table) == 0:
        return out
    x0, y0 = xy[:, 0].copy(), xy[:, 1].copy()
    r = radius_px(x0, y0, radius_nm, grid.scale, grid.shape)
    x, y = x0.copy(), y0.copy()
    for start in range(0, x.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        bx, by, br = x[sl].copy(), y[sl].copy(), r[sl]
        for _ in range(_ITERATIONS):
            cx, cy, ok = _centroids(values, bx, by, br)
            ok &= np.isfinite(cx) & np.isfinite(cy) & (np.hypot(cx - x0[sl], cy - y0[sl]) <= br)
            bx, by = np.where(ok, cx, bx), np.where(ok, cy, by)
        x[sl], y[sl] = bx, by
    out["x_px"], out["y_px"] = x, y
    out["x"], out["y"] = grid.to_phys(x, y)
    return out


__all__ = ["refine_centroid", "neighbour_distance_px"]
