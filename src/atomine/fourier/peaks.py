"""Bragg peaks of an image's power spectrum, with sub-bin refinement calibrated against the taper.

Peak positions are refined per axis from the peak bin and its two neighbours with a
three-point log-magnitude interpolation calibrated against the window's own taper
(its exact discrete transform), which is unbiased for a single lattice fringe. The
spectral grid and calibration helpers here are shared with :mod:`.lattice`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xarray as xr
from scipy import ndimage

from ..errors import InputError
from .taper import taper_1d, taper_spec

# Rayleigh statistics: the median magnitude of pure complex Gaussian noise is
# sigma * sqrt(2 ln 2), with sigma the per-component standard deviation.
_RAYLEIGH_MEDIAN = np.sqrt(2.0 * np.log(2.0))


# --- spectral grid ------------------------------------------------------------------------
class _Grid:
    """Integer bin coordinates of a (ky, kx) spectrum, half-plane (rfft) or full plane (fftshifted)."""

    def __init__(self, ky, kx):
        ky = np.asarray(ky, dtype=np.float64)
        kx = np.asarray(kx, dtype=np.float64)
        if ky.ndim != 1 or kx.ndim != 1 or ky.size < 3 or kx.size < 2:
            raise InputError("the spectrum needs 1-D ky, kx coordinates with >= 3 and >= 2 samples, "
                             f"got {ky.shape}, {kx.shape}")
        if not (np.all(np.isfinite(ky)) and np.all(np.isfinite(kx))):
            raise InputError("the ky/kx coordinates contain NaN or inf")
        self.dky, self.dkx = float(ky[1] - ky[0]), float(kx[1] - kx[0])
        if self.dky <= 0 or self.dkx <= 0:
            raise InputError("ky and kx must be ascending (fftshifted ky; rfft or fftshifted kx)")
        self.ny, self.nx = ky.size, kx.size
        self.y0 = int(np.argmin(np.abs(ky)))
        self.half = bool(kx[0] >= -0.5 * self.dkx)
        self.x0 = 0 if self.half else int(np.argmin(np.abs(kx)))

    def flat(self, m, n):
        """Flat index into the (ky, kx) plane of full-plane bin (m, n), using |F(k)| = |F(-k)| on a half plane."""
        m = np.asarray(m)
        n = np.asarray(n)
        if self.half:
            flip = n < 0
            m = np.where(flip, -m, m)
            n = np.where(flip, -n, n)
            col = np.minimum(n, self.nx - 1)
        else:
            col = (self.x0 + n) % self.nx
        row = (self.y0 + m) % self.ny
        return row * self.nx + col

    def full_bins(self):
        """Integer bin coordinates (m, n) of the full plane, as 2-D arrays."""
        my = np.arange(self.ny) - self.y0
        nmax = (self.nx - 1) if self.half else self.nx - 1 - self.x0
        nmin = -(self.nx - 1) if self.half else -self.x0
        return np.meshgrid(my, np.arange(nmin, nmax + 1), indexing="ij")


# --- taper-calibrated three-point interpolation ------------------------------------------
def _taper_1d(taper, n: int, param: float | None = None) -> np.ndarray:
    """The periodic 1-D taper a sliding-FFT stack used (see :mod:`.taper`); ones for None."""
    name, default = taper_spec(taper)
    return taper_1d(name, n, default if param is None else param)


@lru_cache(maxsize=32)
def _calibration(name, n: int, param: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Table (p, delta): the three-point log-parabola vertex p of a pure fringe offset by delta bins."""
    w = _taper_1d(name, n, param)
    delta = np.linspace(-0.5, 0.5, 2001)
    f = np.arange(-1, 2)[None, :] - delta[:, None]
    spectrum = np.abs(np.exp(-2j * np.pi * f[..., None] * np.arange(n) / n) @ w)
    logs = np.log(np.maximum(spectrum, 1e-12 * spectrum.max()))
    p = _vertex(logs[:, 0], logs[:, 1], logs[:, 2])
    order = np.argsort(p)
    return p[order], delta[order]


