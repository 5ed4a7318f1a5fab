"""Write one signal in the format its file name asks for (``atomine convert``, ``atomine simulate --out``).

=============  ===========================================================================
extension      what is written
=============  ===========================================================================
``.zarr``      atomine's store (:func:`atomine.io.store.save_store`): everything kept
``.nc``        the same store as NetCDF-4 (h5netcdf)
``.hspy``      HyperSpy HDF5 through rosettasciio's writer (HyperSpy itself not needed):
               :func:`atomine.data.hyperspy.signal_dict`, the dict behind
               :func:`atomine.data.to_hyperspy` (non-linear axes as explicit values, label
               axes as indices); atomine's attrs kept whole in
               ``original_metadata.atomine_attrs``, restored when atomine reads the file
``.zspy``      HyperSpy Zarr through rosettasciio (its writer needs zarr-python 2)
``.tif``       a 2-D image through rosettasciio's TIFF writer (tifffile): the scale in the
``.tiff``      resolution tags and ImageJ description, offsets and units in the
               Digital Micrograph tags rosettasciio reads back; float32 (uint8/uint16 kept)
``.npy``       the raw values only: calibration and metadata are dropped
               (:class:`CalibrationDroppedWarning` when there was a calibration)
``.npz``       ``data``, one ``coord_<dim>`` array per axis and the attrs as JSON
               (``atomine``); :mod:`atomine.io.array_files` reads it back calibrated
=============  ===========================================================================

Every write is atomic (temp name, then rename). Axis units are written as they are, so
uncalibrated axes stay ``"px"`` (spatial) and ``"channel"`` (spectral) in every format.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from ..data import uniform_axis
from ..data.hyperspy import signal_dict  # the HyperSpy dict, built without HyperSpy
from ..data.metadata import jsonable
from ..errors import AtomineError, InputError, MissingDependencyError, UnsupportedFormatError
from ._atomic import atomic_path
from .array_files import COORD_PREFIX, META_KEY, NPZ_FORMAT
from .store import save_store

UNCALIBRATED_UNITS = ("", "px", "channel")


class CalibrationDroppedWarning(UserWarning):
    """The chosen format cannot hold the signal's calibration, which was left out."""


# --------------------------------------------------------------------------------------------- axes


def _coord_values(da: xr.DataArray, dim: str) -> np.ndarray:
    return np.asarray(da.coords[dim].values) if dim in da.coords else np.arange(da.sizes[dim], dtype=np.float64)


def _units(da: xr.DataArray, dim: str) -> str:
    return str(da.coords[dim].attrs.get("units", "")) if dim in da.coords else ""


def _linear_axes(da: xr.DataArray) -> list[dict[str, Any]]:
    """Scale/offset axes for formats that hold only a linear calibration (TIFF); refuses anything else.

    The scale is (last - first) / (n - 1), not the first step (:func:`atomine.data.uniform_axis`):
    rosettasciio stores it as an integer ratio in the TIFF resolution tags, where the first step's
    rounding error would show.
    """
    axes = []
    for dim in da.dims:
        linear = uniform_axis(_coord_values(da, str(dim)))
        if linear is None:
            raise InputError(f"the {dim} axis is not evenly spaced numbers; this format holds only a linear "
                             "calibration -- export .zarr, .nc, .hspy or .npz instead")
        axes.append({"name": str(dim), "units": _units(da, str(dim)) or None, "navigate": False,
                     "size": int(da.sizes[dim]), "offset": linear[0], "scale": linear[1]})
    return axes


def _rsciio(module: str):
    import importlib

    try:
        return importlib.import_module(f"rsciio.{module}")
    except ImportError as exc:
        raise MissingDependencyError(f"writing this format needs rosettasciio ({exc}); "
                                     "pip install 'rosettasciio[hdf5,tiff]'") from None


# ------------------------------------------------------------------------------------------ writers


def _write_hspy(da: xr.DataArray, tmp: Path) -> None:
    _rsciio("hspy").file_writer(os.fspath(tmp), signal_dict(da), show_progressbar=False)


def _write_zspy(da: xr.DataArray, tmp: Path) -> None:
    import zarr

    if not hasattr(zarr.storage, "NestedDirectoryStore"):
        raise MissingDependencyError(
            f"rosettasciio's .zspy writer needs zarr-python 2, but zarr {zarr.__version__} is installed; "
            "export .hspy (HyperSpy HDF5) or .zarr instead")
    _rsciio("zspy").file_writer(os.fspath(tmp), signal_dict(da), show_progressbar=False)


def _tiff_data(da: xr.DataArray) -> np.ndarray:
    data = np.asarray(da.values)
    if data.dtype.kind == "c":
        raise InputError("TIFF cannot hold complex values; export .zarr, .nc or .npz")
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    # ImageJ reads uint8, uint16 and float32 images; everything else becomes float32.
    return data if data.dtype in (np.uint8, np.uint16) else data.astype(np.float32)


def _write_tiff(da: xr.DataArray, tmp: Path) -> None:
    sig = signal_dict(da, data=_tiff_data(da))
    sig["axes"] = _linear_axes(da)
    sig["original_metadata"] = {}  # TIFF has no place for it
    _rsciio("tiff").file_writer(os.fspath(tmp), sig)


def _check_tiff(da: xr.DataArray) -> None:
    if da.ndim != 2:
        raise InputError(f"TIFF export holds one 2-D image, but this signal has dims {tuple(da.dims)}; "
                         "export .zarr, .nc, .hspy or .npz instead")
    _linear_axes(da)  # refuses non-linear calibrations before anything is written


