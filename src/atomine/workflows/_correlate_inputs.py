"""What :func:`~atomine.workflows.correlate.correlate` accepts, resolved to data before any work runs.

Structure: the high-resolution image (the atoms and segmentation workflows run on it), or results
already made (``AtomsResult``, ``SegmentResult``, an atom table, their saved folders), or a list.
Spectra: the spectrum image (with its simultaneous ADF channel when the file or Dataset holds one),
or an ``UnmixResult`` / saved ``atomine unmix`` folder. Every refusal is one line and names what to pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

_STORES = (".zarr", ".zspy")
_SPECTRAL_DIMS = (("y", "x", "energy"), ("y", "x", "bias"))
_ADF_WORDS = ("haadf", "adf", "df", "bf", "stem", "survey")


@dataclass
class StructureInputs:
    """The image and the structural results to use; ``run`` lists the analyses still to run on the image.

    An image series (frame, y, x) is drift- and scan-line-corrected and averaged first (noted).
    """

    image: xr.DataArray | None = None
    atoms: Any = None                     # AtomsResult when run or given
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)   # atoms, strain, polarisation
    segmentation: Any = None              # SegmentResult when run or given
    segmentation_maps: xr.Dataset | None = None
    run: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class SpectraInputs:
    """The spectrum image, its simultaneous channel and the unmixing (given, read, or still to run)."""

    si: xr.DataArray | None = None
    adf: xr.DataArray | None = None
    unmixing: Any = None
    unmix_maps: xr.Dataset | None = None
    annotations: pd.DataFrame | None = None
    run: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _is_result_folder(path: Path) -> bool:
    return path.is_dir() and path.suffix.lower() not in _STORES


def _open_maps(folder: Path) -> xr.Dataset:
    store = folder / "result.zarr"
    if not store.exists():
        raise InputError(f"{folder} holds no result.zarr; pass a result folder written by atomine")
    return xr.open_zarr(store).load()


def _series_mean(series: xr.DataArray, notes: list[str]) -> xr.DataArray:
    """An image series (frame, y, x): drift and scan-line offsets corrected, then averaged."""
    from ..correlate import correct_series

    mean, shifts = correct_series(series)
    drift = float(np.hypot(shifts["dy_px"], shifts["dx_px"]).max())
    lines = float(np.sqrt(np.mean(shifts["line_dx_px"] ** 2)))
    notes.append(f"image: drift-corrected mean of {series.sizes['frame']} frames (rigid drift up to {drift:.2f} px, "
                 f"line offsets {lines:.2f} px RMS)")
    return mean


def _image_from(obj, what: str, notes: list[str] | None = None) -> xr.DataArray:
    from ..io import load_all, select_signal
    from ._image_results import as_image

    if isinstance(obj, (str, os.PathLike)):
        signals = load_all(obj)
        series = [s for s in signals if tuple(s.dims) == ("frame", "y", "x")]
        images = [s for s in signals if tuple(s.dims) == ("y", "x")]
        # a file holding a spectrum image's small simultaneous channel next to the high-resolution
        # image: the structure is the largest
        images.sort(key=lambda s: -s.size)
        obj = images[0] if images else (series[0] if series else select_signal(signals, None, "image", os.fspath(obj)))
    if isinstance(obj, xr.DataArray) and tuple(obj.dims) == ("frame", "y", "x"):
        return _series_mean(obj, notes if notes is not None else [])
    return as_image(obj, what)


def _read_structure_folder(folder: Path, s: StructureInputs) -> None:
    if (folder / "atoms.parquet").exists():
        s.tables["atoms"] = pd.read_parquet(folder / "atoms.parquet")
        for name in ("strain", "polarisation"):
            if (folder / f"{name}.parquet").exists():
                s.tables[name] = pd.read_parquet(folder / f"{name}.parquet")
        s.sources["atoms"] = f"folder {folder.name}"
        return
    if (folder / "result.zarr").exists():
        maps = _open_maps(folder)
        if "phase" in maps and "abundance" in maps:
            s.segmentation_maps = maps
            s.sources["segmentation"] = f"folder {folder.name}"
            return
    raise InputError(f"{folder} is not an 'atomine atoms' or 'atomine segment' result folder (no atoms.parquet, "
                     "no segmentation result.zarr)")


def resolve_structure(structure, image=None, *, segment: bool = False) -> StructureInputs:
    """Sort the ``structure`` argument (and ``image``) into a :class:`StructureInputs`."""
    from .atoms import AtomsResult
    from .segment import SegmentResult

    s = StructureInputs()
    items = list(structure) if isinstance(structure, (list, tuple)) else [structure]
    if not items:
        raise InputError("structure is empty: pass the high-resolution image or atomine results")
    for item in items:
        if isinstance(item, AtomsResult):
            s.atoms = item
            s.tables.update({"atoms": item.atoms, "strain": item.strain, "polarisation": item.polarisation})
            s.sources["atoms"] = "AtomsResult"
        elif isinstance(item, SegmentResult):
            s.segmentation, s.segmentation_maps = item, item.maps
            s.sources["segmentation"] = "SegmentResult"
        elif isinstance(item, pd.DataFrame):
            if not {"x", "y", "cls"} <= set(item.columns):
                raise InputError("an atom table needs columns x, y (nm) and cls, as 'atomine atoms' writes")
            s.tables["atoms"] = item
            s.sources["atoms"] = "atom table"
        elif isinstance(item, (str, os.PathLike)) and _is_result_folder(Path(item)):
            _read_structure_folder(Path(item), s)
        elif isinstance(item, (str, os.PathLike)) and Path(item).suffix.lower() == ".parquet":
            if not Path(item).exists():
                raise InputError(f"{item}: no such file")
            s.tables["atoms"] = pd.read_parquet(item)
            s.sources["atoms"] = f"table {Path(item).name}"
        elif isinstance(item, (xr.DataArray, np.ndarray, str, os.PathLike)):
            if s.image is not None:
                raise InputError("structure holds two images; pass one high-resolution image")
            s.image = _image_from(item, "correlate (structure image)", s.notes)
            s.sources["image"] = Path(item).name if isinstance(item, (str, os.PathLike)) else "DataArray"
        else:
            raise InputError(f"structure must be an image, an AtomsResult/SegmentResult, an atom table or a result "
                             f"folder, got {type(item).__name__}")
    if image is not None:
        if s.image is not None:
            raise InputError("the image is given twice (in structure and as image=); pass it once")
        s.image = _image_from(image, "correlate (image)", s.notes)
        s.sources["image"] = Path(image).name if isinstance(image, (str, os.PathLike)) else "DataArray"
    given_structure = "atoms" in s.tables or s.segmentation_maps is not None
    if s.image is not None and not given_structure:
        s.run.append("atoms")
    if s.image is not None and segment and s.segmentation_maps is None:
        s.run.append("segment")
    return s


def _spectral(da) -> bool:
    return isinstance(da, xr.DataArray) and tuple(da.dims) in _SPECTRAL_DIMS


def pick_adf(si: xr.DataArray, candidates: list[xr.DataArray], source: str) -> xr.DataArray | None:
    """The image-kind signal on the spectrum image's own scan grid: its simultaneous channel."""
    same = [c for c in candidates if tuple(c.dims) == ("y", "x") and c.shape == si.shape[:2]]
    if not same:
        return None
    named = [c for c in same if any(w in f"{c.name} {c.attrs.get('signal', '')}".lower() for w in _ADF_WORDS)]
    pick = (named or same)[0]
    if len(named or same) > 1:
        names = [str(c.name) for c in (named or same)]
        raise InputError(f"{source} holds several images on the spectrum image's grid {names}; pass the "
                         "simultaneous channel as adf=")
    return pick


