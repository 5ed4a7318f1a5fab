"""Calibrated coordinates and the pixel <-> physical mapping.

Pixel (row i, column j) is centred at x_px = j, y_px = i; physical = offset + index * scale.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import CalibrationError, InputError
from .units import check_scale


def linear_coord(n: int, scale: float, offset: float, units: str, dim: str, long_name: str | None = None) -> xr.Variable:
    """A 1-D coordinate ``offset + arange(n) * scale`` with ``units`` in its attrs."""
    scale = check_scale(scale, dim)
    offset = float(offset)
    if not np.isfinite(offset):
        raise CalibrationError(f"{dim} calibration offset is {offset!r}; it must be finite")
    values = offset + np.arange(int(n), dtype=np.float64) * scale
    attrs = {"units": units}
    if long_name:
        attrs["long_name"] = long_name
    return xr.Variable((dim,), values, attrs)


def explicit_coord(values, units: str, dim: str, long_name: str | None = None) -> xr.Variable:
    """A 1-D coordinate from given values; they must be finite and strictly monotonic."""
    values = np.asarray(values, dtype=np.float64)
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


def axis_scale(da: xr.DataArray, dim: str) -> float:
    """Step of a (near-)linear axis, in the axis' units."""
    c = np.asarray(da.coords[dim].values, dtype=np.float64)
    if c.size < 2:
        return float(da.coords[dim].attrs.get("scale", 1.0))
    return float((c[-1] - c[0]) / (c.size - 1))


def axis_offset(da: xr.DataArray, dim: str) -> float:
    """Coordinate of index 0 along ``dim``."""
    return float(da.coords[dim].values[0])


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
