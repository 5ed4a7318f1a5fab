"""Provenance records: which step, which version, which parameters, which input (by content hash)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .metadata import jsonable

_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (directories: of every file's relative path and bytes, sorted)."""
    h = hashlib.sha256()
    path = os.fspath(path)
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                h.update(os.path.relpath(full, path).encode())
                _update_from_file(h, full)
    else:
        _update_from_file(h, path)
    return "sha256:" + h.hexdigest()


def _update_from_file(h, path: str) -> None:
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)


def array_hash(data) -> str:
    """SHA-256 of an array's dtype, shape and values in C order.

    The hash identifies content, not storage: a numpy array and a dask array of the
    same values get the same hash whatever the chunking. Dask arrays are hashed in
    C-order slabs (at most ~64 MiB computed at a time), so memory stays bounded.

    Parameters
    ----------
    data : numpy.ndarray, dask.array.Array or xarray.DataArray (its data are hashed)

    Raises
    ------
    InputError
        ``data`` is not an array (a list, None, text), or holds Python objects.
    """
    arr = data.data if isinstance(data, xr.DataArray) else data
    if not (hasattr(arr, "dtype") and hasattr(arr, "shape")) or isinstance(arr, xr.Dataset):
        raise InputError(f"array_hash needs an array (numpy, dask or xarray.DataArray), got {type(data).__name__}; "
                         "hash files with file_hash")
    if np.dtype(arr.dtype).hasobject:
        raise InputError("array_hash cannot hash an array of Python objects (its bytes are memory addresses); "
                         "convert it to a numeric or text dtype first")
    h = hashlib.sha256()
    h.update(str(arr.dtype).encode())
    h.update(str(tuple(int(n) for n in arr.shape)).encode())
    if hasattr(arr, "dask"):
        for piece in _c_order_pieces(arr, _SLAB_BYTES):
            h.update(np.ascontiguousarray(piece).tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
    return "sha256:" + h.hexdigest()


_SLAB_BYTES = 64 << 20


def _c_order_pieces(arr, budget: int):
    """Computed pieces of a dask array whose bytes, concatenated, are the array's C-order bytes.

    Consecutive slabs of the first axis (all other axes whole) are C-order contiguous, so
    they are hashed in turn; a single slab larger than ``budget`` is split the same way
    along the next axis. Chunking never matters: each slab is sliced from the array.
    """
    if arr.ndim == 0 or arr.nbytes <= budget:
        yield np.asarray(arr.compute())
        return
    n = int(arr.shape[0])
    slab = max(1, arr.nbytes // max(n, 1))
    if slab > budget and arr.ndim > 1:
        for i in range(n):
            yield from _c_order_pieces(arr[i], budget)
        return
    step = max(1, budget // slab)
    for start in range(0, n, step):
        yield np.asarray(arr[start:start + step].compute())


def step(name: str, parameters: dict[str, Any] | None = None, input_hash: str | None = None) -> dict[str, Any]:
    """One provenance record."""
    from .. import __version__

    return {
        "name": name,
        "atomine_version": __version__,
        "parameters": jsonable(parameters or {}),
        "input_hash": input_hash,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def with_step(da: xr.DataArray, name: str, parameters: dict[str, Any] | None = None, input_hash: str | None = None) -> xr.DataArray:
    """A shallow copy of ``da`` whose provenance list ends with a new step (the input is not modified).

    Raises
    ------
    InputError
        ``da`` is not an xarray DataArray or Dataset (a numpy array has no attrs to record steps in).
    """
    if not isinstance(da, (xr.DataArray, xr.Dataset)):
        raise InputError(f"with_step records provenance in an xarray DataArray's attrs, got {type(da).__name__}; "
                         "wrap the array with atomine.data.image / spectrum_image / generic first")
    out = da.copy(deep=False)
    out.attrs = dict(da.attrs)
    out.attrs["provenance"] = list(da.attrs.get("provenance", [])) + [step(name, parameters, input_hash)]
    return out
