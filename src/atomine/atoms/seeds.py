"""Seeds for atom columns: local maxima of a lightly smoothed image.

Rules (no number the user must guess):

* **Separation.** The smallest significant period ``d_min`` of the image's power spectrum
  (:func:`atomine.fourier.window_size.lattice_periods`) is never larger than ~1.4 times the
  nearest-neighbour spacing of the columns that make it (square and hexagonal lattices,
  with their harmonics), so two columns closer than ``SEPARATION_FRACTION * d_min`` are
  not expected; maxima closer than that are merged into the stronger one.
* **Smoothing.** A Gaussian of ``SMOOTH_FRACTION`` times the separation: close to a
  matched filter for columns whose FWHM is about the separation.
* **Threshold.** A maximum must stand ``NOISE_SIGMAS`` noise standard deviations (of the
  smoothed image) above its local background, the minimum of the smoothed image within
  two separations. The noise is measured from the image itself, robustly (median of the
  absolute discrete Laplacian, which rejects the smooth column signal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import InputError
from ..fourier.window_size import lattice_periods
from ._grid import Grid, finite_array, image_grid

SEPARATION_FRACTION = 0.5
SMOOTH_FRACTION = 0.4
NOISE_SIGMAS = 7.0
#: Smallest separation (px) considered; below it pixels, not columns, are resolved.
MIN_SEPARATION_PX = 2.0

_LAPLACE = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def default_separation_px(image) -> float:
    """``SEPARATION_FRACTION`` x the smallest significant lattice period (px).

    Raises
    ------
    InputError
        Flat or featureless image: no lattice to take a separation from.
    """
    periods = lattice_periods(image)
    return float(max(MIN_SEPARATION_PX, SEPARATION_FRACTION * float(periods.min())))


def noise_sigma(values: np.ndarray) -> float:
    """Robust white-noise standard deviation of an image (its own units).

    The 3x3 kernel above is zero on constant, linear and quadratic surfaces, and its
    response to white noise has standard deviation 6 sigma; the median absolute value
    ignores the minority of pixels where the column signal curves strongly.
    """
    response = ndimage.convolve(values, _LAPLACE, mode="reflect")[1:-1, 1:-1]
    return float(np.median(np.abs(response)) / (0.6745 * 6.0))


def smoothing_px(separation_px: float) -> float:
    return max(0.5, SMOOTH_FRACTION * separation_px)


def default_threshold(values: np.ndarray, separation_px: float) -> float:
    """``NOISE_SIGMAS`` x the noise standard deviation after smoothing (image units)."""
    s = smoothing_px(separation_px)
    # a unit-area Gaussian of width s scales white noise by 1 / (2 sqrt(pi) s)
    return NOISE_SIGMAS * noise_sigma(values) / (2.0 * np.sqrt(np.pi) * s)


def _peaks(values: np.ndarray, separation_px: float, threshold: float):
    """Row, column and prominence of maxima separated by > separation_px."""
    smooth = ndimage.gaussian_filter(values, smoothing_px(separation_px), mode="reflect")
    r = int(np.floor(separation_px))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy ** 2 + xx ** 2) <= separation_px ** 2
    is_max = smooth == ndimage.maximum_filter(smooth, footprint=disk, mode="nearest")
    rb = int(np.ceil(2 * separation_px))
    yy, xx = np.mgrid[-rb:rb + 1, -rb:rb + 1]
    background = ndimage.minimum_filter(smooth, footprint=(yy ** 2 + xx ** 2) <= (2 * separation_px) ** 2,
                                        mode="nearest")
    prominence = smooth - background
    # a maximum on the border is the shoulder of a column outside the field of view
    is_max[[0, -1], :] = False
    is_max[:, [0, -1]] = False
    rows, cols = np.nonzero(is_max & (prominence > threshold))
    prom = prominence[rows, cols]
    # plateaus give several equal maxima: keep the strongest first, drop any within the separation
    order = np.argsort(-prom, kind="stable")
    rows, cols, prom = rows[order], cols[order], prom[order]
    if rows.size > 1:
        from scipy.spatial import cKDTree

        pairs = cKDTree(np.column_stack([rows, cols])).query_pairs(separation_px, output_type="ndarray")
        keep = np.ones(rows.size, bool)
        for a, b in pairs[np.argsort(pairs.min(axis=1))]:
            if keep[min(a, b)]:
                keep[max(a, b)] = False
        rows, cols, prom = rows[keep], cols[keep], prom[keep]
    return rows, cols, prom


def _table(grid: Grid, rows, cols, prom, sign: float) -> pd.DataFrame:
    x, y = grid.to_phys(cols.astype(np.float64), rows.astype(np.float64))
    return pd.DataFrame({"x": x, "y": y, "x_px": cols.astype(np.float64), "y_px": rows.astype(np.float64),
                         "peak": sign * prom})


def check_separation(separation_nm, grid: Grid) -> float:
    """Separation in px from a physical value; InputError for absurd values."""
    try:
        sep = float(separation_nm) / grid.scale
    except (TypeError, ValueError):
        raise InputError(f"separation_nm must be a number, got {separation_nm!r}") from None
    if not np.isfinite(sep) or sep < MIN_SEPARATION_PX or sep > min(grid.shape) / 2:
        raise InputError(f"separation_nm={separation_nm!r} is {sep:.3g} px; it must be between "
                         f"{MIN_SEPARATION_PX} px and half the image side ({min(grid.shape) / 2:g} px)")
    return sep


def find_seeds(image, separation_nm=None, *, threshold=None, invert: bool = False) -> pd.DataFrame:
    """Seed positions of atom columns: local maxima of a lightly smoothed image.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D array
        Calibrated image (lengths in its coordinate units, normally nm) or a plain array
        (pixel units).
    separation_nm : float, optional
        Smallest distance between two columns, in the image's length units. Default: half
        the smallest significant lattice period (see the module docstring).
    threshold : float, optional
        Smallest height of a maximum above its local background, in image value units,
        after smoothing. Default: 7 noise standard deviations of the smoothed image.
    invert : bool
        Columns are dark (annular bright field): find minima instead.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y`` (physical), ``x_px``, ``y_px`` (pixel indices) and ``peak``
        (height above the local background, image units; negative for ``invert``), strongest
        first. Empty when nothing stands out of the noise. A maximum on the image border is
        not a seed (it is the shoulder of a column outside the field of view), so columns
        centred within ~2 px of the border may be missed.

    Raises
    ------
    InputError
        Not a finite 2-D image; no lattice to take a default separation from (flat or
        featureless image); absurd separation or threshold.
    """
    grid = image_grid(image)
    values = finite_array(grid.data)
    sign = -1.0 if invert else 1.0
    values = sign * values
    if separation_nm is None:
        sep = default_separation_px(values)
    else:
        sep = check_separation(separation_nm, grid)
    thr = resolve_threshold(threshold, values, sep)
    rows, cols, prom = _peaks(values, sep, thr)
    return _table(grid, rows, cols, prom, sign)


def resolve_threshold(threshold, values: np.ndarray, separation_px: float) -> float:
    if threshold is None:
        return default_threshold(values, separation_px)
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(thr) or thr < 0:
        raise InputError(f"threshold must be a finite number >= 0 (image value units), got {threshold!r}")
    return thr


__all__ = ["find_seeds", "default_separation_px", "noise_sigma", "default_threshold"]