def _from_dataset(ds: xr.Dataset, source: str) -> tuple[xr.DataArray, xr.DataArray | None]:
    spectral = [v for v in ds.data_vars.values() if _spectral(v)]
    if len(spectral) != 1:
        names = [str(n) for n, v in ds.data_vars.items() if _spectral(v)]
        raise InputError(f"{source} must hold exactly one spectrum image (y, x, energy|bias), found {names or 'none'}")
    si = spectral[0]
    return si, pick_adf(si, [v for v in ds.data_vars.values() if not _spectral(v)], source)


def _read_unmix_folder(folder: Path, p: SpectraInputs) -> None:
    maps = _open_maps(folder)
    if "abundance" not in maps or "endmember" not in maps:
        raise InputError(f"{folder} is not an 'atomine unmix' result folder (its result.zarr has no abundance / "
                         "endmember)")
    p.unmix_maps = maps
    ann = folder / "annotations.csv"
    p.annotations = pd.read_csv(ann) if ann.exists() and ann.stat().st_size > 1 else None
    p.sources["unmixing"] = f"folder {folder.name}"


def resolve_spectra(spectra, adf=None, signal: str | int | None = None) -> SpectraInputs:
    """Sort the ``spectra`` argument (and ``adf``) into a :class:`SpectraInputs`; ``signal`` picks the
    spectrum image of a file holding several (name or index)."""
    from ..io import load_all, select_signal
    from .unmix import UnmixResult

    p = SpectraInputs()
    is_file = isinstance(spectra, (str, os.PathLike)) and not _is_result_folder(Path(spectra))
    if signal is not None and not is_file:
        raise InputError("signal= selects a spectrum image of a file; the spectra given are not a data file")
    if isinstance(spectra, UnmixResult):
        p.unmixing, p.unmix_maps, p.annotations = spectra, spectra.maps, spectra.annotations
        p.sources["unmixing"] = "UnmixResult"
    elif isinstance(spectra, xr.Dataset):
        p.si, p.adf = _from_dataset(spectra, "the spectra Dataset")
        p.sources["spectra"] = "Dataset"
    elif _spectral(spectra):
        p.si = spectra
        p.sources["spectra"] = "DataArray"
    elif isinstance(spectra, (str, os.PathLike)):
        path = Path(spectra)
        if _is_result_folder(path):
            _read_unmix_folder(path, p)
        else:
            signals = load_all(path)
            if isinstance(signal, str) and signal.lstrip("-").isdigit():
                signal = int(signal)
            p.si = select_signal(signals, signal, "spectral", os.fspath(path))
            if not _spectral(p.si):
                raise InputError(f"signal {signal} of {path.name} has dims {tuple(p.si.dims)}, not a spectrum image "
                                 "(y, x, energy|bias)")
            p.adf = pick_adf(p.si, [s for s in signals if s is not p.si], path.name)
            p.sources["spectra"] = path.name
    else:
        raise InputError("spectra must be a spectrum image (y, x, energy|bias), a Dataset holding one and its ADF "
                         f"channel, a file, or an UnmixResult / 'atomine unmix' folder; got {type(spectra).__name__}")
    if adf is not None:
        p.adf = _image_from(adf, "correlate (adf)")
        p.sources["adf"] = Path(adf).name if isinstance(adf, (str, os.PathLike)) else "DataArray"
    elif p.adf is not None:
        p.sources["adf"] = str(p.adf.name)
    if p.si is not None:
        if p.si.sizes["y"] < 4 or p.si.sizes["x"] < 4:
            raise InputError(f"the spectrum image has {p.si.sizes['y']} x {p.si.sizes['x']} pixels; correlation "
                             "needs at least 4 x 4")
        p.run.append("unmix")
    if p.adf is not None:
        grid = p.si if p.si is not None else p.unmix_maps
        if grid is not None and (p.adf.sizes["y"], p.adf.sizes["x"]) != (grid.sizes["y"], grid.sizes["x"]):
            raise InputError(f"the simultaneous channel is {p.adf.sizes['y']} x {p.adf.sizes['x']} px but the spectrum "
                             f"image is {grid.sizes['y']} x {grid.sizes['x']}: they must share the scan grid")
    return p


__all__ = ["SpectraInputs", "StructureInputs", "pick_adf", "resolve_spectra", "resolve_structure"]
