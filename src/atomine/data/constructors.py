"""Constructors for calibrated images, spectrum images and CITS grids.

Every public array in atomine is an ``xarray.DataArray`` made here, so the data
conventions (dims, coordinate units, attrs) hold everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..errors import CalibrationError, InputError
from .axes import explicit_coord, linear_coord
from .metadata import jsonable, normalise_metadata


class UncalibratedWarning(UserWarning):
    """Data without a spatial calibration were given pixel units."""


# Above this many elements a dask array is not checked for NaN at construction time:
# the check would read the whole file. Algorithms check the chunks they touch.
_EAGER_CHECK_LIMIT = 64 * 1024**2


def check_values(data, what: str = "data", min_ndim: int = 1, max_ndim: int | None = None, *,
                 allow_nan: bool = False) -> None:
    """Raise InputError for empty, wrongly dimensioned or non-finite numeric data.

    ``allow_nan=True`` is for readers of measurements with unmeasured points (an aborted
    scan or grid): NaN/inf pass, but data that hold no finite value at all still fail (for
    lazy data this is left to the reader, so that opening a file does not read it).
    """
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) < min_ndim or (max_ndim is not None and len(shape) > max_ndim):
        want = f"{min_ndim}" if max_ndim == min_ndim else f"{min_ndim}..{max_ndim or 'n'}"
        raise InputError(f"{what} must have {want} dimensions, got {len(shape)} (shape {shape})")
    if any(s == 0 for s in shape):
        raise InputError(f"{what} is empty (shape {shape})")
    dtype = np.dtype(getattr(data, "dtype", np.float64))
    if dtype.kind not in "biufc":
        raise InputError(f"{what} has non-numeric dtype {dtype}")
    if dtype.kind in "fc":
        is_lazy = hasattr(data, "compute") and not isinstance(data, np.ndarray)
        if is_lazy and (allow_nan or int(np.prod(shape)) > _EAGER_CHECK_LIMIT):
            # Scanning would read the whole file at open; a reader passing allow_nan has
            # already checked that something was measured.
            return
        finite = np.isfinite(data)
        n_bad = int((~finite).sum().compute() if is_lazy else (~finite).sum())
        if allow_nan and n_bad < int(np.prod(shape)):
            return
        if n_bad:
            total = int(np.prod(shape))
            kind = "all values are" if n_bad == total else f"{n_bad} of {total} values are"
            raise InputError(f"{what}: {kind} NaN or inf; mask or interpolate them before analysis")


def _pair(value, what: str) -> tuple[float, float]:
    """A scalar (same for y and x) or a (y, x) pair of numbers; CalibrationError for anything else."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{what} is {value!r}, not a number or a (y, x) pair of numbers") from None
    if arr.ndim == 0:
        return float(arr), float(arr)
    if arr.shape != (2,):
        raise CalibrationError(f"{what} must be one number or a (y, x) pair, got {len(arr.ravel())} values "
                               f"(shape {arr.shape})")
    return float(arr[0]), float(arr[1])


def _spatial_coords(ny: int, nx: int, pixel_size, origin, units: str, what: str) -> dict[str, xr.Variable]:
    if pixel_size is None:
        warnings.warn(f"{what} has no spatial calibration; axes are in pixels (units 'px')", UncalibratedWarning, stacklevel=3)
        sizes, units = (1.0, 1.0), "px"
    else:
        sizes = _pair(pixel_size, f"{what}: pixel_size")
    if origin is not None and np.ndim(origin) == 0:
        raise CalibrationError(f"{what}: origin must be a (y, x) pair of numbers, got {origin!r}")
    oy, ox = (0.0, 0.0) if origin is None else _pair(origin, f"{what}: origin")
    return {
        "y": linear_coord(ny, sizes[0], oy, units, "y"),
        "x": linear_coord(nx, sizes[1], ox, units, "x"),
    }


