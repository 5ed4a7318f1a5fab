"""Atom columns of an image, end to end: positions, sublattices, classes, segregation, order parameters.

:func:`analyze_atoms` composes :mod:`atomine.atoms`:

1. seeds from the lattice period, centres of mass, batched Gaussian fits with Cramer-Rao
   errors (:func:`~atomine.atoms.locate_atoms`);
2. sublattices and lattice sites from the vector pair distribution function, and the empty
   sites (vacancies) (:func:`~atomine.atoms.identify_sublattices`, :func:`~atomine.atoms.find_vacancies`);
3. fitted intensities normalised by same-sublattice neighbours, Gaussian-mixture classes with
   posteriors (:func:`~atomine.atoms.classify_atoms`);
4. Warren-Cowley short-range order with block-bootstrap intervals on every sublattice that holds
   dopants; polarisation where a sublattice sits in the cage of another (perovskites); lattice
   strain and rotation of sublattice 0; the vector PDF.

Steps that do not apply to an image (no dopants, no cage geometry) are skipped and the reason is
recorded in ``summary["skipped"]``: an empty, explained result rather than an error.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..errors import InputError
from ._image_results import as_image, finish_folder, image_inputs, provenance_record, stage_clock

Progress = Callable[[int, int, str], None]
_STAGES = 6
_MIN_DOPANTS = 3  # short-range order needs at least this many dopants on a sublattice


@dataclass
class AtomsResult:
    """What :func:`analyze_atoms` found.

    Attributes
    ----------
    atoms : pandas.DataFrame
        One row per column (DESIGN.md's atom table), plus one row per empty site
        (``cls == "vacancy"``, ``fit_ok`` False, predicted position, ``p_cls`` how clearly the
        site is empty; ``"unknown"`` below 0.6).
    sro : pandas.DataFrame
        Warren-Cowley rows per sublattice and shell (alpha with its interval and the
        random-arrangement reference); empty when no sublattice holds dopants.
    polarisation, strain : pandas.DataFrame
        Per-site B-cation displacement (pm) and lattice strain / rotation, with 1-sigma;
        empty when they do not apply.
    pdf : xarray.DataArray
        Vector pair distribution function (dy, dx in nm) of all fitted atoms.
    lattice : dict
        a1, a2 (nm), motif, atoms per sublattice and their mean intensity.
    summary : dict
    """

    atoms: pd.DataFrame
    sro: pd.DataFrame
    polarisation: pd.DataFrame
    strain: pd.DataFrame
    pdf: xr.DataArray
    lattice: dict[str, Any]
    summary: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    started: str
    elapsed_s: float
    timings: dict[str, float] = field(default_factory=dict)

    def maps(self) -> xr.Dataset:
        """Polarisation and strain on the site grid, and the vector PDF, as one Dataset (``result.zarr``)."""
        from ..atoms import polarisation_map, strain_map

        parts = {"vector_pdf": self.pdf.rename("vector_pdf")}
        if len(self.polarisation):
            pol = polarisation_map(self.polarisation)
            parts.update({f"polarisation_{k}": v.rename({d: f"pol_{d}" for d in v.dims})
                          for k, v in pol.data_vars.items()})
        if len(self.strain):
            st = strain_map(self.strain)
            parts.update({f"strain_{k}": v.rename({d: f"strain_{d}" for d in v.dims})
                          for k, v in st.data_vars.items()})
        ds = xr.Dataset({k: v.reset_coords(drop=True) for k, v in parts.items()})
        ds.attrs = {"title": "atomine atom analysis", "atomine_version": __version__}
        return ds

    def provenance(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        return provenance_record("atomine.workflows.atoms.analyze_atoms", self, files)

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["AtomsResult", Path], Any] | None = None) -> Path:
        """Write ``atoms.parquet`` (+ ``.csv``), ``sro.parquet``, ``polarisation.parquet``, ``strain.parquet``,
        ``result.zarr``, ``summary.json``, ``provenance.json`` and, given a writer, ``report.html``; atomically."""
        from ..io import save
        from ..io._atomic import atomic_path

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            self.atoms.to_parquet(tmp / "atoms.parquet", index=False)
            self.atoms.to_csv(tmp / "atoms.csv", index=False)
            for name in ("sro", "polarisation", "strain"):
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
            save(self.maps(), tmp / "result.zarr")
            finish_folder(tmp, self, report)
        return directory


def _classes(image, indexed: pd.DataFrame, info, subsurface: bool, dark_columns: bool, random_state):
    """(tables to concatenate, summary entries): imaged columns and, for STM, the classified hollow sites."""
    from ..atoms import column_intensity
    from ..atoms.classify import classify_host_referenced
    from ..atoms.hollow import classify_hollow_sites

    on_lattice = (indexed["sublattice"] >= 0).to_numpy()
    if subsurface:
        # the imaged atoms are the surface lattice; the dopants show at the hollows below it
        columns = indexed.assign(cls="host", p_cls=1.0, imaged=True)
        columns.loc[~on_lattice, ["cls", "p_cls"]] = ["unknown", np.nan]
        sites, details = classify_hollow_sites(image, indexed, info, random_state=random_state)
        sites = sites.assign(sublattice=int(info.n_sublattices), fit_ok=False, imaged=False)
        details["sublattice"] = int(info.n_sublattices)
        return [columns, sites], {"subsurface": details}
    # empty sites are the vacancies (found geometrically); the intensity mixture separates host and
    # dopant columns only: a vacancy component there would split a sublattice's dim tail off as "empty".
    # Columns off the lattice (unassigned) have no same-sublattice neighbours to be compared with.
    # the statistic is the disk-integrated intensity above the ring background between the columns:
    # on simulated HAADF it separates La from Sr by 9 host sd against 6 for the fitted Gaussian
    # volume, whose width and local-constant errors give the host distribution long tails
    measured = column_intensity(image, indexed.drop(columns=["intensity"]), method="disk", background="ring",
                                polarity="dark" if dark_columns else "bright")
    indexed = indexed.assign(intensity_disk=measured["intensity"].to_numpy())
    classified = classify_host_referenced(indexed, "intensity_disk", vacancy=False, random_state=random_state,
                                          sublattices=sorted(int(v) for v in np.unique(indexed["sublattice"])
                                                             if v >= 0))
    return [classified.assign(imaged=True)], {"classification": classified.attrs.get("classification", {})}


def _sro(atoms: pd.DataFrame, random_state) -> tuple[pd.DataFrame, list[str]]:
    from ..atoms import warren_cowley

    rows, skipped = [], []
    for s in sorted(int(v) for v in atoms["sublattice"].unique() if v >= 0):
        n = int(((atoms["sublattice"] == s) & (atoms["cls"] == "dopant")).sum())
        if n < _MIN_DOPANTS:
            skipped.append(f"short-range order of sublattice {s}: {n} dopant(s)")
            continue
        try:
            wc = warren_cowley(atoms, sublattice=s, random_state=random_state)
        except InputError as exc:  # e.g. a field too small for the block bootstrap
            skipped.append(f"short-range order of sublattice {s}: {exc}")
            continue
        rows.append(wc.assign(sublattice=s))
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), skipped


def _optional(fn, what: str, skipped: list[str]) -> pd.DataFrame:
    """Run an order-parameter step that may not apply (no cage geometry, too few sites)."""
    try:
        return fn()
    except InputError as exc:
        skipped.append(f"{what}: {exc}")
        return pd.DataFrame()


def _subsurface_default(image) -> bool:
    """STM images the surface; its dopants sit below the hollows (the seed case, LCMO (001))."""
    return str(image.attrs.get("signal", "")).upper() in {"STM", "TOPOGRAPHY"}


def analyze_atoms(image, separation_nm: float | None = None, *, dark_columns: bool = False,
                  noise: str | None = None, subsurface: bool | None = None, random_state=0,
                  progress: Progress | None = None) -> AtomsResult:
    """Find, fit, index, classify every atom column and measure segregation and order parameters.

    Parameters
    ----------
    image : xarray.DataArray (y, x) in nm, or 2-D array (pixel units); may be dask-backed
    separation_nm : float, optional
        Smallest separation of two columns; default from the lattice period.
    dark_columns : bool
        Columns are dark on a bright background (ABF).
    noise : {"poisson", "gaussian"}, optional
        Noise model of the Gaussian fits (Poisson: counts; gaussian: e.g. STM heights). Default:
        gaussian for STM/topography images and images without a positive mean, else Poisson.
    subsurface : bool, optional
        The dopants sit below the hollows of the imaged lattice, not on imaged columns (STM of a
        perovskite surface): the imaged atoms form the surface lattice (all ``host``), and the
        hollow sites, predicted from it, are classified by local height as one more sublattice
        (``imaged`` False). Default: True for STM/topography images, else False.
    random_state : int
        Seed of the classification mixtures and the bootstrap.
    progress : callable, optional
        ``progress(done, total, message)`` after each stage.
    """
    from ..atoms._sparse_sites import complete_sparse_sublattices
    from ..atoms import confirm_vacancies, find_vacancies, identify_sublattices, lattice_strain, locate_atoms, polarisation, vector_pdf

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    image = as_image(image, "analyze_atoms")
    timings: dict[str, float] = {}
    tick = stage_clock(progress, _STAGES, timings)

    stm = _subsurface_default(image)
    subsurface = stm if subsurface is None else bool(subsurface)
    if noise is None:
        # counts (a few negative pixels from read noise included) unless heights or a zero-mean signal
        noise = "gaussian" if stm or not bool(image.mean() > 0) else "poisson"
    t0 = time.perf_counter()
    try:
        fitted = locate_atoms(image, separation_nm, invert=dark_columns, noise=noise)
    except InputError as exc:
        if "flat" in str(exc):  # the window-size wording of the lattice-period estimate does not fit here
            raise InputError("the image is flat (blank): it has no atom columns to find") from None
        raise
    if len(fitted) < 4:
        raise InputError(f"found {len(fitted)} atom column(s); the image shows no lattice of columns (or set "
                         "separation_nm / dark_columns)")
    tick(f"{len(fitted)} columns fitted", t0)

    t0 = time.perf_counter()
    indexed, info = identify_sublattices(fitted, intensity="intensity")
    # faint sublattices the seeds only sampled (HAADF oxygen) come out of the unassigned atoms
    indexed, info, sparse = complete_sparse_sublattices(image, indexed, info, invert=dark_columns, noise=noise)
    empty = find_vacancies(indexed, info, extent=image)
    # an empty site may hold a faint column the seeds missed: refit it before calling it a vacancy
    missed, empty = confirm_vacancies(image, indexed, empty, invert=dark_columns, noise=noise)
    indexed = pd.concat([indexed, missed], ignore_index=True)
    tick(f"{len(info.counts)} sublattice(s)", t0)

    t0 = time.perf_counter()
    parts, class_info = _classes(image, indexed, info, subsurface, dark_columns, random_state)
    # a vacancy's p_cls is how clearly its site is empty (disk intensity against occupied columns)
    p_empty = empty["p_vacancy"] if "p_vacancy" in empty else pd.Series(np.nan, index=empty.index)
    # as for the mixture's classes, a call below 0.6 is "unknown" (the refit found too little for a
    # column, the disk too much for an empty site: e.g. faint oxygen at low dose)
    unsure = (p_empty < 0.6).to_numpy()
    empty = empty.drop(columns=["p_vacancy"], errors="ignore").assign(
        fit_ok=False, cls=np.where(unsure, "unknown", "vacancy"), p_cls=p_empty.to_numpy(), imaged=False)
    atoms = pd.concat(parts + ([empty] if len(empty) else []), ignore_index=True)
    tick("classes", t0)

    t0 = time.perf_counter()
    sro, skipped = _sro(atoms, random_state)
    tick("short-range order", t0)

    t0 = time.perf_counter()
    # order parameters from fitted columns on lattice sites only (unassigned atoms share site
    # indices; predicted hollow sites would only echo the lattice they were predicted from)
    on_sites = atoms[(atoms["sublattice"] >= 0) & atoms["cls"].isin(["host", "dopant"]) & atoms["imaged"]]
    pol = _optional(lambda: polarisation(on_sites), "polarisation", skipped)
    strain = _optional(lambda: lattice_strain(on_sites, sublattice=0), "strain", skipped)
    tick("order parameters", t0)

    t0 = time.perf_counter()
    nn = float(np.min(np.linalg.norm([info.a1, info.a2], axis=1)))
    pdf = vector_pdf(atoms[atoms["imaged"]], radius_nm=2.5 * nn)
    tick("vector PDF", t0)

    lattice = {"a1_nm": np.asarray(info.a1).tolist(), "a2_nm": np.asarray(info.a2).tolist(),
               "motif": np.asarray(info.motif).tolist(), "atoms_per_sublattice": np.asarray(info.counts).tolist(),
               "mean_intensity": np.asarray(info.mean_intensity).tolist(), "unassigned": int(info.n_unassigned),
               "sparse_sublattices": sparse}
    counts = atoms.groupby(["sublattice", "cls"]).size()
    summary = {"n_columns": int(len(fitted)), "fit_ok_fraction": float(fitted["fit_ok"].mean()),
               "median_pos_err_pm": float(1e3 * np.nanmedian(fitted["pos_err"])), "lattice": lattice,
               "classes": {f"{s}/{c}": int(n) for (s, c), n in counts.items()},
               "sro": sro.to_dict("records"), "skipped": skipped, "timings_s": timings}
    summary.update(class_info)
    parameters = {"separation_nm": separation_nm, "dark_columns": dark_columns, "noise": noise,
                  "subsurface": subsurface, "random_state": random_state}
    inputs = image_inputs(image)
    return AtomsResult(atoms, sro, pol, strain, pdf, lattice, summary, parameters, inputs, started,
                       time.perf_counter() - t_start, timings)


__all__ = ["AtomsResult", "analyze_atoms"]
