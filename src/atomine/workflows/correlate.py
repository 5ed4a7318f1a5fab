"""Which local structure explains which spectral response: registration, descriptors, mining, end to end.

:func:`correlate` composes :mod:`atomine.correlate` with the other workflows:

1. the structure: atom columns (:func:`~atomine.workflows.analyze_atoms`) and, with ``segment``,
   sliding-FFT phases (:func:`~atomine.workflows.segment_phases`) of the high-resolution image,
   unless given as results or saved folders;
2. the spectra: :func:`~atomine.workflows.unmix_spectra` of the spectrum image (abundances, EDS line
   maps), per-pixel EELS edge onsets and strengths, CITS gap maps;
3. the registration of the spectrum image's simultaneous channel (or summed signal) onto the image
   (:func:`~atomine.correlate.register`); a refused registration raises, it never misaligns silently;
4. every structural descriptor averaged over each spectral pixel's footprint
   (:func:`~atomine.correlate.atoms_to_grid`, :func:`~atomine.correlate.map_to_grid`);
5. mining (:func:`~atomine.correlate.mine`): correlations with spatial permutation tests, q-values,
   block cross-validation, CCA and PLS.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..correlate import AffineTransform, MiningResult, Registration, mine, register
from ..data import array_hash, file_hash, jsonable
from ..errors import InputError
from . import _correlate_descriptors as desc
from ._correlate_inputs import SpectraInputs, StructureInputs, resolve_spectra, resolve_structure
from ._image_results import provenance_record, stage_clock

Progress = Callable[[int, int, str], None]
LINK_COLUMNS = ("structure", "property", "r", "p", "q", "cv_r2", "n", "effect")
_STAGES = 6


@dataclass
class CorrelateResult:
    """What :func:`correlate` found.

    Attributes
    ----------
    links : pandas.DataFrame
        One row per (structure, property) pair: ``r``, ``p`` (spatial permutation test), ``q``
        (Benjamini-Hochberg), ``cv_r2`` (spatial block cross-validation), ``n`` (pixels),
        ``effect`` (property units per structure unit), ``n_permutations``; ranked by q, then |r|.
    mining : atomine.correlate.MiningResult
        CCA, PLS, multivariate cross-validated R^2, notes, q floor, settings.
    structure, spectra : xarray.Dataset
        The descriptor maps on the spectral grid (y, x in nm, spectral frame); each variable's
        attrs hold ``long_name``, ``units``, ``source``.
    transform : atomine.correlate.AffineTransform
        Spectral-frame nm -> image-frame nm.
    registration : atomine.correlate.Registration or None
        Residual, confidence, error, overlap; None when the transform was given.
    image, adf : xarray.DataArray or None
        The high-resolution image (image frame) and the registered channel (spectral frame).
    atoms, segmentation, unmixing
        The upstream results run here or given as objects (None when read from folders).
    summary : dict
        The content of ``correlate.json``.
    """

    links: pd.DataFrame
    mining: MiningResult
    structure: xr.Dataset
    spectra: xr.Dataset
    transform: AffineTransform
    registration: Registration | None
    image: xr.DataArray | None
    adf: xr.DataArray | None
    atoms: Any
    segmentation: Any
    unmixing: Any
    summary: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    started: str
    elapsed_s: float
    timings: dict[str, float] = field(default_factory=dict)
    ran: tuple[str, ...] = ()

    def maps(self) -> xr.Dataset:
        """Every descriptor (``structure_<name>``, ``property_<name>``) and the registered channel."""
        parts = {f"structure_{k}": v for k, v in self.structure.data_vars.items()}
        parts.update({f"property_{k}": v for k, v in self.spectra.data_vars.items()})
        if self.adf is not None:
            parts["adf"] = self.adf.astype(np.float32)
        ds = xr.Dataset(parts)
        ds.attrs = {"title": "atomine structure-property correlation", "atomine_version": __version__,
                    "frame": "spectral (nm); image = transform(spectral)",
                    "transform": json.dumps(self.transform.to_dict())}
        return ds

    def provenance(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        record = provenance_record("atomine.workflows.correlate.correlate", self, files)
        record["timings_s"] = dict(self.timings)
        return record

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["CorrelateResult", Path], Any] | None = None) -> Path:
        """Write ``links.csv``, ``correlate.json``, ``transform.json``, ``result.zarr``, the upstream
        results this call ran (``atoms/``, ``segment/``, ``unmix/``), ``provenance.json`` and, given a
        ``report(result, path)`` writer, ``report.html``; atomically. An existing folder is refused
        unless ``overwrite``."""
        from ..io import save
        from ..io._atomic import atomic_path

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            self.links.loc[:, list(LINK_COLUMNS)].to_csv(tmp / "links.csv", index=False, float_format="%.6g")
            (tmp / "correlate.json").write_text(json.dumps(jsonable(self.summary), indent=2) + "\n", encoding="utf-8")
            (tmp / "transform.json").write_text(json.dumps(self.transform.to_dict(), indent=2) + "\n",
                                                encoding="utf-8")
            save(self.maps(), tmp / "result.zarr")
            for folder, stage, res in (("atoms", "atoms", self.atoms), ("segment", "segmentation", self.segmentation),
                                       ("unmix", "unmixing", self.unmixing)):
                if stage in self.ran and res is not None:
                    res.save(tmp / folder)
            if report is not None:
                report(self, tmp / "report.html")
            files = {p.name: file_hash(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            (tmp / "provenance.json").write_text(json.dumps(self.provenance(files), indent=2) + "\n", encoding="utf-8")
        return directory


def read_transform(transform) -> AffineTransform:
    """An AffineTransform from itself, a dict, or a ``transform.json`` path."""
    if isinstance(transform, AffineTransform):
        return transform
    if isinstance(transform, (str, os.PathLike)):
        path = Path(transform)
        if path.is_dir():
            path = path / "transform.json"
        try:
            transform = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable transform.json ({type(exc).__name__})") from None
    if isinstance(transform, dict):
        try:
            return AffineTransform.from_dict(transform)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not an affine transform: {exc}") from None
    raise InputError(f"transform must be an AffineTransform, a dict or a transform.json path, got "
                     f"{type(transform).__name__}")


def _grid_template(p: SpectraInputs) -> xr.DataArray:
    if p.adf is not None:
        g = p.adf
    elif p.unmix_maps is not None:
        g = p.unmix_maps["abundance"].isel(component=0)
    else:
        g = p.si.isel({p.si.dims[-1]: 0})
    coords = {d: (d, g[d].values, {"units": "nm", **dict(g[d].attrs)}) for d in ("y", "x")}
    return xr.DataArray(np.zeros((g.sizes["y"], g.sizes["x"])), dims=("y", "x"), coords=coords)


def _moving(p: SpectraInputs, notes: list[str]) -> xr.DataArray:
    if p.adf is not None:
        return p.adf.astype(np.float64)
    if p.si is None:
        raise InputError("registration needs the spectrum image's simultaneous channel: pass adf= (or transform=) "
                         "with an unmixing result")
    notes.append("no simultaneous channel: the summed spectrum-image signal was registered")
    return p.si.sum(p.si.dims[-1]).astype(np.float64)


def _same_grid(a: xr.DataArray, b: xr.DataArray) -> bool:
    return a.shape == b.shape and all(np.allclose(a[d].values, b[d].values, rtol=0, atol=1e-9 + 1e-6 * float(
        np.ptp(b[d].values))) for d in ("y", "x"))


def _check_options(method, fdr, n_permutations) -> None:
    if method not in ("pearson", "spearman"):
        raise InputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if not 0 < float(fdr) < 1:
        raise InputError(f"fdr must be in (0, 1), got {fdr}")
    if n_permutations is not None and int(n_permutations) < 99:
        raise InputError(f"n_permutations must be at least 99 (or None for every shift), got {n_permutations}")


def correlate(structure, spectra, *, image=None, adf=None, signal=None, transform=None, segment: bool = False,
              unmix_method: str = "fcls", n_components: int | None = None, method: str = "pearson",
              fdr: float = 0.05, n_permutations: int | None = None, models: bool = True, random_state=0,
              progress: Progress | None = None) -> CorrelateResult:
    """Register spectral and structural data and rank which structure explains which spectral response.

    Parameters
    ----------
    structure
        The high-resolution image (DataArray (y, x) in nm or a file; an image series (frame, y, x)
        is drift- and scan-line-corrected and averaged first) -- the atoms workflow (and with
        ``segment`` the segmentation) runs on it -- or an ``AtomsResult``, ``SegmentResult``, atom
        table, saved ``atomine atoms`` / ``atomine segment`` folder, or a list of these.
    spectra
        The spectrum image (DataArray (y, x, energy|bias), a file, or a Dataset / .nc / .zarr holding
        it and its simultaneous ADF channel) -- the unmixing runs on it -- or an ``UnmixResult`` /
        saved ``atomine unmix`` folder (then only its abundances and EDS line maps are descriptors:
        per-pixel edge onsets and gap maps need the spectrum image).
    image, adf
        The image for registration when ``structure`` holds results; the simultaneous channel
        when ``spectra`` does not (default: the spectrum image's summed signal).
    signal
        Name or index of the spectrum image in a ``spectra`` file holding several.
    transform
        AffineTransform (spectral nm -> image nm), dict or transform.json: skips the registration.
    segment
        Also run the sliding-FFT segmentation for ``phase_abundance_<k>`` descriptors.
    unmix_method, n_components
        Passed to :func:`~atomine.workflows.unmix_spectra`.
    method, fdr, n_permutations, models, random_state
        Passed to :func:`~atomine.correlate.mine` (``n_permutations`` None: every shift; ``models``
        False skips cross-validation, CCA and PLS, which the q-values do not depend on, e.g. for
        many null seeds).
    progress : callable, optional
        ``progress(done, total, message)`` after each stage.

    Raises
    ------
    InputError
        Bad or inconsistent input.
    atomine.errors.RegistrationError
        The registration is refused (no overlap, mismatched calibrations, no confident match).
    """
    from .atoms import analyze_atoms
    from .segment import segment_phases
    from .unmix import unmix_spectra

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    _check_options(method, fdr, n_permutations)
    s: StructureInputs = resolve_structure(structure, image, segment=segment)
    p: SpectraInputs = resolve_spectra(spectra, adf, signal)
    given = read_transform(transform) if transform is not None else None
    if given is None and s.image is None:
        raise InputError("registration needs the high-resolution image: pass it as structure or image= "
                         "(or give transform=)")
    timings: dict[str, float] = {}
    tick = stage_clock(progress, _STAGES, timings)
    notes: list[str] = list(s.notes)
    ran: list[str] = []

    t0 = time.perf_counter()
    if "atoms" in s.run:
        try:
            s.atoms = analyze_atoms(s.image, random_state=random_state)
            s.tables = {"atoms": s.atoms.atoms, "strain": s.atoms.strain, "polarisation": s.atoms.polarisation}
            s.sources["atoms"] = "analyze_atoms"
            ran.append("atoms")
        except InputError as exc:
            notes.append(f"no atom columns from the image ({exc}); structural descriptors from the image alone")
    tick(f"atoms: {len(s.tables['atoms']) if 'atoms' in s.tables else 0} columns", t0)
    t0 = time.perf_counter()
    if "segment" in s.run:
        s.segmentation = segment_phases(s.image, random_state=random_state)
        s.segmentation_maps = s.segmentation.maps
        s.sources["segmentation"] = "segment_phases"
        ran.append("segmentation")
    tick("segmentation" if "segment" in s.run else "segmentation: not run", t0)

    t0 = time.perf_counter()
    if "unmix" in p.run:
        p.unmixing = unmix_spectra(p.si, method=unmix_method, n_components=n_components, random_state=random_state)
        p.unmix_maps, p.annotations = p.unmixing.maps, p.unmixing.annotations
        p.sources["unmixing"] = f"unmix_spectra ({unmix_method})"
        ran.append("unmixing")
    tick(f"unmixing: {p.unmix_maps.sizes['component']} components", t0)

    t0 = time.perf_counter()
    reg = None
    if given is None:
        moving = _moving(p, notes)
        if _same_grid(moving, s.image):
            # the channel was recorded in the same scan as the image: no rotation or scale is possible, and an
            # affine fit of a map against itself is biased by the footprint smoothing
            notes.append("the spectrum image shares the image's scan grid: shift-only registration")
            reg = register(moving, s.image.astype(np.float64), rotation=False, affine=False)
        else:
            reg = register(moving, s.image.astype(np.float64))
        t = reg.transform
    else:
        t = given
    tick("registration" if reg is None else f"registration: residual {reg.residual:.3f}, error {reg.error_px:.3f} px",
         t0)

    t0 = time.perf_counter()
    grid = _grid_template(p)
    parts = desc.atom_descriptors(s.tables, grid, t, notes)
    parts.update(desc.segmentation_descriptors(s.segmentation_maps, grid, t))
    if not parts and s.image is not None:
        parts.update(desc.image_descriptor(s.image, grid, t))
    if not parts:
        raise InputError("no structural descriptor could be made: pass an image with atom columns, atom tables or a "
                         "segmentation")
    struct_ds = xr.Dataset(parts)
    if p.si is None:
        notes.append("spectra from an unmixing result: abundances and EDS line maps only (per-pixel edge onsets and "
                     "gap maps need the spectrum image itself)")
    spec_ds = xr.Dataset(desc.spectral_descriptors(p.unmix_maps, p.si, p.annotations, grid, notes))
    tick(f"descriptors: {len(struct_ds.data_vars)} structural, {len(spec_ds.data_vars)} spectral", t0)

    t0 = time.perf_counter()
    mining = mine(struct_ds, spec_ds, method=method, fdr=fdr, n_permutations=n_permutations, models=models,
                  random_state=random_state)
    tick(f"mining: {len(mining.links)} pairs", t0)

    elapsed = time.perf_counter() - t_start
    parameters = {"segment": bool(segment), "unmix_method": unmix_method, "n_components": n_components,
                  "method": method, "fdr": float(fdr), "n_permutations": n_permutations, "models": bool(models),
                  "random_state": random_state if isinstance(random_state, int) else None,
                  "transform_given": given is not None}
    inputs = _inputs(s, p)
    summary = _summary(mining, struct_ds, spec_ds, reg, t, fdr, notes, {**s.sources, **p.sources}, ran)
    summary["elapsed_s"] = round(elapsed, 2)
    return CorrelateResult(links=mining.links, mining=mining, structure=struct_ds, spectra=spec_ds, transform=t,
                           registration=reg, image=s.image, adf=p.adf, atoms=s.atoms, segmentation=s.segmentation,
                           unmixing=p.unmixing, summary=summary, parameters=parameters, inputs=inputs,
                           started=started, elapsed_s=elapsed, timings=timings, ran=tuple(ran))


def _inputs(s: StructureInputs, p: SpectraInputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, da in (("image", s.image), ("spectrum_image", p.si), ("adf", p.adf)):
        if da is not None:
            out[name] = {"name": str(da.name), "shape": list(da.shape), "dtype": str(da.dtype),
                         "content_hash": array_hash(da)}
    return out


def _summary(mining: MiningResult, struct_ds, spec_ds, reg, t: AffineTransform, fdr: float, notes: list[str],
             sources: dict, ran: list[str]) -> dict[str, Any]:
    links = mining.links
    registration = reg.to_dict() if reg is not None else {"transform": t.to_dict(), "method": "given"}
    registration["transform_params"] = t.params()
    descriptors = {k: {a: str(v.attrs.get(a, "")) for a in ("long_name", "units", "source")}
                   for ds in (struct_ds, spec_ds) for k, v in ds.data_vars.items()}
    return {
        "registration": registration,
        "n_structure": len(struct_ds.data_vars), "n_property": len(spec_ds.data_vars),
        "n_significant": int((links["q"] <= fdr).sum()) if len(links) else 0, "fdr": float(fdr),
        "top_links": links.head(10).loc[:, list(LINK_COLUMNS)].to_dict(orient="records"),
        "cca": mining.cca, "pls": mining.pls, "multivariate_cv_r2": mining.multivariate_cv_r2,
        "notes": list(notes) + list(mining.notes), "q_floor": mining.q_floor, "q_reachable": mining.q_reachable,
        "n_permutations": mining.n_permutations, "method": mining.method,
        "exclusion_radius_px": mining.exclusion_radius_px, "block_px": mining.block_px,
        "sources": sources, "ran": ran, "descriptors": descriptors,
    }


__all__ = ["CorrelateResult", "LINK_COLUMNS", "correlate", "read_transform"]
