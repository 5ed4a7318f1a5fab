"""A sliding-FFT window size from the image's own lattice periodicity.

Rule: find the Bragg peaks of the whole image's power spectrum (mean and linear ramp
removed, Hann-tapered), take those at least :data:`PEAK_FRACTION` as strong as the
strongest, and let ``d`` be the largest lattice period among them (in pixels, ``1 / |k|``).
The window is the power of two in ``[4 d, 8 d)``: it always exists, holds 4 to 8
periods (enough for sharp local peaks, few enough to resolve local changes), and is a
fast FFT length. It is clamped to the largest power of two that fits in the image.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr
from scipy import ndimage

from ..errors import InputError
from .taper import taper_1d

#: Peaks at least this fraction of the strongest non-DC peak's power count as lattice peaks.
PEAK_FRACTION = 0.05
#: A lattice peak must be this many times the median spectral power (white noise alone gives
#: maxima of ~15-20 times the median on a 512 x 512 spectrum).
NOISE_FACTOR = 100.0
#: Only the central crop up to this size is analysed: enough bins for periods up to 1/8 of
#: it, and a dask-backed image is read only there.
MAX_CROP = 1024
#: Frequencies within this many bins of k = 0 are ignored (taper main lobe, slow background).
DC_BINS = 3.0


def _central_crop(image) -> np.ndarray:
    data = image.data if isinstance(image, xr.DataArray) else image
    if isinstance(image, xr.DataArray) and (image.ndim != 2 or tuple(image.dims) != ("y", "x")):
        raise InputError(f"estimate_window needs a 2-D image with dims ('y', 'x'), got dims {tuple(image.dims)}")
    if not hasattr(data, "__dask_graph__"):
        data = np.asarray(data)
    if data.ndim != 2:
        raise InputError(f"estimate_window needs a 2-D image (y, x), got {data.ndim} dimensions (shape {data.shape})")
    if np.dtype(data.dtype).kind not in "biuf":
        raise InputError(f"estimate_window needs a real-valued image, got dtype {data.dtype}")
    ny, nx = data.shape
    cy, cx = min(ny, MAX_CROP), min(nx, MAX_CROP)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    crop = data[y0:y0 + cy, x0:x0 + cx]
    crop = np.asarray(crop.compute() if hasattr(crop, "compute") else crop, dtype=np.float64)
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        raise InputError(f"the image ({ny} x {nx} px) is too small to estimate a lattice period; give a window")
    if not np.isfinite(crop).all():
        raise InputError("estimate_window: the image holds NaN or inf; mask or interpolate them first")
    return crop


def _detrended(crop: np.ndarray) -> np.ndarray:
    """The crop minus its least-squares plane, times a 2-D Hann taper."""
    ny, nx = crop.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    design = np.column_stack([np.ones(crop.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(design, crop.ravel(), rcond=None)
    flat = crop - (design @ coef).reshape(crop.shape)
    return flat * np.outer(taper_1d("hann", ny), taper_1d("hann", nx))


def lattice_periods(image) -> np.ndarray:
    """Periods (px, descending) of the significant peaks of the image's power spectrum.

    Raises
    ------
    InputError
        Not a 2-D finite image, or no peak stands out of the noise (flat or featureless image).
    """
    crop = _central_crop(image)
    flat = _detrended(crop)
    # Rounding in the plane fit leaves ~1e-16 relative residue on a flat image; that is not a lattice.
    if float(np.abs(flat).max()) <= 1e-9 * max(float(np.abs(crop).max()), 1e-300):
        raise InputError("the image is flat: it has no lattice periodicity to size a window from; give a window")
    power = np.abs(scipy.fft.rfft2(flat, workers=-1)) ** 2
    ny, nx = crop.shape
    fy = scipy.fft.fftfreq(ny)[:, None]
    fx = scipy.fft.rfftfreq(nx)[None, :]
    near_dc = np.hypot(fy * ny, fx * nx) < DC_BINS
    power[near_dc] = 0.0
    # Local maxima on the periodic ky axis (wrap) and the half-plane kx axis.
    is_max = power == ndimage.maximum_filter(power, size=3, mode="wrap")
    floor = NOISE_FACTOR * float(np.median(power))
    strongest = float(power.max())
    if strongest <= floor or strongest == 0.0:
        raise InputError("no lattice peak stands out of the noise in the image's power spectrum; "
                         "give a window explicitly")
    peaks = is_max & (power >= max(floor, PEAK_FRACTION * strongest))
    k = np.hypot(np.broadcast_to(fy, power.shape), np.broadcast_to(fx, power.shape))[peaks]
    return np.sort(1.0 / k)[::-1]


def estimate_window(image) -> int:
    """A sliding-FFT window size (px) covering 4-8 periods of the image's largest lattice period.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D array
        The image (calibration is irrelevant: the answer is in pixels). Dask-backed images
        are read only in a central crop of at most 1024 x 1024 px.

    Returns
    -------
    int
        The power of two in ``[4 d, 8 d)`` for the largest significant lattice period ``d``
        (px), clamped to the largest power of two <= the smaller image side, and >= 8.

    Raises
    ------
    InputError
        Not a 2-D finite image, or no lattice periodicity found (flat or pure-noise image).
    """
    d = float(lattice_periods(image)[0])
    window = 1 << int(np.ceil(np.log2(4.0 * d)))  # the power of two in [4d, 8d)
    shape = image.shape
    fit = 1 << int(np.floor(np.log2(min(shape))))
    return int(max(8, min(window, fit)))


__all__ = ["estimate_window", "lattice_periods", "PEAK_FRACTION", "NOISE_FACTOR"]
