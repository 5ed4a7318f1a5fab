"""Electron-microscopy files through rosettasciio: DM3/DM4, Velox and NCEM EMD, TIA ser/emi, EMSA/MSA, TIFF, MRC, HSPY/ZSPY.

``read_rsciio(path, lazy)`` calls the rosettasciio plugin's ``file_reader`` for the
file's extension and turns every signal dict it returns into a calibrated
DataArray made by the ``atomine.data`` constructors:

- dims and coordinates from the axis dicts (see :mod:`atomine.data._hs_axes`):
  images ``("y", "x")`` in nm, spectrum images ``("y", "x", "energy")`` in eV
  with energy last whatever order the file stores, spectra ``("energy",)``,
  image series ``("frame", "y", "x")``, anything else generic dims;
- ``attrs["signal"]`` best effort from the signal type, detector and title
  (see :func:`atomine.data._hs_metadata.signal_label`);
- ``attrs["metadata"]`` normalised (beam energy kV, angles mrad, probe current
  pA, dwell time s, detector, elements, date, instrument, ...);
- ``attrs["original_metadata"]`` everything the file said, made JSON-safe;
- one provenance step with the file's SHA-256;
- a ``.hspy``/``.zspy`` file written by :func:`atomine.io.export` (or HyperSpy after
  :func:`atomine.data.to_hyperspy`) holds atomine's attrs in
  ``original_metadata.atomine_attrs``: signal, value units, name, metadata and
  provenance are restored from there (the load step appended; metadata edited in
  HyperSpy since win, see :func:`atomine.data.hyperspy.restore_attrs`).

Names are short labels unique within the file: the signal label, then
``_1``, ``_2``... for repeats ("HAADF", "EDS", "EDS_1").
"""

from __future__ import annotations

import glob
import importlib
import os
import struct
from pathlib import Path

import xarray as xr

from ..data import file_hash, step
from ..data._hs_dict import to_dataarray
from ..data.hyperspy import restore_attrs, stashed_attrs
from ..errors import AtomineError, CorruptFileError, InputError, MissingDependencyError, UnsupportedFormatError

# Extension -> (rosettasciio plugin module, format name, passes ``lazy`` through).
# The MSA plugin refuses lazy=True; its spectra are tiny, so they are read eagerly and wrapped.
_PLUGINS: dict[str, tuple[str, str, bool]] = {
    ".dm3": ("digitalmicrograph", "Gatan DM3", True),
    ".dm4": ("digitalmicrograph", "Gatan DM4", True),
    ".emd": ("emd", "EMD (Velox/NCEM)", True),
    ".ser": ("tia", "FEI TIA", True),
    ".emi": ("tia", "FEI TIA", True),
    ".msa": ("msa", "EMSA/MSA", False),
    ".ems": ("msa", "EMSA/MSA", False),
    ".mas": ("msa", "EMSA/MSA", False),
    ".tif": ("tiff", "TIFF", True),
    ".tiff": ("tiff", "TIFF", True),
    ".mrc": ("mrc", "MRC", True),
    ".hspy": ("hspy", "HyperSpy HDF5", True),
    ".zspy": ("zspy", "HyperSpy Zarr", True),
}
# The zspy plugin opens lazily read stores read-write; atomine never modifies inputs.
_EXTRA_KWARGS = {"zspy": {"mode": "r"}}


