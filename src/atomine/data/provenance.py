"""Provenance records: which step, which version, which parameters, which input (by content hash)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from typing import Any

import numpy as np
import xarray as xr

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
    """SHA-256 of an array's dtype, shape and bytes (dask arrays are hashed chunk by chunk)."""
    h = hashlib.sha256()
    arr = data.data if isinstance(data, xr.DataArray) else data
    h.update(str(arr.dtype).encode())
    h.update(str(tuple(arr.shape)).encode())
    if hasattr(arr, "blocks") and hasattr(arr, "compute"):  # dask: bounded memory
        for block in _iter_dask_blocks(arr):
            h.update(np.ascontiguousarray(block).tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
    return "sha256:" + h.hexdigest()


def _iter_dask_blocks(arr):
    import itertools

    for idx in itertools.product(*(range(n) for n in arr.numblocks)):
        yield np.asarray(arr.blocks[idx].compute())


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
    """A shallow copy of ``da`` whose provenance list ends with a new step (the input is not modified)."""
    out = da.copy(deep=False)
    out.attrs = dict(da.attrs)
    out.attrs["provenance"] = list(da.attrs.get("provenance", [])) + [step(name, parameters, input_hash)]
    return out
