"""File formats: ``load`` any supported file into calibrated DataArrays, ``save`` to Zarr or NetCDF.

``load_all(path)`` returns every signal in a file; ``load(path, signal=...)`` one of them
(by name or index; by default the first image, or the first spectral signal when
``kind="spectral"``). ``save`` writes atomine's own store (``.zarr``/``.nc``, everything
kept); ``export`` writes one signal in the format its extension names (``.hspy``, ``.tif``,
``.npy``, ``.npz``, or a store); ``save_truth``/``load_truth`` handle ground-truth folders.
``atomic_path`` is the temp-then-rename helper every writer uses.

Note: ``atomine.io.export`` is the function; the module it lives in is reached with
``from atomine.io.export import ...`` or ``importlib.import_module("atomine.io.export")``.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from ..data import signal_kind
from ..errors import AtomineError, CorruptFileError, InputError, SignalNotFoundError
from ._atomic import atomic_path
from ._registry import READERS, format_of
from .export import export, writable_formats
from .store import save_store
from .truth_files import load_truth, save_truth

_SPECTRAL = ("spectrum_image", "cits")


def load_all(path: str | os.PathLike, *, lazy: bool = False) -> list[xr.DataArray]:
    """Every signal in ``path`` as calibrated DataArrays (dask-backed when ``lazy`` and the reader supports it)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir() and path.suffix.lower() not in (".zarr", ".zspy"):  # Zarr stores are folders
        raise InputError(f"{path} is a folder, not a data file")
    name, reader = format_of(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CorruptFileError(f"{path}: file is empty (0 bytes), not a valid {name} file")
    try:
        signals = reader(os.fspath(path), lazy)
    except AtomineError:
        raise
    except MemoryError:
        raise InputError(f"{path}: too large to load into memory; try lazy=True (CLI: --lazy)") from None
    except Exception as exc:  # third-party readers raise anything on bad bytes
        raise CorruptFileError(f"{path}: could not be read as {name} ({type(exc).__name__}: {exc})") from exc
    if not signals:
        raise CorruptFileError(f"{path}: no signals found in this {name} file")
    return signals


def select_signal(signals: list[xr.DataArray], signal: str | int | None = None, kind: str = "image", source: str = "file") -> xr.DataArray:
    """Pick one signal by name or index, or by default the first of ``kind`` ('image', 'spectral', 'any')."""
    names = [str(s.name) for s in signals]
    if signal is not None:
        if isinstance(signal, int) or (isinstance(signal, str) and signal.lstrip("-").isdigit()):
            i = int(signal)
            if not -len(signals) <= i < len(signals):
                raise SignalNotFoundError(f"{source} has {len(signals)} signal(s); index {i} is out of range")
            return signals[i]
        for s in signals:
            if str(s.name) == signal or str(s.attrs.get("signal")) == signal:
                return s
        raise SignalNotFoundError(f"{source} has no signal {signal!r}; it has {names}")
    if kind == "any":
        return signals[0]
    want = ("image",) if kind == "image" else _SPECTRAL
    for s in signals:
        if signal_kind(s) in want:
            return s
    kinds = [signal_kind(s) for s in signals]
    raise SignalNotFoundError(f"{source} has no {kind} signal (found {list(zip(names, kinds))}); choose one with signal=")


def load(path: str | os.PathLike, signal: str | int | None = None, *, kind: str = "image", lazy: bool = False) -> xr.DataArray:
    """One signal from ``path``; see :func:`select_signal` for the choice."""
    return select_signal(load_all(path, lazy=lazy), signal, kind, os.fspath(path))


def save(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a DataArray or Dataset to a ``.zarr`` folder or ``.nc`` file, atomically.

    Other extensions raise UnsupportedFormatError; :func:`export` writes the other formats.
    """
    return save_store(obj, path, overwrite=overwrite)


def supported_formats() -> dict[str, str]:
    """Extension -> format name for every readable format."""
    return {ext: name for ext, (name, _) in READERS.items()}


__all__ = ["load", "load_all", "save", "select_signal", "supported_formats", "format_of", "export",
           "writable_formats", "save_truth", "load_truth", "atomic_path"]