def read_rsciio(path: str, lazy: bool) -> list[xr.DataArray]:
    """Every signal in an EM file as calibrated DataArrays.

    Parameters
    ----------
    path : str
        A .dm3, .dm4, .emd, .ser, .emi, .msa/.ems/.mas, .tif/.tiff, .mrc, .hspy or .zspy file.
    lazy : bool
        Keep the data dask-backed (nothing is read beyond headers); else numpy arrays.

    Returns
    -------
    list of xarray.DataArray
        One per signal in the file, in the file's order.

    Raises
    ------
    CorruptFileError
        The file cannot be decoded (truncated, wrong content for its extension).
    MissingDependencyError
        A package the format needs is not installed (``sparse`` for Velox EDS, ``zarr<3`` for ZSPY).
    CalibrationError
        A calibration is present but unusable (zero or NaN step).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _PLUGINS:
        raise UnsupportedFormatError(f"{path}: rosettasciio reader does not handle {ext or 'files without extension'!r}")
    plugin, fmt, passes_lazy = _PLUGINS[ext]
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise CorruptFileError(f"{path}: file is empty (0 bytes), not a valid {fmt} file")
    signals = _call_plugin(path, plugin, fmt, lazy if passes_lazy else False)
    if not signals:
        raise CorruptFileError(_no_signal_message(path, ext, fmt))
    digest = file_hash(path)
    params = {"format": fmt, "plugin": f"rsciio.{plugin}", "rsciio_version": _rsciio_version(), "file": Path(path).name,
              "lazy": bool(lazy)}
    if ext == ".emi":  # the data live in the .ser files beside it: record their hashes too
        sers = sorted(Path(path).parent.glob(f"{glob.escape(Path(path).stem)}_*.ser"))
        params["companions"] = {p.name: file_hash(p) for p in sers}
    out, used = [], {}
    for i, sig in enumerate(signals):
        _check_data(sig, path, fmt, i)
        prov = [step("load", dict(params, signal_index=i), digest)]
        # A file atomine exported carries atomine's attrs whole; they come back, not in original_metadata.
        original, stash = stashed_attrs(sig.get("original_metadata"))
        sig = {**sig, "original_metadata": original}
        da = to_dataarray(sig, lazy=lazy, provenance=prov, what=f"{path}: signal {i}",
                          spectral=_spectral_axis(sig, plugin))
        if da is None:
            continue
        da = restore_attrs(da, stash, original)
        base = str(da.name)
        n = used.get(base, 0)
        used[base] = n + 1
        out.append(da.rename(base if n == 0 else f"{base}_{n}"))
    if not out:
        raise UnsupportedFormatError(f"{path}: none of its {len(signals)} signal(s) holds numeric data atomine can use")
    return out


def _rsciio_version() -> str:
    import rsciio

    return str(getattr(rsciio, "__version__", "unknown"))


def _call_plugin(path: str, plugin: str, fmt: str, lazy: bool) -> list[dict]:
    try:
        module = importlib.import_module(f"rsciio.{plugin}")
    except ImportError as exc:
        raise MissingDependencyError(f"reading {fmt} files needs rosettasciio's {plugin} plugin ({exc}); "
                                     f"pip install 'rosettasciio[hdf5,tiff]'") from exc
    try:
        return list(module.file_reader(path, lazy=lazy, **_EXTRA_KWARGS.get(plugin, {})))
    except AtomineError:
        raise
    except MemoryError:
        raise InputError(f"{path}: too large to load into memory; try lazy=True (CLI: --lazy)") from None
    except ModuleNotFoundError as exc:
        missing = exc.name or "a package"
        if "sparse" in str(exc):
            missing = "sparse"
        raise MissingDependencyError(f"{path}: reading this {fmt} file needs the '{missing}' package; "
                                     f"pip install {missing}") from exc
    except Exception as exc:
        if plugin == "zspy" and _zarr_major() >= 3:
            raise MissingDependencyError(f"{path}: rosettasciio reads .zspy only with zarr 2 (found zarr "
                                         f"{_zarr_version()}); pip install 'zarr<3' or save as .hspy") from exc
        raise CorruptFileError(f"{path}: could not be read as a {fmt} file: {_reason(exc)}") from exc


def _zarr_version() -> str:
    try:
        import zarr

        return str(zarr.__version__)
    except ImportError:
        return "none"


def _zarr_major() -> int:
    head = _zarr_version().split(".")[0]
    return int(head) if head.isdigit() else 0


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong, in words a user can act on."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if isinstance(exc, (struct.error, EOFError)) or "unpack requires a buffer" in low or "truncated" in low:
        return f"the file ends early, so it is truncated or an incomplete copy ({type(exc).__name__}: {text[:120]})"
    if "file signature not found" in low:
        return "it is not an HDF5 file (no HDF5 signature); it is damaged or has the wrong extension"
    if "not a tiff file" in low:
        return "it has no TIFF header; it is damaged or has the wrong extension"
    if "dm versions" in low:
        return "its header is not a DM3/DM4 header; it is damaged or has the wrong extension"
    return f"{type(exc).__name__}: {text[:200]}; the file may be damaged or not really this format"


def _no_signal_message(path: str, ext: str, fmt: str) -> str:
    if ext == ".emi":
        stem = Path(path).stem
        return (f"{path}: no data found; a TIA .emi file needs its .ser data file(s) ({stem}_1.ser, ...) "
                f"in the same folder")
    return f"{path}: no signals found in this {fmt} file"


def _check_data(sig: dict, path: str, fmt: str, index: int) -> None:
    """An empty or missing array means a damaged file (the MSA reader returns 0 channels for garbage)."""
    data = sig.get("data")
    if data is None or not hasattr(data, "shape"):
        raise CorruptFileError(f"{path}: signal {index} of this {fmt} file has no data array")
    if len(data.shape) == 0 or 0 in tuple(data.shape):
        raise CorruptFileError(f"{path}: signal {index} of this {fmt} file is empty (shape {tuple(data.shape)}); "
                               f"the file is damaged or not really {fmt}")


def _spectral_axis(sig: dict, plugin: str) -> int | None:
    """Array index of the one signal axis of a HyperSpy file's Signal1D (its navigate flags are reliable).

    Vendor readers (DM especially) set the flags inconsistently, so they get no hint.
    """
    if plugin not in ("hspy", "zspy"):
        return None
    axes = list(sig.get("axes") or [])
    signal_axes = [i for i, a in enumerate(axes) if a.get("navigate") is False]
    if len(signal_axes) != 1 or len(axes) < 2:
        return None
    i = signal_axes[0]
    return int(axes[i].get("index_in_array", i))