def _vertex(lm, l0, lp):
    """Vertex offset of the parabola through (-1, lm), (0, l0), (1, lp)."""
    d = 2.0 * l0 - lm - lp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 0, 0.5 * (lp - lm) / np.where(d > 0, d, 1.0), 0.0)


def _offset(lm, l0, lp, table, sigma_l=None):
    """Sub-bin offset (and its 1-sigma error when the log-magnitude errors are given) from three logs."""
    p = np.clip(_vertex(lm, l0, lp), -0.5, 0.5)
    if table is None:
        delta = p
        slope = np.ones_like(p)
    else:
        delta = np.interp(p, table[0], table[1])
        slope = np.abs(np.gradient(table[1], table[0]))
        slope = np.interp(p, table[0], np.where(np.isfinite(slope), slope, 0.0))
    if sigma_l is None:
        return delta
    d = 2.0 * l0 - lm - lp
    d = np.where(np.abs(d) > 1e-9, d, 1e-9)
    s = lp - lm
    dp_lp = (d + s) / (2 * d**2)
    dp_lm = (-d + s) / (2 * d**2)
    dp_l0 = -s / d**2
    sm, s0, sp = sigma_l
    sigma_p = np.sqrt((dp_lm * sm) ** 2 + (dp_l0 * s0) ** 2 + (dp_lp * sp) ** 2)
    return delta, slope * sigma_p


# --- global peaks -----------------------------------------------------------------------------
def power_spectrum(image, taper: str | None = "hann") -> xr.DataArray:
    """Power spectrum of a whole image on the full, fftshifted plane, for :func:`find_lattice_peaks`.

    Parameters
    ----------
    image : xarray.DataArray (y, x) in nm, or 2-D ndarray (pixel units)
    taper : str, None or (str, float)
        Separable taper against edge streaks (names as in :mod:`.taper`).

    Returns
    -------
    xarray.DataArray (ky, kx), float64, k in cycles per image length unit (1/nm).
    """
    data, (sy, sx), units = _image_array(image)
    data = data - data.mean()
    data = data * np.outer(_taper_1d(taper, data.shape[0]), _taper_1d(taper, data.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(data))) ** 2
    ky = np.fft.fftshift(np.fft.fftfreq(data.shape[0], d=sy))
    kx = np.fft.fftshift(np.fft.fftfreq(data.shape[1], d=sx))
    k_units = f"1/{units}"
    return xr.DataArray(power, dims=("ky", "kx"), coords={"ky": ("ky", ky, {"units": k_units}),
                                                          "kx": ("kx", kx, {"units": k_units})},
                        name="power", attrs={"units": "counts^2", "taper": taper})


def _image_array(image):
    """(float64 ndarray, (y, x) pixel size, length unit) of a 2-D image; InputError for anything else."""
    if isinstance(image, xr.DataArray):
        if image.ndim != 2 or tuple(image.dims) != ("y", "x"):
            raise InputError(f"the image must be a 2-D DataArray with dims ('y', 'x'), got dims {tuple(image.dims)}")
        from ..data import axis_scale, axis_units
        scale = (abs(axis_scale(image, "y")), abs(axis_scale(image, "x")))
        units = axis_units(image, "x") or "px"
        data = np.asarray(image.values, dtype=np.float64)
    else:
        data = np.asarray(image.compute() if hasattr(image, "compute") else image, dtype=np.float64)
        if data.ndim != 2:
            raise InputError(f"the image must be 2-D (y, x), got {data.ndim}-D with shape {data.shape}")
        scale, units = (1.0, 1.0), "px"
    if min(data.shape) < 8:
        raise InputError(f"the image is {data.shape[0]} x {data.shape[1]} pixels; it needs at least 8 a side")
    if not np.all(np.isfinite(data)):
        raise InputError("the image contains NaN or inf; fill or crop unmeasured pixels first")
    return data, scale, units


