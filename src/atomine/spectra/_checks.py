"""Input checks and pixel-block mapping shared by the spectral preprocessing modules.

Every public function of :mod:`atomine.spectra` takes spectra with the spectral axis last
(an xarray DataArray such as ``("y", "x", "energy")``, or a plain array with the axis
given). These helpers turn bad input into one clear :class:`~atomine.errors.InputError`
and map a per-pixel numpy function over the pixel blocks of a dask array, so that a
spectrum image larger than memory is processed one block at a time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError


def is_dask(data) -> bool:
    """True for a dask array (duck-typed: dask stays an optional import)."""
    return hasattr(data, "dask") and hasattr(data, "compute") and not isinstance(data, np.ndarray)


def spectral_data(spectra, dim: str, what: str):
    """(data with the spectral axis last, its coordinate values as float64) of a DataArray.

    Raises
    ------
    InputError
        Not a DataArray, no ``dim`` axis, ``dim`` not last, or no numeric coordinate on it.
    """
    if not isinstance(spectra, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with a {dim!r} axis (build it with "
                         f"atomine.data.spectrum_image / spectrum), got {type(spectra).__name__}")
    if dim not in spectra.dims:
        raise InputError(f"{what} has no {dim!r} axis (dims {tuple(map(str, spectra.dims))})")
    if spectra.dims[-1] != dim:
        raise InputError(f"{what}: the {dim!r} axis must be last, got dims {tuple(map(str, spectra.dims))}; "
                         f"use .transpose(..., {dim!r})")
    if dim not in spectra.coords or np.asarray(spectra.coords[dim].values).dtype.kind not in "biuf":
        raise InputError(f"{what}: the {dim!r} axis has no numeric calibration; build the data with atomine.data")
    return spectra.data, np.asarray(spectra.coords[dim].values, dtype=np.float64)


def uniform_axis(values, what: str, min_channels: int = 3) -> tuple[float, float]:
    """(first value, step) of a finite, increasing, evenly spaced axis, else InputError.

    Derivative filters, shifts and windows in channels assume one step everywhere.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < min_channels:
        raise InputError(f"{what} needs a 1-D axis of at least {min_channels} channels, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise InputError(f"{what}: the axis holds NaN or inf; fix the calibration")
    d = np.diff(v)
    if np.any(d <= 0):
        raise InputError(f"{what}: the axis is not increasing; reverse it (and the data) or fix the calibration")
    step = float((v[-1] - v[0]) / (v.size - 1))
    if not np.allclose(d, step, rtol=1e-4, atol=0.0):
        raise InputError(f"{what}: the axis is not evenly spaced (steps {d.min():g}..{d.max():g}); "
                         "resample it onto a uniform axis first")
    return float(v[0]), step


def finite(block, what: str) -> np.ndarray:
    """The block as float64, or InputError naming how many channels hold NaN/inf."""
    arr = np.asarray(block, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{what}: {int(bad.sum())} channel values are NaN or inf; mask or interpolate them "
                         "before preprocessing")
    return arr


def check_finite(data, what: str) -> None:
    """NaN/inf check of a numpy array now; a dask array is checked block by block when computed."""
    if not is_dask(data):
        finite(data, what)


def number(value, name: str, *, positive: bool = False, allow_zero: bool = True) -> float:
    """``value`` as a finite float (positive when asked), else InputError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or (positive and (v < 0 or (v == 0 and not allow_zero))):
        raise InputError(f"{name} must be a {'positive' if positive else 'finite'} number, got {value!r}")
    return v


def window_slice(axis: np.ndarray, window, what: str, min_channels: int) -> slice:
    """Channel slice of an ``(start, end)`` window in axis units, checked against the axis.

    Raises
    ------
    InputError
        Not two increasing numbers, outside the axis, or fewer than ``min_channels`` channels.
    """
    try:
        lo, hi = (float(w) for w in window)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a (start, end) pair of numbers, got {window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise InputError(f"{what} must be two finite numbers with start < end, got {window!r}")
    if lo < axis[0] - 1e-9 * abs(axis[0]) or hi > axis[-1] + 1e-9 * abs(axis[-1]):
        raise InputError(f"{what} ({lo:g}, {hi:g}) lies outside the axis {axis[0]:g}..{axis[-1]:g}; "
                         "choose a window inside it")
    i0 = int(np.searchsorted(axis, lo, side="left"))
    i1 = int(np.searchsorted(axis, hi, side="right"))
    if i1 - i0 < min_channels:
        raise InputError(f"{what} ({lo:g}, {hi:g}) holds {i1 - i0} channels; it needs at least {min_channels}")
    return slice(i0, i1)


def whole_spectra(data):
    """A dask array rechunked so every block holds whole spectra (the last axis in one chunk)."""
    return data.rechunk({data.ndim - 1: -1}) if len(data.chunks[-1]) > 1 else data


def map_pixels(fn, data, *extra, n_out: int | None, what: str, dtype=np.float64):
    """Apply ``fn(block, *extra_blocks) -> array`` to every pixel block, lazily for dask input.

    ``fn`` receives a finite float64 block of shape (..., n_e) and the matching blocks of
    ``extra`` arrays (pixel maps with the same leading shape, no spectral axis); it returns
    (..., n_out) arrays, or (...) when ``n_out`` is None. Numpy input is processed at once.
    """
    if not is_dask(data):
        return fn(finite(data, what), *extra)
    import dask.array as da

    data = whole_spectra(data)
    lead = data.chunks[:-1]
    # pixel maps lack the spectral axis: give them a length-1 one so their blocks line up
    extra = [da.asarray(e).rechunk(lead)[..., None] for e in extra]

    def _block(block, *others):
        return fn(finite(block, what), *(o[..., 0] for o in others))

    if n_out is None:
        return da.map_blocks(_block, data, *extra, drop_axis=data.ndim - 1, chunks=lead, dtype=dtype)
    return da.map_blocks(_block, data, *extra, chunks=(*lead, (n_out,)), dtype=dtype)
