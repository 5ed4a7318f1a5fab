"""Calibrated coordinates and the pixel <-> physical mapping.

Pixel (row i, column j) is centred at x_px = j, y_px = i; physical = offset + index * scale.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import CalibrationError, InputError
from .units import check_scale


def linear_coord(n: int, scale: float, offset: float, units: str, dim: str, long_name: str | None = None) -> xr.Variable:
    """A 1-D coordinate ``offset + arange(n) * scale`` with ``units`` in its attrs.

    Parameters
    ----------
    n : int
        Number of samples (>= 0; a float must be a whole number).
    scale, offset : float
        Step and first value, in ``units``.

    Raises
    ------
    InputError
        ``n`` is negative, fractional or not a number.
    CalibrationError
        ``scale`` is zero, NaN, infinite or not a number; ``offset`` is not a finite number.
    """
    n = _count(n, dim)
    scale = check_scale(scale, dim)
    offset = _finite(offset, f"{dim} calibration offset")
    values = offset + np.arange(n, dtype=np.float64) * scale
    attrs = {"units": units}
    if long_name:
        attrs["long_name"] = long_name
    return xr.Variable((dim,), values, attrs)


def _count(n, dim: str) -> int:
    """A sample count: a non-negative whole number (``3.0`` is accepted, ``2.5`` and ``-1`` are not)."""
    try:
        value = float(n)
        whole = int(value) if np.isfinite(value) and value == int(value) else None
    except (TypeError, ValueError, OverflowError):
        whole = None
    if whole is None or whole < 0 or isinstance(n, (str, bytes)):
        raise InputError(f"{dim} axis length is {n!r}; it must be a whole number of samples >= 0")
    return whole


def _finite(value, what: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{what} is {value!r}, not a number") from None
    if not np.isfinite(f):
        raise CalibrationError(f"{what} is {f!r}; it must be finite")
    return f


def explicit_coord(values, units: str, dim: str, long_name: str | None = None) -> xr.Variable:
    """A 1-D coordinate from given values; they must be finite and strictly monotonic numbers.

    Raises
    ------
    CalibrationError
        The values are not numbers, not 1-D, hold NaN/inf, or are not strictly monotonic.
    """
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{dim} axis values are not numbers ({_preview(values)}); give the coordinates "
                               f"in {units or 'the axis units'}") from None
    if values.ndim != 1:
        raise CalibrationError(f"{dim} axis must be 1-D, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise CalibrationError(f"{dim} axis contains NaN or inf; fix the calibration")
    if values.size > 1:
        d = np.diff(values)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise CalibrationError(f"{dim} axis is not strictly monotonic; fix the calibration")
    attrs = {"units": units}
    if long_name:
        attrs["long_name"] = long_name
    return xr.Variable((dim,), values, attrs)


def _preview(values) -> str:
    text = repr(values)
    return text if len(text) <= 60 else text[:57] + "..."


def _coord_values(da: xr.DataArray, dim: str) -> np.ndarray:
    """The numeric coordinate along ``dim``; InputError naming the dim when there is none."""
    if not isinstance(da, xr.DataArray):
        raise InputError(f"expected an xarray.DataArray, got {type(da).__name__}")
    if dim not in da.dims:
        raise InputError(f"the data have no {dim!r} axis (dims {tuple(str(d) for d in da.dims)})")
    if dim not in da.coords:
        raise InputError(f"the {dim!r} axis has no coordinates, so its calibration is unknown; build the data "
                         "with the atomine.data constructors")
    values = np.asarray(da.coords[dim].values)
    if values.dtype.kind not in "biuf":
        raise InputError(f"the {dim!r} axis holds labels ({values.dtype}), not calibrated numbers")
    return values.astype(np.float64)


def axis_scale(da: xr.DataArray, dim: str) -> float:
    """Step of a (near-)linear axis, in the axis' units: (last - first) / (n - 1).

    Raises
    ------
    InputError
        ``da`` has no numeric coordinate along ``dim``.
    """
    c = _coord_values(da, dim)
    if c.size < 2:
        return float(da.coords[dim].attrs.get("scale", 1.0))
    return float((c[-1] - c[0]) / (c.size - 1))


def axis_offset(da: xr.DataArray, dim: str) -> float:
    """Coordinate of index 0 along ``dim``.

    Raises
    ------
    InputError
        ``da`` has no numeric coordinate along ``dim``.
    """
    return float(_coord_values(da, dim)[0])


def uniform_axis(values, rtol: float = 1e-6) -> tuple[float, float] | None:
    """``(offset, scale)`` of evenly spaced numbers, or None when they are not evenly spaced.

    The scale is (last - first) / (n - 1), not the first step, so rounding in any one step
    does not leak into the whole axis. Values may deviate from the line by ``rtol`` times
    the scale. One value gives scale 1.0.
    """
    v = np.asarray(values)
    if v.ndim != 1 or v.size == 0 or v.dtype.kind not in "biuf":
        return None
    v = v.astype(np.float64)
    if not np.all(np.isfinite(v)):
        return None
    if v.size < 2:
        return float(v[0]), 1.0
    scale = float((v[-1] - v[0]) / (v.size - 1))
    if scale == 0.0 or not np.allclose(v, v[0] + np.arange(v.size) * scale, rtol=0.0, atol=rtol * abs(scale)):
        return None
    return float(v[0]), scale


def axis_units(da: xr.DataArray, dim: str) -> str:
    """Units of the coordinate along ``dim`` ("" when absent)."""
    return str(da.coords[dim].attrs.get("units", "")) if dim in da.coords else ""


def is_calibrated(da: xr.DataArray) -> bool:
    """True when the spatial axes are in physical units (not pixels)."""
    return all(axis_units(da, d) not in ("", "px") for d in ("y", "x") if d in da.dims)


def px_to_phys(da: xr.DataArray, x_px, y_px):
    """Pixel positions (column, row; sub-pixel allowed) to physical (x, y) in the axes' units."""
    x_px = np.asarray(x_px, dtype=np.float64)
    y_px = np.asarray(y_px, dtype=np.float64)
    x = axis_offset(da, "x") + x_px * axis_scale(da, "x")
    y = axis_offset(da, "y") + y_px * axis_scale(da, "y")
    return x, y


def phys_to_px(da: xr.DataArray, x, y):
    """Physical (x, y) in the axes' units to pixel positions (column, row), sub-pixel."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_px = (x - axis_offset(da, "x")) / axis_scale(da, "x")
    y_px = (y - axis_offset(da, "y")) / axis_scale(da, "y")
    return x_px, y_px


def require_dims(da: xr.DataArray, dims: tuple[str, ...], what: str = "input") -> None:
    """Raise InputError unless ``da`` has exactly these dims in this order."""
    if tuple(da.dims) != tuple(dims):
        raise InputError(f"{what} must have dims {dims}, got {tuple(da.dims)}")
