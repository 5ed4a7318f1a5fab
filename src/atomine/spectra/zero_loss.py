"""Zero-loss peak (ZLP) position per pixel, alignment of every spectrum on it, and energy calibration.

Position. The ZLP of one pixel is located to a fraction of a channel by fitting a Gaussian
to its top channels: a parabola fitted to ``ln N`` over the channels within about one
standard deviation of the maximum, weighted by ``N`` (the inverse variance of ``ln N`` for
Poisson counts). A Gaussian is exactly a parabola in ``ln N``, so the fit has no
discretisation bias, unlike a parabola through the counts themselves (offered as
``method="parabola"``, the classic three-point interpolation). All pixels are fitted at
once: each fit is a batched 3x3 linear solve.

Shift. Every spectrum is moved so its ZLP sits at 0 eV: ``aligned(E) = S(E + s)`` with ``s``
the pixel's ZLP position, by *linear interpolation* between neighbouring channels. It is
chosen over a Fourier (phase-ramp) shift because a spectrum does not go to zero at the
ends of its window (the ZLP sits near the left end of a low-loss window, the core-loss
background is high at its start): the FFT treats the window as periodic, so the jump
between the ends rings across the whole spectrum, and the ringing makes counts negative.
Linear interpolation is local, keeps counts non-negative and preserves their sum
(channels are moved, not invented); its cost is a slight smoothing, a two-channel
kernel whose variance ``f (1 - f)`` channel^2 (at most 1/4) is small beside the width of
a resolution-broadened peak. Channels that would need data from beyond the recorded
window are cropped (or set to NaN).

Calibration. After alignment the energy axis is absolute: the ZLP is at 0 eV in every
pixel. The same shifts applied to a simultaneously recorded core-loss spectrum image (dual
EELS) remove its drift and calibrate its offset. :func:`calibrate_offset` instead only
relabels the axis by the mean ZLP position, without resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..data import array_hash, with_step
from ..errors import InputError
from ._checks import (check_finite, finite, is_dask, map_pixels, spectral_data, uniform_axis, whole_spectra,
                      window_slice)

METHODS = ("gaussian", "parabola")


def _three_point(y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex offset (channels) and curvature of a parabola through y[k-1], y[k], y[k+1] (rows)."""
    rows = np.arange(y.shape[0])
    kk = np.clip(k, 1, y.shape[1] - 2)
    a, b, c = y[rows, kk - 1], y[rows, kk], y[rows, kk + 1]
    den = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(den < 0, 0.5 * (a - c) / den, 0.0)
    return kk + np.clip(delta, -1.0, 1.0) - k, den