def _calibrated_dims(da: xr.DataArray) -> list[str]:
    return [str(d) for d in da.dims if _units(da, str(d)) not in UNCALIBRATED_UNITS]


def _write_npy(da: xr.DataArray, tmp: Path) -> None:
    data = da.data
    with open(tmp, "wb") as f:
        if not hasattr(data, "dask"):
            np.save(f, np.asarray(data), allow_pickle=False)
            return
        # Slab by slab along the first axis, in C order: one slab (~64 MiB) in memory at a time.
        header = {"descr": np.lib.format.dtype_to_descr(data.dtype), "fortran_order": False, "shape": data.shape}
        np.lib.format.write_array_header_2_0(f, header)
        if data.ndim == 0 or data.size == 0:
            f.write(np.asarray(data).tobytes())
            return
        row_bytes = max(1, data.itemsize * int(np.prod(data.shape[1:])))
        rows = max(1, min(data.shape[0], (64 << 20) // row_bytes))
        slabs = data.rechunk((rows,) + tuple(-1 for _ in data.shape[1:]))
        for i in range(slabs.numblocks[0]):
            f.write(np.ascontiguousarray(slabs.blocks[i].compute()).tobytes())


def _npz_coord(values: np.ndarray) -> np.ndarray:
    # Labels are written as fixed-width unicode so they load without pickling.
    return values.astype(str) if values.dtype.kind not in "biufU" else values


def _write_npz(da: xr.DataArray, tmp: Path) -> None:
    meta = {
        "format": NPZ_FORMAT,
        "name": None if da.name is None else str(da.name),
        "dims": [str(d) for d in da.dims],
        "coord_attrs": {str(d): jsonable(dict(da.coords[d].attrs)) for d in da.dims if d in da.coords},
        "attrs": jsonable(dict(da.attrs)),
    }
    # A zip member is written whole, so a dask-backed signal is computed here (use .zarr for big data).
    arrays = {"data": np.asarray(da.values), META_KEY: np.array(json.dumps(meta))}
    for d in da.dims:
        if d in da.coords:
            arrays[COORD_PREFIX + str(d)] = _npz_coord(np.asarray(da.coords[d].values))
    with open(tmp, "wb") as f:
        np.savez_compressed(f, allow_pickle=False, **arrays)


# extension -> (description, check before writing or None, writer into the temp path, writes a folder)
_Writer = tuple[str, Callable[[xr.DataArray], None] | None, Callable[[xr.DataArray, Path], None], bool]
WRITERS: dict[str, _Writer] = {
    ".hspy": ("HyperSpy HDF5", None, _write_hspy, False),
    ".zspy": ("HyperSpy Zarr", None, _write_zspy, True),
    ".tif": ("TIFF image", _check_tiff, _write_tiff, False),
    ".tiff": ("TIFF image", _check_tiff, _write_tiff, False),
    ".npy": ("NumPy array (values only)", None, _write_npy, False),
    ".npz": ("NumPy archive with calibration", None, _write_npz, False),
}
STORE_FORMATS = {".zarr": "atomine Zarr store", ".nc": "atomine NetCDF store"}


def writable_formats() -> dict[str, str]:
    """Extension -> format name for every format :func:`export` writes."""
    return {**STORE_FORMATS, **{ext: w[0] for ext, w in WRITERS.items()}}


def export(da: xr.DataArray, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write one signal in the format ``path``'s extension names, atomically.

    Parameters
    ----------
    da : xarray.DataArray
        The signal (a Dataset is accepted for ``.zarr``/``.nc`` only).
    path : str or os.PathLike
        Output file; see the module docstring for each extension.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    UnsupportedFormatError
        The extension is not one :func:`export` writes (the message lists them).
    InputError
        The signal does not fit the format (e.g. a spectrum image to TIFF).
    OutputExistsError
        ``path`` exists and ``overwrite`` is false, or its folder does not exist.
    MissingDependencyError
        The format's writer library is missing or incompatible.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext in STORE_FORMATS:
        return save_store(da, path, overwrite=overwrite)
    if ext not in WRITERS:
        known = ", ".join(sorted(writable_formats()))
        raise UnsupportedFormatError(f"{path}: cannot write {ext or '(no extension)'!r} files; "
                                     f"atomine exports {known}")
    if not isinstance(da, xr.DataArray):
        raise InputError(f"export writes one signal (an xarray DataArray), got {type(da).__name__}; "
                         "write a Dataset with atomine.io.save to .zarr or .nc")
    _, check, writer, folder = WRITERS[ext]
    if check is not None:
        check(da)
    with atomic_path(path, overwrite=overwrite, directory=folder) as tmp:
        try:
            writer(da, tmp)
        except AtomineError:
            raise
        except (ValueError, TypeError) as exc:  # values or names the format cannot hold
            raise InputError(f"{path}: cannot be written as {ext} ({type(exc).__name__}: {exc})") from exc
    if ext == ".npy" and _calibrated_dims(da):
        warnings.warn(f"{path.name} holds only the values: the calibration of {', '.join(_calibrated_dims(da))} "
                      "and the metadata were not written (use .npz, .zarr or .hspy to keep them)",
                      CalibrationDroppedWarning, stacklevel=2)
    return path


__all__ = ["export", "writable_formats", "signal_dict", "CalibrationDroppedWarning", "WRITERS"]
