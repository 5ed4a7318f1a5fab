"""Batched elliptical 2-D Gaussian fits of atom columns, with Cramer-Rao uncertainties.

Every atom is fitted on the pixels within its patch radius (default half its
nearest-neighbour distance) by Levenberg-Marquardt in numba, all atoms in parallel.
Overlapping neighbours are handled by sweeps: after an independent first pass, each
patch is refitted with its neighbours' current models subtracted (block Jacobi), so a
weak column beside a bright one, or a dumbbell, is not pulled toward its partner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from . import _lm
from ._grid import Grid, check_table, finite_array, image_grid
from .centroid import radius_px

NOISE_MODELS = ("poisson", "gaussian")
#: Smallest credible column width (px): narrower is a fit onto one noisy pixel.
MIN_SIGMA_PX = 0.35
_SWEEP_TOL_PX = 1e-3


def _initial(values, x, y, r, sign):
    """Per-atom start (xc, yc, A, a, b, c, B) from the patch: rim median, peak, second moment."""
    ny, nx = values.shape
    R = int(np.ceil(r.max()))
    off = np.arange(-R, R + 1)
    p = np.empty((x.size, _lm.NPAR))
    for start in range(0, x.size, 8192):  # bounded memory: (2R+1)^2 values per atom and block
        sl = slice(start, start + 8192)
        bx, by, br = x[sl], y[sl], r[sl]
        ix = np.rint(bx).astype(np.int64)[:, None, None] + off[None, None, :]
        iy = np.rint(by).astype(np.int64)[:, None, None] + off[None, :, None]
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        rr2 = (ix - bx[:, None, None]) ** 2 + (iy - by[:, None, None]) ** 2
        disk = inside & (rr2 <= br[:, None, None] ** 2)
        ring = disk & (rr2 > (br[:, None, None] - 1.5) ** 2)
        v = values[np.clip(iy, 0, ny - 1), np.clip(ix, 0, nx - 1)]
        bg = np.nanmedian(np.where(ring, v, np.nan).reshape(bx.size, -1), axis=1)
        bg = np.where(np.isfinite(bg), bg, np.nanmedian(np.where(disk, v, np.nan).reshape(bx.size, -1), axis=1))
        peak = sign * values[np.clip(np.rint(by).astype(int), 0, ny - 1), np.clip(np.rint(bx).astype(int), 0, nx - 1)]
        amp = np.maximum(peak - sign * bg, 1e-6 * (np.abs(bg) + 1.0))
        w = np.where(disk, np.clip(sign * (v - bg[:, None, None]), 0.0, None), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = (w * rr2).sum(axis=(1, 2)) / (2.0 * w.sum(axis=(1, 2)))
        s2 = np.clip(np.nan_to_num(s2, nan=(br / 3) ** 2), 0.5 ** 2, (br / 2) ** 2)
        p[sl] = np.column_stack([bx, by, amp, 1 / s2, np.zeros(bx.size), 1 / s2, bg])
    return p


def _neighbours(x, y, cutoff):
    """CSR neighbour lists (pointer, indices) of atoms within ``cutoff`` px, self excluded."""
    n = x.size
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(cutoff, output_type="ndarray")
    both = np.concatenate([pairs, pairs[:, ::-1]]) if pairs.size else np.zeros((0, 2), np.int64)
    both = both[np.argsort(both[:, 0], kind="stable")]
    ptr = np.zeros(n + 1, np.int64)
    np.add.at(ptr, both[:, 0] + 1, 1)
    return np.cumsum(ptr), both[:, 1].astype(np.int64)


def _shape_nm(p, grid: Grid):
    """sigma_x, sigma_y (physical) and theta (rad, from +x toward +y) of each fitted ellipse.

    The axis nearer +x is called x, so theta lies in [-pi/4, pi/4] and sigma_x is the width
    along (almost) x: stable for nearly round columns.
    """
    sx, sy = grid.scale_x, grid.scale_y
    # covariance of the Gaussian in px, then in physical units: S C S with S = diag(sx, sy)
    a, b, c = p[:, 3], p[:, 4], p[:, 5]
    det = a * c - b * b
    cxx, cyy, cxy = c / det * sx * sx, a / det * sy * sy, -b / det * sx * sy
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # major axis angle in (-pi/2, pi/2]
    cos, sin = np.cos(theta), np.sin(theta)
    v1 = cxx * cos ** 2 + 2 * cxy * sin * cos + cyy * sin ** 2
    v2 = cxx * sin ** 2 - 2 * cxy * sin * cos + cyy * cos ** 2
    swap = np.abs(theta) > np.pi / 4
    theta = np.where(swap, theta - np.sign(theta) * np.pi / 2, theta)
    var_x, var_y = np.where(swap, v2, v1), np.where(swap, v1, v2)
    with np.errstate(invalid="ignore"):
        return np.sqrt(var_x), np.sqrt(var_y), theta, det


def _check_options(noise, sweeps, max_iter):
    if noise not in NOISE_MODELS:
        raise InputError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    for name, value, low in (("sweeps", sweeps, 0), ("max_iter", max_iter, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")


def fit_gaussians(image, table: pd.DataFrame, *, noise: str = "poisson", joint: bool = True, sweeps: int = 3,
                  radius_nm=None, invert: bool = False, max_iter: int = 100, progress=None) -> pd.DataFrame:
    """Fit an elliptical, rotated 2-D Gaussian plus a local constant to every atom column.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D array
        The image; for ``noise="poisson"`` its values must be counts (detected electrons).
    table : pandas.DataFrame
        Start positions ``x_px``, ``y_px`` (e.g. from :func:`refine_centroid`); not modified.
    noise : {"poisson", "gaussian"}
        Poisson maximum likelihood (weights 1 / model) or least squares.
    joint : bool
        Refit each patch with its neighbours' fitted models subtracted (``sweeps`` times, or
        until no centre moves by more than 0.001 px).
    sweeps : int
        Maximum number of joint sweeps after the independent first pass.
    radius_nm : float, optional
        Patch radius (image length units). Default: half of each atom's nearest-neighbour distance.
    invert : bool
        Dark columns (ABF): the model is background minus a Gaussian dip.
    max_iter : int
        Levenberg-Marquardt iterations per atom and pass.
    progress : callable, optional
        ``progress(done, total, message)`` after each pass.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``x``, ``y`` (physical), ``x_px``, ``y_px``, ``x_err``, ``y_err``,
        ``pos_err`` (1-sigma Cramer-Rao bound at the solution, physical), ``amplitude`` (peak
        height above background, or dip depth for ``invert``, image units), ``sigma_x``,
        ``sigma_y`` (physical), ``theta`` (rad from +x toward +y, in [-pi/4, pi/4]: sigma_x is
        the width along the axis nearer +x), ``background`` (image units), ``intensity``
        (integrated Gaussian volume, image units x pixels, i.e. the summed counts), ``fit_ok``.
        ``fit_ok`` is False for non-convergence, a singular Fisher matrix, too few pixels, a
        width below 0.35 px or beyond the patch, a centre leaving its patch or NaN; such an
        atom keeps its input position and gets NaN uncertainties.

    Raises
    ------
    InputError
        Not a finite 2-D image, table without finite ``x_px``/``y_px``, bad options, or
        Poisson noise on an image with negative mean values.
    """
    _check_options(noise, sweeps, max_iter)
    grid = image_grid(image)
    values = finite_array(grid.data)
    xy = check_table(table)
    poisson = noise == "poisson"
    if poisson and values.size and float(values.mean()) <= 0:
        raise InputError("noise='poisson' needs an image in counts (positive mean); use noise='gaussian'")
    out = table.copy()
    n = len(table)
    if n == 0:
        for col in ("x_err", "y_err", "pos_err", "amplitude", "sigma_x", "sigma_y", "theta", "background",
                    "intensity"):
            out[col] = np.zeros(0)
        out["fit_ok"] = np.zeros(0, bool)
        return out
    x0, y0 = xy[:, 0].copy(), xy[:, 1].copy()
    r = radius_px(x0, y0, radius_nm, grid.scale, grid.shape)
    sign = -1.0 if invert else 1.0
    start = _initial(values, x0, y0, r, sign)
    sigma0 = np.sqrt(1.0 / start[:, 3])
    ptr, idx = _neighbours(x0, y0, float(r.max() + 5.0 * sigma0.max()))
    total = 1 + (sweeps if joint else 0)
    params, cov, status, npix = _lm.fit_patches(values, x0, y0, r, start, start, False, ptr, idx, sign,
                                                poisson, max_iter)
    if progress is not None:
        progress(1, total, "gaussian fit: independent pass")
    for k in range(1, total):
        # failed atoms contribute their start model: their column is still there
        good = (status == _lm.OK)[:, None] & np.isfinite(params).all(axis=1)[:, None]
        others = np.where(good, params, start)
        new, cov, status, npix = _lm.fit_patches(values, x0, y0, r, params, others, True, ptr, idx, sign,
                                                 poisson, max_iter)
        moved = np.nanmax(np.hypot(new[:, 0] - params[:, 0], new[:, 1] - params[:, 1]))
        params = new
        if progress is not None:
            progress(k + 1, total, f"gaussian fit: joint sweep {k}")
        if moved < _SWEEP_TOL_PX:
            break
    return _table(out, grid, params, cov, status, x0, y0, r)


def _table(out, grid: Grid, params, cov, status, x0, y0, r):
    sigma_x, sigma_y, theta, det = _shape_nm(params, grid)
    with np.errstate(invalid="ignore"):
        s_px = np.sqrt(1.0 / np.linalg.eigvalsh(
            np.stack([params[:, 3], params[:, 4], params[:, 4], params[:, 5]], axis=1).reshape(-1, 2, 2)))
    ok = (status == _lm.OK) & np.isfinite(params).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))
    ok &= (det > 0) & np.isfinite(s_px).all(axis=1)
    ok &= (np.nanmin(s_px, axis=1) >= MIN_SIGMA_PX) & (np.nanmax(s_px, axis=1) <= r)
    ok &= np.hypot(params[:, 0] - x0, params[:, 1] - y0) <= r
    ok &= params[:, 2] > 0
    var_x, var_y = cov[:, 0, 0], cov[:, 1, 1]
    ok &= (var_x > 0) & (var_y > 0)
    x_px, y_px = np.where(ok, params[:, 0], x0), np.where(ok, params[:, 1], y0)
    x, y = grid.to_phys(x_px, y_px)
    with np.errstate(invalid="ignore"):
        x_err = np.where(ok, np.sqrt(var_x) * abs(grid.scale_x), np.nan)
        y_err = np.where(ok, np.sqrt(var_y) * abs(grid.scale_y), np.nan)
        volume = 2.0 * np.pi * params[:, 2] / np.sqrt(det)
    out["x"], out["y"], out["x_px"], out["y_px"] = x, y, x_px, y_px
    out["x_err"], out["y_err"] = x_err, y_err
    out["pos_err"] = np.sqrt((x_err ** 2 + y_err ** 2) / 2.0)
    out["amplitude"] = params[:, 2]
    out["sigma_x"], out["sigma_y"], out["theta"] = sigma_x, sigma_y, theta
    out["background"] = params[:, 6]
    out["intensity"] = volume
    out["fit_ok"] = ok
    return out


__all__ = ["fit_gaussians", "NOISE_MODELS"]