def _log_parabola(counts: np.ndarray, k: np.ndarray, half: int) -> np.ndarray:
    """Vertex offset (channels from k) of a Poisson-weighted parabola fit to ln N over k-half..k+half."""
    n_e = counts.shape[1]
    u = np.arange(-half, half + 1, dtype=np.float64)
    idx = np.clip(k[:, None] + u.astype(np.int64)[None, :], 0, n_e - 1)
    n = np.take_along_axis(counts, idx, axis=1)
    inside = (k[:, None] + u[None, :] >= 0) & (k[:, None] + u[None, :] <= n_e - 1)
    w = np.where(inside & (n > 0), n, 0.0)
    y = np.log(np.maximum(n, 1e-12))
    basis = np.stack([np.ones_like(u), u, u * u])  # (3, m)
    lhs = np.einsum("pm,im,jm->pij", w, basis, basis)
    rhs = np.einsum("pm,im,pm->pi", w, basis, y)
    lhs += np.eye(3)[None] * 1e-12 * np.maximum(lhs[:, :1, :1], 1.0)  # no singular solve on empty fits
    coef = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    c1, c2 = coef[:, 1], coef[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = -c1 / (2.0 * c2)
    ok = (c2 < 0) & np.isfinite(delta) & (np.abs(delta) <= half)
    fallback, _ = _three_point(y, k)
    return np.where(ok, delta, fallback)


def _default_half_width(counts: np.ndarray, k: np.ndarray) -> int:
    """Channels either side used by the Gaussian fit: about one standard deviation of the peak."""
    y = np.log(np.maximum(counts, 1e-12))
    _, curv = _three_point(y, k)
    curv = curv[curv < 0]
    if curv.size == 0:
        return 1
    sigma = np.sqrt(-1.0 / np.median(curv))  # ln of a Gaussian has second difference -1/sigma^2
    return int(np.clip(np.round(sigma), 1, 25))


def _positions_block(block: np.ndarray, sl: slice, e_start: float, step: float, method: str, half) -> np.ndarray:
    lead = block.shape[:-1]
    counts = block.reshape(-1, block.shape[-1])[:, sl]
    k = np.argmax(counts, axis=1)
    if method == "parabola":
        delta, _ = _three_point(counts, k)
    else:
        h = _default_half_width(counts, k) if half is None else half
        delta = _log_parabola(counts, k, h)
    return (e_start + (sl.start + k + delta) * step).reshape(lead)


def zlp_position(counts, energy, *, method: str = "gaussian", half_width: int | None = None, search_ev=None):
    """Energy (eV) of the zero-loss peak of every spectrum, to a fraction of a channel.

    Parameters
    ----------
    counts : array_like or dask array, shape (..., n_e)
        Low-loss counts with the energy axis last.
    energy : array_like (n_e,)
        Evenly spaced, increasing energy-loss axis (eV).
    method : {"gaussian", "parabola"}
        ``"gaussian"``: Poisson-weighted parabola fit to ``ln N`` over ``2 half_width + 1``
        channels (exact for a Gaussian peak). ``"parabola"``: parabola through the three
        top channels of ``N``.
    half_width : int, optional
        Channels either side of the maximum for ``"gaussian"``; default about one standard
        deviation of the peak, estimated from the data (from the first block of dask input).
    search_ev : (float, float), optional
        Window (eV) holding the ZLP; default the whole axis (the ZLP is the highest peak).

    Returns
    -------
    ndarray or dask array, shape (...)
        ZLP position (eV) of each spectrum.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    e = np.asarray(energy, dtype=np.float64)
    e_start, step = uniform_axis(e, "the low-loss energy axis", min_channels=5)
    if np.shape(counts)[-1] != e.size:
        raise InputError(f"the counts have {np.shape(counts)[-1]} channels but the energy axis has {e.size}")
    sl = slice(0, e.size) if search_ev is None else window_slice(e, search_ev, "search_ev", 3)
    if half_width is not None and (not isinstance(half_width, (int, np.integer)) or isinstance(half_width, bool)
                                   or not 1 <= half_width <= (sl.stop - sl.start - 1) // 2):
        raise InputError(f"half_width must be a whole number of channels from 1 to {(sl.stop - sl.start - 1) // 2}, "
                         f"got {half_width!r}")
    data = counts if is_dask(counts) else np.asarray(counts)
    if is_dask(data) and method == "gaussian" and half_width is None:
        # one width for every block, so the result does not depend on the chunking
        first = np.asarray(whole_spectra(data).blocks[(0,) * data.ndim].compute(), dtype=np.float64)
        first = finite(first, "the low-loss spectra").reshape(-1, e.size)[:, sl]
        half_width = _default_half_width(first, np.argmax(first, axis=1))
    return map_pixels(lambda b: _positions_block(b, sl, e_start, step, method, half_width), data, n_out=None,
                      what="the low-loss spectra")


def _shift_block(block: np.ndarray, shifts: np.ndarray, step: float) -> np.ndarray:
    """Rows evaluated at E + shift by linear interpolation; NaN where that lies outside the window."""
    lead, n_e = block.shape[:-1], block.shape[-1]
    rows = block.reshape(-1, n_e)
    pos = shifts.reshape(-1, 1) / step + np.arange(n_e)[None, :]  # fractional source channel
    i0 = np.floor(pos).astype(np.int64)
    f = pos - i0
    a = np.take_along_axis(rows, np.clip(i0, 0, n_e - 1), axis=1)
    b = np.take_along_axis(rows, np.clip(i0 + 1, 0, n_e - 1), axis=1)
    out = a * (1.0 - f) + b * f
    outside = (pos < -1e-9) | (pos > n_e - 1 + 1e-9)
    return np.where(outside, np.nan, out).reshape(*lead, n_e)


def _shift_map(shifts, spectra: xr.DataArray):
    lead = spectra.shape[:-1]
    s = shifts.data if isinstance(shifts, xr.DataArray) else shifts
    s = s.compute() if is_dask(s) else np.asarray(s, dtype=np.float64)
    if s.shape != lead:
        raise InputError(f"the shifts have shape {s.shape} but the spectra have {lead} pixels")
    if not np.all(np.isfinite(s)):
        raise InputError("the shifts hold NaN or inf; every pixel needs a finite ZLP position")
    return s


def shift_spectra(spectra: xr.DataArray, shifts, *, crop: bool = True) -> xr.DataArray:
    """Move every spectrum by its own energy shift: ``out(E) = in(E + shift)`` (linear interpolation).

    Parameters
    ----------
    spectra : xarray.DataArray, dims (..., "energy")
        Spectra on an evenly spaced energy axis (eV), numpy or dask backed.
    shifts : xarray.DataArray or array_like, shape of the pixel dims
        Shift of each pixel (eV); the ZLP positions of :func:`zero_loss_shifts` put every
        ZLP (and the edges of a simultaneous core-loss SI) where it belongs.
    crop : bool
        Keep only the channels that hold data in every pixel after the shift (default);
        otherwise keep the axis and set the channels shifted in from outside to NaN.

    Returns
    -------
    xarray.DataArray
        Float32 shifted spectra on the (cropped) same axis, with a provenance step.
    """
    data, energy = spectral_data(spectra, "energy", "the spectra")
    _, step = uniform_axis(energy, "the energy axis", min_channels=3)
    check_finite(data, "the spectra")
    s = _shift_map(shifts, spectra)
    n_e = energy.size
    lo = max(0, int(np.ceil(-s.min() / step - 1e-9)))  # channels needing data below the first one
    hi = n_e - max(0, int(np.ceil(s.max() / step - 1e-9)))
    if crop and hi - lo < 2:
        raise InputError(f"shifts of {s.min():g}..{s.max():g} eV leave fewer than 2 channels common to every pixel "
                         f"on a {energy[-1] - energy[0]:g} eV window")
    out = map_pixels(lambda b, sb: _shift_block(b, sb, step).astype(np.float32), data, s, n_out=n_e,
                     what="the spectra", dtype=np.float32)
    if not is_dask(out):
        out = out.astype(np.float32)
    da_out = xr.DataArray(out, dims=spectra.dims, coords=spectra.coords, name=spectra.name, attrs=dict(spectra.attrs))
    if crop:
        da_out = da_out.isel(energy=slice(lo, hi))
    params = {"method": "linear interpolation", "crop": bool(crop), "shift_min_ev": float(s.min()),
              "shift_max_ev": float(s.max())}
    return with_step(da_out, "spectra.shift_spectra", params, None if is_dask(data) else array_hash(spectra))


def zero_loss_shifts(lowloss: xr.DataArray, *, method: str = "gaussian", half_width: int | None = None,
                     search_ev=None) -> xr.DataArray:
    """ZLP position (eV) of every pixel of a low-loss spectrum image (see :func:`zlp_position`).

    Returns
    -------
    xarray.DataArray
        Pixel map (the non-energy dims, float64, units eV) named ``"zlp_position"``;
        computed even for dask input (it is one number per pixel).
    """
    data, energy = spectral_data(lowloss, "energy", "the low-loss spectra")
    check_finite(data, "the low-loss spectra")
    pos = zlp_position(data, energy, method=method, half_width=half_width, search_ev=search_ev)
    pos = pos.compute() if is_dask(pos) else pos
    dims = lowloss.dims[:-1]
    return xr.DataArray(pos, dims=dims, coords={d: lowloss.coords[d] for d in dims if d in lowloss.coords},
                        name="zlp_position", attrs={"units": "eV", "method": method})


def calibrate_offset(spectra: xr.DataArray, offset_ev: float) -> xr.DataArray:
    """The spectra with the energy axis relabelled ``E - offset_ev`` (no resampling, data shared).

    Use the mean ZLP position of the low-loss as ``offset_ev`` to put the zero loss at 0 eV
    when the drift across the scan is negligible.
    """
    _, energy = spectral_data(spectra, "energy", "the spectra")
    off = float(offset_ev)
    if not np.isfinite(off):
        raise InputError(f"offset_ev must be a finite number, got {offset_ev!r}")
    out = spectra.assign_coords(energy=("energy", energy - off, dict(spectra.coords["energy"].attrs)))
    return with_step(out, "spectra.calibrate_offset", {"offset_ev": off})


@dataclass(frozen=True)
class ZeroLossAlignment:
    """Result of :func:`align_zero_loss`.

    Attributes
    ----------
    lowloss : xarray.DataArray
        Low-loss spectra with every ZLP at 0 eV.
    shifts : xarray.DataArray
        ZLP position of each pixel before alignment (eV).
    offset_ev : float
        Mean ZLP position: the energy-offset error of the recorded axis (eV).
    coreloss : xarray.DataArray or None
        The simultaneous core-loss spectra moved by the same shifts.
    """

    lowloss: xr.DataArray
    shifts: xr.DataArray
    offset_ev: float
    coreloss: xr.DataArray | None = None


def align_zero_loss(lowloss: xr.DataArray, coreloss: xr.DataArray | None = None, *, method: str = "gaussian",
                    half_width: int | None = None, search_ev=None, crop: bool = True) -> ZeroLossAlignment:
    """Put the zero loss of every pixel at 0 eV, and move a simultaneous core-loss SI with it.

    Parameters
    ----------
    lowloss : xarray.DataArray, dims (..., "energy")
        Low-loss spectrum image (counts) holding the ZLP.
    coreloss : xarray.DataArray, optional
        Core-loss spectra recorded with it (same pixels): they are shifted by the same
        amounts, which removes their drift and calibrates their energy offset.
    method, half_width, search_ev
        See :func:`zlp_position`.
    crop : bool
        See :func:`shift_spectra`.
    """
    shifts = zero_loss_shifts(lowloss, method=method, half_width=half_width, search_ev=search_ev)
    if coreloss is not None:
        spectral_data(coreloss, "energy", "the core-loss spectra")
        if coreloss.shape[:-1] != lowloss.shape[:-1]:
            raise InputError(f"the core-loss spectra have {coreloss.shape[:-1]} pixels but the low-loss "
                             f"{lowloss.shape[:-1]}; they must be recorded together")
    aligned = shift_spectra(lowloss, shifts, crop=crop)
    core = shift_spectra(coreloss, shifts, crop=crop) if coreloss is not None else None
    return ZeroLossAlignment(aligned, shifts, float(shifts.mean()), core)


__all__ = ["METHODS", "ZeroLossAlignment", "align_zero_loss", "calibrate_offset", "shift_spectra",
           "zero_loss_shifts", "zlp_position"]
