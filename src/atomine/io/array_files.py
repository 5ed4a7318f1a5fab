"""Bare NumPy files: ``.npy`` arrays and ``.npz`` archives, never unpickled.

A bare array carries no calibration (DESIGN.md, "Data conventions"):

- 1-D: a spectrum, dims ``("energy",)`` counted in channels (units ``"channel"``);
- 2-D: an image, dims ``("y", "x")`` in pixels (units ``"px"``);
- 3-D: ``(y, x, channel)`` with the spectral axis last, dims ``("y", "x", "energy")`` with
  ``y``/``x`` in ``"px"`` and energy in ``"channel"`` -- a spectrum image whose axes say
  they are uncalibrated, so spectral commands accept it and nobody mistakes channels for eV.

Each such file gives one :class:`atomine.data.UncalibratedWarning`. Values follow the
constructors' rules (:func:`atomine.data.check_values`): NaN/inf, empty or non-numeric
arrays are an :class:`InputError`.

An ``.npz`` with key ``data`` gives that array; one written by :func:`atomine.io.export`
also holds its coordinates (``coord_<dim>``) and attrs (``atomine``, JSON), and is read
back fully calibrated. Any other ``.npz`` gives every array as a signal named by its key.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..data import UncalibratedWarning, explicit_coord, generic, linear_coord
from ..errors import CorruptFileError, InputError

NPY_MAGIC = b"\x93NUMPY"
META_KEY = "atomine"  # JSON attrs of an .npz written by atomine.io.export
COORD_PREFIX = "coord_"
NPZ_FORMAT = "atomine-npz/1"

# Bare arrays: dims and the units of each axis, by number of dimensions.
_BARE_LAYOUT = {
    1: (("energy",), ("channel",)),
    2: (("y", "x"), ("px", "px")),
    3: (("y", "x", "energy"), ("px", "px", "channel")),
}


def read_array_file(path: str | os.PathLike, lazy: bool = False) -> list[xr.DataArray]:
    """Read a ``.npy`` or ``.npz`` file into DataArrays.

    Parameters
    ----------
    path : str or os.PathLike
    lazy : bool
        ``.npy``: memory-map the file and return a dask array (values read when used).
        ``.npz`` members are compressed zip entries that cannot be memory-mapped; they are
        read into memory and wrapped in dask so the result type is the same.

    Returns
    -------
    list of xarray.DataArray

    Raises
    ------
    CorruptFileError
        Not a NumPy file, truncated, or holding pickled Python objects (never unpickled).
    InputError
        Non-numeric, empty, NaN/inf-containing or more than 3-D arrays.
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path, lazy)
    signal = _bare_signal(_load_npy(path, lazy), path, "data", lazy)
    _warn_uncalibrated(path, [signal.ndim])
    return [signal]


# ------------------------------------------------------------------------------------------- .npy


def _load_npy(path: Path, lazy: bool) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
    if head != NPY_MAGIC:
        raise CorruptFileError(f"{path}: not a NumPy .npy file (it does not start with the .npy header)")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if lazy else None)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise CorruptFileError(f"{path}: holds Python objects (a pickle); atomine never unpickles "
                                   "data -- save a numeric array instead") from None
        raise CorruptFileError(f"{path}: truncated or corrupt .npy file ({exc})") from None
    except (EOFError, OSError) as exc:
        raise CorruptFileError(f"{path}: truncated or corrupt .npy file ({exc})") from None


# ------------------------------------------------------------------------------------------- .npz