def _attrs(signal: str, units: str, metadata, original_metadata, provenance) -> dict[str, Any]:
    return {
        "signal": signal,
        "units": units,
        "metadata": normalise_metadata(metadata),
        "original_metadata": jsonable(original_metadata or {}),
        "provenance": list(provenance or []),
    }


def image(
    data,
    pixel_size: float | Sequence[float] | None = None,
    *,
    units: str = "nm",
    origin: Sequence[float] | None = None,
    signal: str = "HAADF",
    value_units: str = "counts",
    name: str | None = None,
    metadata: dict | None = None,
    original_metadata: dict | None = None,
    provenance: list | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """A calibrated 2-D image with dims ``("y", "x")``.

    Parameters
    ----------
    data : array_like or dask array, shape (ny, nx)
    pixel_size : float or (float, float), optional
        Pixel size in ``units`` (y, x). ``None`` gives pixel units and a warning.
    units : str
        Length unit of ``pixel_size`` and ``origin`` (normally ``"nm"``).
    origin : (float, float), optional
        Physical (y, x) position of pixel (0, 0)'s centre.
    signal : str
        HAADF, ADF, ABF, BF, STM, ...
    allow_nan : bool
        Accept NaN for unmeasured pixels (readers of aborted scans); all-NaN data are
        still an error. Every constructor takes it.
    """
    data = data if hasattr(data, "compute") else np.asarray(data)
    check_values(data, f"{signal} image", 2, 2, allow_nan=allow_nan)
    coords = _spatial_coords(data.shape[0], data.shape[1], pixel_size, origin, units, f"{signal} image")
    return xr.DataArray(data, dims=("y", "x"), coords=coords, name=name or signal,
                        attrs=_attrs(signal, value_units, metadata, original_metadata, provenance))


def _cube(data, spectral_dim, spectral_coord, pixel_size, units, origin, signal, value_units, name, metadata,
          original_metadata, provenance, allow_nan=False):
    data = data if hasattr(data, "compute") else np.asarray(data)
    check_values(data, f"{signal} data", 3, 3, allow_nan=allow_nan)
    if data.shape[2] != spectral_coord.shape[0]:
        raise InputError(f"{signal} data have {data.shape[2]} channels but the {spectral_dim} axis has {spectral_coord.shape[0]}")
    coords = _spatial_coords(data.shape[0], data.shape[1], pixel_size, origin, units, f"{signal} data")
    coords[spectral_dim] = spectral_coord
    return xr.DataArray(data, dims=("y", "x", spectral_dim), coords=coords, name=name or signal,
                        attrs=_attrs(signal, value_units, metadata, original_metadata, provenance))


def _axis(values, scale, offset, n, units, dim, long_name):
    if values is not None:
        return explicit_coord(values, units, dim, long_name)
    if scale is None:
        raise InputError(f"give either the {dim} values or their scale (and offset)")
    return linear_coord(n, scale, offset or 0.0, units, dim, long_name)


def spectrum_image(
    data,
    pixel_size: float | Sequence[float] | None = None,
    *,
    energy=None,
    energy_scale: float | None = None,
    energy_offset: float = 0.0,
    units: str = "nm",
    origin: Sequence[float] | None = None,
    signal: str = "EELS",
    value_units: str = "counts",
    name: str | None = None,
    metadata: dict | None = None,
    original_metadata: dict | None = None,
    provenance: list | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """A spectrum image with dims ``("y", "x", "energy")``; energy in eV (loss for EELS, photon for EDS)."""
    n = np.shape(data)[-1] if np.ndim(data) else 0
    e = _axis(energy, energy_scale, energy_offset, n, "eV", "energy", "energy loss" if signal == "EELS" else "energy")
    return _cube(data, "energy", e, pixel_size, units, origin, signal, value_units, name, metadata, original_metadata, provenance,
                 allow_nan)


def cits_grid(
    data,
    pixel_size: float | Sequence[float] | None = None,
    *,
    bias=None,
    bias_scale: float | None = None,
    bias_offset: float = 0.0,
    units: str = "nm",
    origin: Sequence[float] | None = None,
    signal: str = "CITS",
    value_units: str = "A",
    name: str | None = None,
    metadata: dict | None = None,
    original_metadata: dict | None = None,
    provenance: list | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """A CITS grid of I(V) (or dI/dV) curves with dims ``("y", "x", "bias")``; bias is the sample bias in V."""
    n = np.shape(data)[-1] if np.ndim(data) else 0
    b = _axis(bias, bias_scale, bias_offset, n, "V", "bias", "sample bias")
    return _cube(data, "bias", b, pixel_size, units, origin, signal, value_units, name, metadata, original_metadata, provenance,
                 allow_nan)


def spectrum(
    data,
    *,
    energy=None,
    energy_scale: float | None = None,
    energy_offset: float = 0.0,
    signal: str = "EELS",
    value_units: str = "counts",
    name: str | None = None,
    metadata: dict | None = None,
    original_metadata: dict | None = None,
    provenance: list | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """A single spectrum with dim ``("energy",)`` in eV."""
    data = data if hasattr(data, "compute") else np.asarray(data)
    check_values(data, f"{signal} spectrum", 1, 1, allow_nan=allow_nan)
    e = _axis(energy, energy_scale, energy_offset, data.shape[0], "eV", "energy", "energy loss" if signal == "EELS" else "energy")
    if data.shape[0] != e.shape[0]:
        raise InputError(f"spectrum has {data.shape[0]} channels but the energy axis has {e.shape[0]}")
    return xr.DataArray(data, dims=("energy",), coords={"energy": e}, name=name or signal,
                        attrs=_attrs(signal, value_units, metadata, original_metadata, provenance))


def generic(
    data,
    dims: Sequence[str],
    coords: Mapping[str, xr.Variable] | None,
    *,
    signal: str = "unknown",
    value_units: str = "",
    name: str | None = None,
    metadata: dict | None = None,
    original_metadata: dict | None = None,
    provenance: list | None = None,
    allow_nan: bool = False,
) -> xr.DataArray:
    """Any other layout (image stacks, line scans, diffraction): dims and validated coords given by the reader."""
    data = data if hasattr(data, "compute") else np.asarray(data)
    check_values(data, f"{signal} data", 1, allow_nan=allow_nan)
    if isinstance(dims, str) or not all(isinstance(d, str) for d in dims):
        raise InputError(f"dims must be a sequence of names, one per axis, got {dims!r}")
    if coords is None:
        coords = {}
    if not isinstance(coords, Mapping):
        raise InputError(f"coords must be a dict of dim -> coordinate, got {type(coords).__name__}")
    if len(dims) != data.ndim:
        raise InputError(f"{len(dims)} dims given for {data.ndim}-D data")
    try:
        return xr.DataArray(data, dims=tuple(dims), coords=coords, name=name or signal,
                            attrs=_attrs(signal, value_units, metadata, original_metadata, provenance))
    except (ValueError, TypeError, KeyError) as exc:  # xarray's CoordinateValidationError is a ValueError
        if isinstance(exc, InputError):
            raise
        sizes = dict(zip(dims, data.shape))
        raise InputError(f"{signal} data: the coordinates do not fit dims {sizes} ({' '.join(str(exc).split())}); "
                         "give one coordinate per dim with that dim's length") from None


def signal_kind(da: xr.DataArray) -> str:
    """'image', 'spectrum_image', 'cits', 'spectrum' or 'other' from the dims."""
    dims = tuple(da.dims)
    if dims == ("y", "x"):
        return "image"
    if dims == ("y", "x", "energy"):
        return "spectrum_image"
    if dims == ("y", "x", "bias"):
        return "cits"
    if dims == ("energy",):
        return "spectrum"
    return "other"
