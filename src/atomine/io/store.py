"""atomine's own store: one xarray Dataset per ``.zarr`` folder or ``.nc`` (NetCDF-4) file.

Writing
    :func:`save_store` takes a DataArray (stored as a Dataset with one variable named
    after it, ``"data"`` when unnamed) or a Dataset. Zarr stores are written in Zarr
    format 2, which every Zarr library reads and which holds every dtype atomine uses
    (fixed-width strings included) without "unstable specification" warnings; NetCDF goes
    through the h5netcdf engine with light gzip compression (complex values become HDF5
    compound types, which h5py, h5netcdf and netCDF-C 4.9+ read). Attributes that Zarr/NetCDF cannot hold reliably
    (dicts, lists, booleans, None) are written as JSON strings with a marker and restored
    on read. Dask-backed variables are written chunk by chunk, never computed whole.
    The write is atomic: an interrupted write leaves neither the target nor a temp file.

Reading
    :func:`read_store` gives one DataArray per data variable, with attrs decoded and the
    original dims restored from ``attrs["atomine_dims"]`` (see
    :func:`atomine.workflows.signals_dataset`). Stored provenance is returned as stored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..data.metadata import jsonable
from ..errors import CorruptFileError, InputError, UnsupportedFormatError
from ._atomic import atomic_path

STORE_SUFFIXES = (".zarr", ".nc")
DIMS_ATTR = "atomine_dims"
# Zarr lists variables alphabetically; the stored order ("the first image") is kept in this Dataset attr.
ORDER_ATTR = "atomine_variables"
# A string attribute that starts with this is JSON; plain strings that happen to start with it are
# JSON-encoded too, so decoding is never ambiguous.
JSON_MARKER = "atomine-json:"


# ------------------------------------------------------------------------------------- attributes


def _plain(value: Any) -> bool:
    """True for attribute values every backend stores and returns unchanged (str, int, float)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, str):
        return not value.startswith(JSON_MARKER)
    if isinstance(value, int):  # HDF5 has no integer wider than 64 bits
        return -(2**63) <= value < 2**63
    return isinstance(value, (float, np.integer, np.floating))


def encode_attrs(attrs: dict) -> dict[str, Any]:
    """A copy of ``attrs`` whose nested values (dicts, lists, bools, None, arrays) are marked JSON strings."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        out[str(key)] = value if _plain(value) else JSON_MARKER + json.dumps(jsonable(value))
    return out


def decode_attrs(attrs: dict) -> dict[str, Any]:
    """Inverse of :func:`encode_attrs` (a marked value that is not valid JSON is a corrupt store)."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith(JSON_MARKER):
            try:
                value = json.loads(value[len(JSON_MARKER):])
            except json.JSONDecodeError as exc:
                raise CorruptFileError(f"attribute {key!r} holds malformed JSON ({exc})") from None
        out[str(key)] = value
    return out


# ------------------------------------------------------------------------------------------ write


def _store_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in STORE_SUFFIXES:
        raise UnsupportedFormatError(
            f"{path}: a store is .zarr or .nc, not {suffix or '(no extension)'!r}; "
            "use atomine.io.export for .hspy, .tif, .npy or .npz")
    return suffix


def _as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        if not obj.data_vars:
            raise InputError("the Dataset has no data variables; there is nothing to save")
        return obj
    if not isinstance(obj, xr.DataArray):
        raise InputError(f"save needs an xarray DataArray or Dataset, got {type(obj).__name__}")
    name = "data" if obj.name is None else str(obj.name)
    if name in obj.coords:
        raise InputError(f"the signal is named {name!r} like one of its coordinates; rename it first "
                         "(da.rename('new name'))")
    return obj.to_dataset(name=name)


def _uniform_chunks(var: xr.Variable) -> xr.Variable:
    """Zarr needs equal chunks along each dim (the last may be smaller); regularise dask chunks that are not."""
    chunks = getattr(var.data, "chunks", None)
    if chunks is None:
        return var
    fix = {}
    for dim, c in zip(var.dims, chunks):
        if len(c) > 1 and (len(set(c[:-1])) > 1 or c[-1] > c[0]):
            fix[dim] = max(c)
    return var.chunk(fix) if fix else var


def _prepare(ds: xr.Dataset, zarr: bool) -> xr.Dataset:
    """A shallow copy ready to write: encoded attrs, no stale encodings, zarr-friendly chunks (input untouched)."""
    variables = {}
    for name, var in ds.variables.items():
        var = var.copy(deep=False)
        if zarr:
            var = _uniform_chunks(var)
        var.attrs = encode_attrs(var.attrs)
        # Encodings left from the file a signal was read from (chunks, compressors) clash with new chunks
        # or the other backend; every variable is written as it is in memory.
        var.encoding = {}
        variables[name] = var
    out = xr.Dataset({n: variables[n] for n in ds.data_vars},
                     coords={n: variables[n] for n in ds.coords})
    out.attrs = encode_attrs({**ds.attrs, ORDER_ATTR: [str(n) for n in ds.data_vars]})
    return out


def _zarr_format_kwargs() -> dict[str, Any]:
    import zarr

    # zarr-python 3 writes format 3 by default; format 2 is what every zarr library reads.
    major = int(str(zarr.__version__).split(".")[0])
    return {"zarr_format": 2} if major >= 3 else {}