def _read_npz(path: Path, lazy: bool) -> list[xr.DataArray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: not a readable NumPy .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # np.load sniffed a bare .npy under an .npz name
        signal = _bare_signal(archive, path, "data", lazy)
        _warn_uncalibrated(path, [signal.ndim])
        return [signal]
    with archive:
        keys = list(archive.files)
        if not keys:
            raise CorruptFileError(f"{path}: the archive holds no arrays")
        if "data" in keys and META_KEY in keys:
            return [_calibrated_signal(archive, path, lazy)]
        chosen = ["data"] if "data" in keys else keys
        arrays = {k: _member(archive, k, path) for k in chosen}
    signals = [_bare_signal(a, path, k, lazy) for k, a in arrays.items()]
    _warn_uncalibrated(path, [s.ndim for s in signals])
    return signals


def _member(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise CorruptFileError(f"{path}: array {key!r} holds Python objects (a pickle); atomine never "
                                   "unpickles data") from None
        raise CorruptFileError(f"{path}: array {key!r} is truncated or corrupt ({exc})") from None
    except (EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: array {key!r} is truncated or corrupt ({exc})") from None


def _calibrated_signal(archive, path: Path, lazy: bool) -> xr.DataArray:
    """An archive written by :func:`atomine.io.export`: data, coord_<dim> arrays and JSON attrs."""
    try:
        meta = json.loads(str(_member(archive, META_KEY, path)[()]))
        dims = [str(d) for d in meta["dims"]]
        coord_attrs = dict(meta.get("coord_attrs", {}))
        attrs = dict(meta.get("attrs", {}))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path}: its {META_KEY!r} entry is not valid atomine metadata ({exc})") from None
    data = _member(archive, "data", path)
    if len(dims) != data.ndim:
        raise CorruptFileError(f"{path}: metadata names {len(dims)} dims for {data.ndim}-D data")
    coords = {}
    for d in dims:
        key = COORD_PREFIX + d
        if key not in archive.files:
            continue
        values = _member(archive, key, path)
        a = dict(coord_attrs.get(d, {}))
        if values.dtype.kind in "biuf":
            coords[d] = explicit_coord(values, str(a.pop("units", "")), d)
            coords[d].attrs.update(a)
        else:  # labels (e.g. component names) are kept as they are
            coords[d] = xr.Variable((d,), values, a)
    name = meta.get("name")
    signal = str(attrs.get("signal") or "unknown")
    da = _construct(data, dims, coords, path, name or "data", lazy, signal, value_units=str(attrs.get("units") or ""),
                    metadata=attrs.get("metadata"), original_metadata=attrs.get("original_metadata"),
                    provenance=attrs.get("provenance"))
    # Attrs beyond the constructors' five (added by analyses) are kept as stored.
    da.attrs.update({k: v for k, v in attrs.items() if k not in da.attrs})
    spatial = [d for d in ("y", "x") if d in coords and coords[d].attrs.get("units") in ("px", "")]
    if spatial:
        warnings.warn(f"{path.name} has no spatial calibration; axes {', '.join(spatial)} are in pixels (units 'px')",
                      UncalibratedWarning, stacklevel=4)
    return da


# --------------------------------------------------------------------------------------- bare arrays


def _warn_uncalibrated(path: Path, ndims: list[int]) -> None:
    """One warning per file saying which axes are in pixels and which count channels."""
    spatial = any(n >= 2 for n in ndims)
    spectral = any(n in (1, 3) for n in ndims)
    text = "no spatial calibration; axes are in pixels (units 'px')" if spatial else "no calibration"
    if spectral:
        text += "; spectral axes count channels (units 'channel')"
    warnings.warn(f"{path.name} has {text}", UncalibratedWarning, stacklevel=4)


def _bare_signal(data: np.ndarray, path: Path, key: str, lazy: bool) -> xr.DataArray:
    what = f"{path}" if key == "data" else f"{path} (array {key!r})"
    if data.dtype.hasobject:
        raise CorruptFileError(f"{what}: holds Python objects; atomine never unpickles data")
    if data.ndim not in _BARE_LAYOUT:
        raise InputError(f"{what}: array has {data.ndim} dimensions (shape {data.shape}); atomine reads "
                         "1 (spectrum), 2 (image y, x) or 3 (y, x, channel) dimensions")
    if data.dtype.kind not in "biufc":
        raise InputError(f"{what}: array has non-numeric dtype {data.dtype}; atomine reads numbers only")
    dims, units = _BARE_LAYOUT[data.ndim]
    coords = {d: linear_coord(n, 1.0, 0.0, u, d) for d, n, u in zip(dims, data.shape, units)}
    if "energy" in coords:
        coords["energy"].attrs["long_name"] = "channel (uncalibrated)"
    return _construct(data, list(dims), coords, path, key, lazy, "unknown", what)


def _construct(data, dims, coords, path: Path, name: str, lazy: bool, signal: str, what: str | None = None, **attrs):
    """The constructors' checks (emptiness, dtype, NaN/inf) with the file named in the message.

    ``attrs`` (value_units, metadata, original_metadata, provenance) go to the constructor.
    """
    if lazy:
        import dask.array as da_

        data = da_.from_array(data, chunks="auto")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncalibratedWarning)  # this module words its own warning
            return generic(data, dims, coords, signal=signal, name=name, **attrs)
    except InputError as exc:
        # The constructor names the signal kind ("unknown data"); here the file is the better name.
        message = str(exc).replace(f"{signal} data: ", "", 1).replace(f"{signal} data", "the array", 1)
        raise InputError(f"{what or path}: {message}") from None


__all__ = ["read_array_file"]