def find_lattice_peaks(power_2d, ky=None, kx=None, n: int = 2, *, k_min: float | None = None,
                       min_angle_deg: float = 20.0) -> np.ndarray:
    """The strongest Bragg peaks of a 2-D spectrum, mutually non-collinear, with sub-bin positions.

    Parameters
    ----------
    power_2d : array_like or xarray.DataArray, shape (nky, nkx)
        Power (or magnitude) on a full fftshifted plane or an rfft half plane (kx >= 0).
    ky, kx : array_like, optional
        Ascending k coordinates (cycles/nm); default the DataArray's ``ky``/``kx`` coords.
    n : int
        Number of peaks (>= 1). The first is the strongest peak; each next one is the
        strongest remaining peak at >= ``min_angle_deg`` from every chosen one, so a
        peak's harmonics and its centrosymmetric partner are never picked.
    k_min : float, optional
        Peaks with |k| < k_min (cycles/nm) are ignored (the DC / background region);
        default 2.5 bins.
    min_angle_deg : float
        Smallest angle between chosen peak directions, degrees.

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        Rows (gx, gy) in cycles/nm, strongest first; the sign of each is arbitrary
        (a spectrum of a real image is centrosymmetric). Positions are refined with a
        Gaussian (log-parabola) through each peak bin and its neighbours.

    Raises
    ------
    InputError
        Not 2-D, NaN, no coordinates, or fewer than ``n`` distinct peaks.
    """
    if isinstance(power_2d, xr.DataArray):
        ky = power_2d.coords["ky"].values if ky is None and "ky" in power_2d.coords else ky
        kx = power_2d.coords["kx"].values if kx is None and "kx" in power_2d.coords else kx
        power_2d = power_2d.values
    p = np.asarray(power_2d, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(f"power_2d must be a 2-D spectrum (ky, kx), got shape {p.shape}")
    if ky is None or kx is None:
        raise InputError("give the ky and kx coordinates (cycles/nm) of the spectrum")
    if p.shape != (np.size(ky), np.size(kx)):
        raise InputError(f"power_2d has shape {p.shape} but ky, kx have {np.size(ky)}, {np.size(kx)} samples")
    if not np.all(np.isfinite(p)):
        raise InputError("the spectrum contains NaN or inf")
    n = int(n)
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    grid = _Grid(ky, kx)
    m, nn = grid.full_bins()
    full = p.ravel()[grid.flat(m, nn)]  # a full plane, so peaks on the kx = 0 edge have both neighbours
    kyy, kxx = m * grid.dky, nn * grid.dkx
    kmag = np.hypot(kyy, kxx)
    k_min = 2.5 * max(grid.dky, grid.dkx) if k_min is None else float(k_min)
    is_max = (full == ndimage.maximum_filter(full, size=3, mode="nearest")) & (kmag >= k_min) & (full > 0)
    is_max[[0, -1], :] = False
    is_max[:, [0, -1]] = False
    rows, cols = np.nonzero(is_max)
    order = np.argsort(full[rows, cols])[::-1]
    chosen: list[np.ndarray] = []
    cos_lim = np.cos(np.deg2rad(float(min_angle_deg)))
    for r, c in zip(rows[order], cols[order]):  # a loop over candidate peaks until n are accepted
        g = _refine_global(full, r, c, kxx[r, c], kyy[r, c], grid)
        if all(abs(np.dot(g, h)) / (np.linalg.norm(g) * np.linalg.norm(h)) < cos_lim for h in chosen):
            chosen.append(g)
            if len(chosen) == n:
                break
    if len(chosen) < n:
        raise InputError(f"found only {len(chosen)} non-collinear peak(s) of the {n} asked for; the image shows no "
                         "crystal lattice at this resolution, or k_min is too large")
    return np.array(chosen)


def _refine_global(full, r, c, kx0, ky0, grid) -> np.ndarray:
    logs = np.log(np.maximum(full[r - 1:r + 2, c - 1:c + 2], 1e-300))
    dx = _offset(logs[1, 0], logs[1, 1], logs[1, 2], None)
    dy = _offset(logs[0, 1], logs[1, 1], logs[2, 1], None)
    return np.array([kx0 + dx * grid.dkx, ky0 + dy * grid.dky])


# --- local lattice from a sliding-FFT stack ------------------------------------------------------