def _netcdf_compression(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Light gzip with byte shuffling for numeric variables (Zarr compresses by default; NetCDF does not)."""
    return {str(n): {"zlib": True, "complevel": 1, "shuffle": True}
            for n, v in ds.variables.items() if v.dtype.kind in "biufc" and v.ndim and v.size}


def save_store(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``obj`` to a ``.zarr`` folder or ``.nc`` file, atomically.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        A DataArray becomes a one-variable Dataset (variable named after it, ``"data"`` when
        unnamed). NaN values are stored as they are. Dask-backed data are written chunk-wise.
    path : str or os.PathLike
        ``*.zarr`` or ``*.nc``; other extensions are refused (see :func:`atomine.io.export`).
    overwrite : bool
        Replace an existing ``path`` (the old one stays until the new one is complete).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``obj`` is not an xarray object, is an empty Dataset, or cannot be stored.
    UnsupportedFormatError
        The extension is not ``.zarr`` or ``.nc``.
    OutputExistsError
        ``path`` exists and ``overwrite`` is false, or its folder does not exist.
    """
    path = Path(path)
    ds = _as_dataset(obj)
    suffix = _store_format(path)
    ds = _prepare(ds, zarr=suffix == ".zarr")
    with atomic_path(path, overwrite=overwrite, directory=suffix == ".zarr") as tmp:
        try:
            if suffix == ".zarr":
                ds.to_zarr(tmp, mode="w-", consolidated=True, **_zarr_format_kwargs())
            else:
                ds.to_netcdf(tmp, engine="h5netcdf", encoding=_netcdf_compression(ds))
        except (ValueError, TypeError) as exc:  # names or values the backend cannot hold
            raise InputError(f"{path}: cannot be stored as {suffix} ({type(exc).__name__}: {exc})") from exc
    return path


# ------------------------------------------------------------------------------------------- read


def open_store(path: str | os.PathLike, lazy: bool = False) -> xr.Dataset:
    """The stored Dataset with attrs decoded (dask-backed when ``lazy``; else in memory, file closed).

    Dims are returned as stored (no ``atomine_dims`` renaming); see :func:`read_store` for signals.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in STORE_SUFFIXES:
        raise UnsupportedFormatError(f"{path}: not an atomine store (.zarr or .nc)")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    # Values' "units" are physical (e.g. "s"); CF time-delta decoding would turn them into durations.
    options: dict[str, Any] = {"decode_timedelta": False}
    try:
        if suffix == ".zarr":
            if not path.is_dir():
                raise CorruptFileError(f"{path}: a Zarr store is a folder, but this is a file")
            ds = xr.open_zarr(path, **options) if lazy else xr.open_dataset(path, engine="zarr", chunks=None, **options)
        else:
            if path.is_dir():
                raise CorruptFileError(f"{path}: a NetCDF store is a file, but this is a folder")
            ds = xr.open_dataset(path, engine="h5netcdf", chunks={} if lazy else None, **options)
    except CorruptFileError:
        raise
    except Exception as exc:  # zarr/h5py raise many types on missing metadata or bad bytes
        what = "Zarr store" if suffix == ".zarr" else "NetCDF-4 file"
        raise CorruptFileError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from exc
    if not lazy:
        with ds:
            ds = ds.load()
    for var in ds.variables.values():
        var.attrs = decode_attrs(var.attrs)
    attrs = decode_attrs(ds.attrs)
    order = attrs.pop(ORDER_ATTR, None)
    if isinstance(order, list) and sorted(map(str, order)) == sorted(map(str, ds.data_vars)):
        ds = ds[[str(n) for n in order]]
    ds.attrs = attrs
    return ds


def _restore_dims(da: xr.DataArray, path: Path) -> xr.DataArray:
    """Rename ``<dim>_<name>`` dims back to the dims recorded in ``attrs["atomine_dims"]``."""
    original = da.attrs.get(DIMS_ATTR)
    if original is None:
        return da
    if (not isinstance(original, list) or len(original) != da.ndim or len(set(original)) != len(original)
            or not all(isinstance(d, str) for d in original)):
        raise CorruptFileError(f"{path}: signal {da.name!r} records dims {original!r} that do not fit its "
                               f"{da.ndim} dims {tuple(da.dims)}")
    renames = {cur: new for cur, new in zip(da.dims, original) if cur != new}
    out = da.rename(renames) if renames else da
    out.attrs = {k: v for k, v in da.attrs.items() if k != DIMS_ATTR}
    return out


def read_store(path: str | os.PathLike, lazy: bool = False) -> list[xr.DataArray]:
    """Every data variable of an atomine store as a DataArray named after it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.zarr`` folder or ``.nc`` file written by :func:`save_store` (or any xarray store).
    lazy : bool
        Return dask-backed arrays (Zarr chunks as stored) instead of reading the values.

    Returns
    -------
    list of xarray.DataArray
        In the stored order; attrs (metadata, provenance, ...) as they were saved, coordinates
        with their units, and original dims restored where the store renamed them.

    Raises
    ------
    CorruptFileError
        The folder is not a Zarr store, or the file is not a readable NetCDF-4 file.
    """
    path = Path(path)
    ds = open_store(path, lazy)
    return [_restore_dims(ds[name].rename(str(name)), path) for name in ds.data_vars]


__all__ = ["save_store", "read_store", "open_store", "encode_attrs", "decode_attrs", "JSON_MARKER"]
