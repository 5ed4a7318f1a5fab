"""Batched elliptical 2-D Gaussian fits of atom columns, with Cramer-Rao uncertainties.

Every atom is fitted on the pixels within its patch radius (default half its
nearest-neighbour distance) by Levenberg-Marquardt in numba, all atoms in parallel.
Overlapping neighbours are handled by sweeps: after an independent first pass, each
patch is refitted with its neighbours' current models subtracted (block Jacobi), so a
weak column beside a bright one, or a dumbbell, is not pulled toward its partner. In the
sweeps a patch narrower than 2.5 column widths grows to three (at most the neighbour
distance), and
a column may be at most 1.6 times as wide as the median of its 9 nearest columns (one probe
images them all; a faint column fitted as a broad blob would push its bright neighbour).

Uncertainties are the Cramer-Rao bound of each atom's own parameters with its neighbours'
models held fixed: exact for separated columns, optimistic by the neighbours' share for
strongly overlapping ones, and blind to noise the model lacks (correlated STM noise, scan
jitter), which the residuals of the Gaussian model partly absorb.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree

from ..errors import InputError
from . import _lm
from ._grid import Grid, check_table, finite_array, image_grid
from .centroid import radius_px

NOISE_MODELS = ("poisson", "gaussian")
#: Smallest credible column width (px): narrower is a fit onto one noisy pixel.
MIN_SIGMA_PX = 0.35
#: Joint sweeps stop refitting an atom's neighbours once it moves by less than this fraction of
#: its own 1-sigma (centre and height).
SWEEP_TOL_SIGMA = 0.05
#: A joint sweep leaves an atom's fit alone when its neighbours' models add less than this
#: chi-square to its patch: the refit could move it by at most ~0.03 of its 1-sigma error.
SKIP_CHI2 = 1e-3
#: In joint sweeps a column may be at most this many times the median column width.
WIDTH_FACTOR = 1.6


def _neighbours(x, y, cutoff):
    """CSR neighbour lists (pointer, indices) of atoms within ``cutoff`` px, self excluded."""
    n = x.size
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(cutoff, output_type="ndarray")
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]]) if pairs.size else np.zeros(0, np.int64)
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]]) if pairs.size else np.zeros(0, np.int64)
    csr = coo_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, n)).tocsr()
    return csr.indptr.astype(np.int64), csr.indices.astype(np.int64)


def _joint_radius(r, params, status):
    """Joint patch radius (px) from each atom's own fitted width (local, so tiles agree)."""
    good = (status == _lm.OK) & (params[:, 3] > 0) & (params[:, 5] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (params[:, 3] * params[:, 5] - params[:, 4] ** 2) ** -0.25
    # only where the half-distance disk holds less than 2.5 widths of the column (dumbbells):
    # a wider patch elsewhere would only slow the sweeps' convergence
    narrow = good & np.isfinite(width) & (r < 2.5 * width)
    return np.where(narrow, np.maximum(r, np.minimum(3.0 * width, 2.0 * r)), r)


def _typical_width(params, status, x, y, k: int = 9) -> np.ndarray:
    """Per atom, the median width (px) of the well-fitted columns among it and its 8 nearest atoms.

    Local (not one global median), so a tile with its halo gives the whole-image answer.
    """
    n = params.shape[0]
    good = (status == _lm.OK) & (params[:, 3] > 0) & (params[:, 5] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (params[:, 3] * params[:, 5] - params[:, 4] ** 2) ** -0.25
    width = np.where(good & np.isfinite(width), width, np.nan)
    k = min(k, n)
    _, near = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=k)
    near = near.reshape(n, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: no width bound there
        med = np.nanmedian(width[near], axis=1)
    return np.where(np.isfinite(med), med, np.inf)


def _changed(new, old, cov) -> np.ndarray:
    """Atoms whose centre or height moved by more than a small fraction of its own 1-sigma.

    Changes below ``SWEEP_TOL_SIGMA`` of the Cramer-Rao error are statistically meaningless,
    so refitting the neighbours for them would only spend time (floor 1e-4 px).
    """
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.abs(np.stack([cov[:, 0, 0], cov[:, 1, 1], cov[:, 2, 2]], axis=1)))
    tol = np.maximum(SWEEP_TOL_SIGMA * np.nan_to_num(err, nan=0.0), 1e-4)
    step = np.abs(new[:, :3] - old[:, :3])
    return (step > tol).any(axis=1)


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


def fit_gaussians(image, table: pd.DataFrame, *, noise: str = "poisson", joint: bool = True, sweeps: int = 30,
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
        until no centre or height moves by more than 5 % of its own 1-sigma).
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
        width at its bounds (0.35 px; half the neighbour distance, or in joint sweeps 1.6 x the
        local median width), a centre at the edge of its disk or NaN; such an atom keeps its
        input position and gets NaN uncertainties (its other columns are the failed fit's).
        ``fit_pass`` says which fit an atom keeps: ``"joint"``, ``"independent"`` (no joint
        sweeps, or the joint refit failed where the independent fit was sound) or ``"failed"``.

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
        out["fit_pass"] = np.zeros(0, dtype=object)
        return out
    x0, y0 = xy[:, 0].copy(), xy[:, 1].copy()
    r = radius_px(x0, y0, radius_nm, grid.scale, grid.shape)
    sign = -1.0 if invert else 1.0
    start = _lm.initial_params(values, x0, y0, r, sign)
    sigma0 = np.sqrt(1.0 / start[:, 3])
    ptr, idx = _neighbours(x0, y0, float(r.max() + 5.0 * sigma0.max()))
    total = 1 + (sweeps if joint else 0)
    params, cov = start.copy(), np.full((n, _lm.NPAR, _lm.NPAR), np.nan)
    status, npix, resvar = np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, np.nan)
    active = np.arange(n)
    _lm.fit_patches(values, active, x0, y0, r, r, r, start, start, False, ptr, idx, sign, poisson, max_iter,
                    MIN_SIGMA_PX, SKIP_CHI2, params, cov, status, npix, resvar)
    if progress is not None:
        progress(1, total, "gaussian fit: independent pass")
    independent = (params.copy(), cov.copy(), status.copy())
    widest = r
    if total > 1:
        # with neighbours subtracted, patches may overlap: widen each to 3 typical column widths
        # (at most the nearest-neighbour distance) so a dumbbell's partner is fitted on enough
        # of its own profile, not only on the half-distance disk the independent pass used
        # the bounds stay those of the independent pass: a column wider than half the distance to
        # its neighbour, or centred outside that disk, is not a resolved column
        patch = _joint_radius(r, params, status)
        # all columns are images of one probe, so none is much wider than the typical column:
        # a faint column fitted as a broad blob would, once subtracted, push its bright neighbour
        widest = np.minimum(r, WIDTH_FACTOR * _typical_width(params, status, x0, y0))
        ptr, idx = _neighbours(x0, y0, float(patch.max() + 5.0 * sigma0.max()))
    rows = np.repeat(np.arange(n), np.diff(ptr))
    used = None
    for k in range(1, total):
        # a failed atom's model is not trusted, so it is not subtracted from its neighbours
        # (a broad start model of a faint column would bias a bright one beside it); it is
        # still refitted from its start with its neighbours subtracted
        good = (status == _lm.OK)[:, None] & np.isfinite(params).all(axis=1)[:, None]
        restart = np.where(good, params, start)
        others = restart.copy()
        others[~good[:, 0], 2] = 0.0
        if used is not None:
            # refit only atoms whose own or neighbours' models changed since they were last used
            changed = _changed(others, used, cov)
            near = np.zeros(n, bool)
            near[rows[changed[idx]]] = True
            active = np.flatnonzero(changed | near)
            if active.size == 0:
                break
        _lm.fit_patches(values, active, x0, y0, patch, r, widest, restart, others, True, ptr, idx, sign, poisson,
                        max_iter, MIN_SIGMA_PX, SKIP_CHI2, params, cov, status, npix, resvar)
        used = others
        if progress is not None:
            progress(k + 1, total, f"gaussian fit: joint sweep {k} ({active.size} atoms)")
    ok = _acceptable(params, cov, status, x0, y0, r, widest)
    fit_pass = np.full(n, "joint" if total > 1 else "independent", dtype=object)
    if total > 1:
        # where the joint refit fails but the independent fit of the same column was sound, keep the
        # independent one and say so (fit_pass): e.g. STM oxygen on the broad bumps of sub-surface
        # dopants, which a constant local background cannot follow over the wider joint patch
        ind_params, ind_cov, ind_status = independent
        back = ~ok & _acceptable(ind_params, ind_cov, ind_status, x0, y0, r, r)
        params[back], cov[back] = ind_params[back], ind_cov[back]
        ok |= back
        fit_pass[back] = "independent"
    out = _table(out, grid, params, cov, ok, x0, y0)
    out["fit_pass"] = np.where(ok, fit_pass, "failed")
    return out


def _acceptable(params, cov, status, x0, y0, r, widest) -> np.ndarray:
    """Which fits describe a column: converged, finite, widths and centre inside their bounds."""
    a, b, c = params[:, 3], params[:, 4], params[:, 5]
    det = a * c - b * b
    with np.errstate(invalid="ignore"):
        s_px = np.sqrt(1.0 / np.linalg.eigvalsh(np.stack([a, b, b, c], axis=1).reshape(-1, 2, 2)))
    ok = (status == _lm.OK) & np.isfinite(params).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))
    ok &= (det > 0) & np.isfinite(s_px).all(axis=1)
    # at a bound (within 1 %) the optimum lies outside what a column can be
    ok &= (np.nanmin(s_px, axis=1) > 1.01 * MIN_SIGMA_PX) & (np.nanmax(s_px, axis=1) < 0.99 * widest)
    ok &= np.hypot(params[:, 0] - x0, params[:, 1] - y0) < 0.99 * r
    ok &= params[:, 2] > 0
    ok &= (cov[:, 0, 0] > 0) & (cov[:, 1, 1] > 0)
    return ok


def _table(out, grid: Grid, params, cov, ok, x0, y0):
    sigma_x, sigma_y, theta, det = _shape_nm(params, grid)
    var_x, var_y = cov[:, 0, 0], cov[:, 1, 1]
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
