"""Which reader handles which file: extension first, then content sniffing for ambiguous ones.

A reader is ``read(path: str, lazy: bool) -> list[xarray.DataArray]``: every signal in
the file, each built with the ``atomine.data`` constructors (calibrated coords,
normalised metadata, ``name`` set to a short label unique within the file).
"""

from __future__ import annotations

import os
from typing import Callable

import xarray as xr

from ..errors import UnsupportedFormatError

Reader = Callable[[str, bool], list[xr.DataArray]]


def _rsciio(path: str, lazy: bool) -> list[xr.DataArray]:
    from .rsciio_reader import read_rsciio

    return read_rsciio(path, lazy)


def _sxm(path: str, lazy: bool) -> list[xr.DataArray]:
    from .nanonis_sxm import read_sxm

    return read_sxm(path, lazy)


def _3ds(path: str, lazy: bool) -> list[xr.DataArray]:
    from .nanonis_3ds import read_3ds

    return read_3ds(path, lazy)


def _array(path: str, lazy: bool) -> list[xr.DataArray]:
    from .array_files import read_array_file

    return read_array_file(path, lazy)


def _store(path: str, lazy: bool) -> list[xr.DataArray]:
    from .store import read_store

    return read_store(path, lazy)


# Extension (lower case, with dot) -> (format name, reader).
READERS: dict[str, tuple[str, Reader]] = {
    ".dm3": ("Gatan Digital Micrograph", _rsciio),
    ".dm4": ("Gatan Digital Micrograph", _rsciio),
    ".emd": ("Velox / NCEM EMD", _rsciio),
    ".ser": ("FEI TIA", _rsciio),
    ".emi": ("FEI TIA", _rsciio),
    ".msa": ("EMSA/MAS spectrum", _rsciio),
    ".ems": ("EMSA/MAS spectrum", _rsciio),
    ".mas": ("EMSA/MAS spectrum", _rsciio),
    ".tif": ("TIFF", _rsciio),
    ".tiff": ("TIFF", _rsciio),
    ".mrc": ("MRC", _rsciio),
    ".hspy": ("HyperSpy HDF5", _rsciio),
    ".zspy": ("HyperSpy Zarr", _rsciio),
    ".sxm": ("Nanonis topography", _sxm),
    ".3ds": ("Nanonis grid spectroscopy", _3ds),
    ".npy": ("NumPy array", _array),
    ".npz": ("NumPy archive", _array),
    ".zarr": ("atomine Zarr store", _store),
    ".nc": ("atomine NetCDF store", _store),
}


def format_of(path: str | os.PathLike) -> tuple[str, Reader]:
    """(format name, reader) for ``path``, or UnsupportedFormatError saying what is supported."""
    ext = os.path.splitext(os.fspath(path).rstrip("/\\"))[1].lower()
    if ext not in READERS:
        known = ", ".join(sorted(READERS))
        raise UnsupportedFormatError(f"{os.fspath(path)}: unknown file extension {ext or '(none)'!r}; atomine reads {known}")
    return READERS[ext]
