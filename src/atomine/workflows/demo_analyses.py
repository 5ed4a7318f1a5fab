"""Analyses of the demo: each turns one simulated dataset into maps, tables and summary numbers.

An analysis function takes a :class:`DatasetContext` and returns an :class:`AnalysisOutput`
(or ``None`` when it does not apply). It computes; it never draws. The report layer
(:mod:`atomine.report.demo_report`) renders each output by the analysis' name, so a
later analysis joins the demo by appending its function to ``DATASET_ANALYSES`` here and
its renderer there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..data import Simulation, axis_scale, axis_units, signal_kind, value_statistics
from .atoms_truth import atom_scores


@dataclass
class DatasetContext:
    """What an analysis sees: the dataset's name, description, seed and simulation."""

    kind: str
    description: str
    seed: int
    simulation: Simulation


@dataclass
class AnalysisOutput:
    """What one analysis made of one dataset.

    ``maps`` are DataArrays on the dataset's grid (saved in ``result.zarr``), ``tables``
    DataFrames (saved as Parquet), ``summary`` JSON-able numbers (``summary.json``).
    ``name`` is the analysis function's name, set by the runner; the report picks its
    renderer by it. ``extra`` holds anything else its renderer needs (e.g. a workflow's
    result object); it is not saved, and must pickle (the report draws in worker processes).
    """

    title: str
    maps: dict[str, xr.DataArray] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def overview_map(da: xr.DataArray) -> xr.DataArray | None:
    """A 2-D (y, x) view of a signal: an image itself, a spectrum image summed over energy, a CITS grid's bias mean."""
    kind = signal_kind(da)
    if kind == "image":
        return da
    if kind in ("spectrum_image", "cits"):
        dim = da.dims[2]
        m = da.sum(dim) if kind == "spectrum_image" else da.mean(dim)
        how = "summed over energy" if kind == "spectrum_image" else "mean over bias"
        m.attrs = {"signal": f"{da.attrs.get('signal', da.name)} {how}", "units": da.attrs.get("units", "")}
        return m.rename(str(da.name))
    return None


def atom_tables(truth) -> dict[str, pd.DataFrame]:
    """Truth tables that hold positions (``x``, ``y`` columns)."""
    return {name: t for name, t in truth.tables.items() if isinstance(t, pd.DataFrame) and {"x", "y"} <= set(t.columns)}


def on_data_grid(m: xr.DataArray, data: xr.DataArray) -> xr.DataArray:
    """Give a truth map the data's y/x coordinates when it has the dims but not the coordinates."""
    for d in ("y", "x"):
        if d in m.dims and d not in m.coords and d in data.coords and m.sizes[d] == data.sizes[d]:
            m = m.assign_coords({d: data.coords[d]})
    return m


# A third axis longer than this is spectral (a noiseless cube), not a handful of components.
MAX_PANELS = 12


def is_cube(m: xr.DataArray) -> bool:
    """A per-pixel stack too long to draw as panels (e.g. noiseless spectra): kept in the truth folder only."""
    spatial = {"y", "x"} <= set(m.dims)
    if spatial and m.ndim == 3:
        return m.sizes[next(d for d in m.dims if d not in ("y", "x"))] > MAX_PANELS
    return m.ndim > 3 or (spatial and m.ndim > 2)


def truth_analysis(ctx: DatasetContext) -> AnalysisOutput:
    """What the simulator put in: its tables, and its maps on the data's grid (cubes stay in the truth folder)."""
    truth = ctx.simulation.truth
    maps = {}
    for name, m in truth.maps.data_vars.items():
        m = on_data_grid(m, ctx.simulation.data).rename(str(name))
        if not is_cube(m):
            maps[f"truth_{name}"] = m
    tables = {f"truth_{name}": t for name, t in truth.tables.items()}
    return AnalysisOutput("Ground truth", maps=maps, tables=tables)


def _signal_stats(da: xr.DataArray) -> dict[str, Any]:
    row: dict[str, Any] = {"signal": str(da.name), "kind": signal_kind(da)}
    for d in da.dims:
        if d in da.coords:
            row[f"{d} step ({axis_units(da, d)})"] = axis_scale(da, d)
            row[f"{d} span ({axis_units(da, d)})"] = float(abs(axis_scale(da, d)) * da.sizes[d])
    units = da.attrs.get("units", "")
    row.update({f"{k} ({units})" if units else k: v for k, v in value_statistics(da).items()})
    return row


def statistics_analysis(ctx: DatasetContext) -> AnalysisOutput:
    """Field of view, sampling and value statistics of each signal; row counts of the truth tables."""
    rows = [_signal_stats(da) for da in ctx.simulation.signals()]
    tables = {"signal_statistics": pd.DataFrame(rows)}
    summary: dict[str, Any] = {"signals": {r["signal"]: {k: v for k, v in r.items() if k != "signal"} for r in rows}}
    counts = {}
    for name, t in atom_tables(ctx.simulation.truth).items():
        by = [c for c in ("sublattice", "cls") if c in t.columns]
        counts[name] = {"rows": int(len(t))}
        if by:
            sizes = t.groupby(by, dropna=False).size()
            tables[f"truth_{name}_counts"] = sizes.rename("count").reset_index()
            counts[name].update({" / ".join(map(str, np.atleast_1d(k))): int(v) for k, v in sizes.items()})
    summary["truth_counts"] = counts
    return AnalysisOutput("Statistics", tables=tables, summary=summary)


# Segmentation runs on the STEM presets built for it only: the others would add time, not insight.
SEGMENTATION_PRESETS = ("haadf-phases", "haadf-grains", "haadf-dislocation")
_SEGMENT_SUMMARY = ("window_px", "step_px", "lattice_window_px", "k_max", "k_units", "method", "n_components",
                    "n_components_chosen", "phase_window_fraction", "defect_window_fraction", "defect_counts",
                    "lattice", "timings_s")


def segmentation_analysis(ctx: DatasetContext) -> AnalysisOutput | None:
    """Sliding-FFT phase, defect and order-parameter maps (:func:`~atomine.workflows.segment.segment_phases`),
    scored against the simulation's truth; None for datasets other than ``SEGMENTATION_PRESETS``."""
    if ctx.kind not in SEGMENTATION_PRESETS:
        return None
    from .segment import segment_phases
    from .segment_truth import segmentation_scores

    result = segment_phases(ctx.simulation.data, random_state=ctx.seed)
    maps = {f"segment_{name}": result.maps[name] for name in ("phase", "abundance", "defect", "rotation", "strain")}
    summary = {k: result.summary[k] for k in _SEGMENT_SUMMARY if k in result.summary}
    summary["scores"] = segmentation_scores(result, ctx.simulation)
    return AnalysisOutput("Phase segmentation", maps=maps, tables={"defects": result.defects},
                          summary={"segmentation": summary}, extra={"segment_result": result})


DATASET_ANALYSES = [truth_analysis, statistics_analysis, segmentation_analysis]


# Atom analysis runs on the column-resolved STEM presets and the atomically resolved STM topograph
# (the seed case: surface oxygen, dopants below the hollows); the others have no atom columns to fit.
ATOM_PRESETS = ("haadf-perovskite", "abf-perovskite", "haadf-polar", "haadf-mos2", "stm-lcmo")


def atoms_analysis(ctx: DatasetContext) -> AnalysisOutput | None:
    """Atom columns, sublattices, classes, short-range order and order parameters
    (:func:`~atomine.workflows.atoms.analyze_atoms`), scored against the simulation's atom table;
    None for datasets other than ``ATOM_PRESETS``."""
    if ctx.kind not in ATOM_PRESETS:
        return None
    from .atoms import analyze_atoms

    dark = ctx.simulation.data.attrs.get("signal") in ("ABF", "BF")  # bright-field columns are dips
    result = analyze_atoms(ctx.simulation.data, dark_columns=dark, random_state=ctx.seed)
    summary = {k: result.summary[k] for k in ("n_columns", "fit_ok_fraction", "median_pos_err_pm", "lattice",
                                              "classes", "skipped", "timings_s")}
    summary["scores"] = atom_scores(result, ctx.simulation)
    return AnalysisOutput("Atom columns", tables={"atoms": result.atoms, "sro": result.sro},
                          summary={"atoms": summary}, extra={"result": result})


DATASET_ANALYSES.append(atoms_analysis)


# Spectral unmixing runs on the presets built for it: every pixel a convex mixture of three pure responses.
UNMIX_PRESETS = ("eels-si-mixed", "cits-grid-mixed")
_UNMIX_SUMMARY = ("kind", "method", "n_components", "n_components_chosen", "n_components_criterion",
                  "preprocessing", "lack_of_fit_percent", "residual_rms_median", "residual_units", "skipped",
                  "timings_s")


def unmix_analysis(ctx: DatasetContext) -> AnalysisOutput | None:
    """Pure spectra and abundance maps (:func:`~atomine.workflows.unmix.unmix_spectra`, N-FINDR + FCLS, the
    number of components chosen from the data), scored against the simulation's truth; None for datasets
    other than ``UNMIX_PRESETS``."""
    if ctx.kind not in UNMIX_PRESETS:
        return None
    from .unmix import unmix_spectra
    from .unmix_truth import unmix_scores

    result = unmix_spectra(ctx.simulation.data, method="fcls", random_state=ctx.seed)
    # a dim of its own: the truth's "component" axis (phase names) is another labelling of the same phases
    abundance = result.maps["abundance"].drop_vars(["component", "component_name"]).rename(
        component="unmix_component")
    maps = {"unmix_abundance": abundance, "unmix_residual": result.maps["residual"]}
    summary = {k: result.summary[k] for k in _UNMIX_SUMMARY if k in result.summary}
    summary["scores"] = unmix_scores(result, ctx.simulation)
    tables = {"unmix_annotations": result.annotations} if len(result.annotations) else {}
    return AnalysisOutput("Spectral unmixing", maps=maps, tables=tables, summary={"unmixing": summary},
                          extra={"unmix_result": result})


DATASET_ANALYSES.append(unmix_analysis)


# Thermodynamics runs end to end on the LCMO topograph whose Ca were drawn from a known lattice model (the seed
# case: Ca segregation in La(5/8)Ca(3/8)MnO3): image -> atom columns and classified A sites -> interactions,
# set beside the couplings the simulator used.
THERMO_PRESETS = ("stm-lcmo-correlated",)
THERMO_BOOTSTRAP = 20  # replicas: keeps the demo's added time near half a minute (50 is the default)


def thermo_analysis(ctx: DatasetContext) -> AnalysisOutput | None:
    """Effective interactions learned from the image's classified dopant sites
    (:func:`~atomine.workflows.atoms.analyze_atoms`, then
    :func:`~atomine.workflows.thermo.learn_thermodynamics`), with z-scores against the simulator's
    lattice model; None for datasets other than ``THERMO_PRESETS``."""
    if ctx.kind not in THERMO_PRESETS:
        return None
    from .atoms import analyze_atoms
    from .thermo import learn_thermodynamics

    atoms = analyze_atoms(ctx.simulation.data, random_state=ctx.seed)
    result = learn_thermodynamics(atoms.atoms, bootstrap=THERMO_BOOTSTRAP, seed=ctx.seed)
    model = ctx.simulation.truth.parameters.get("lattice_model", {})
    truth = dict(zip(model.get("names", []), model.get("couplings", [])))
    params = result.summary["parameters"]
    z = {k: (params[k]["value"] - v) / params[k]["stderr"] for k, v in truth.items()
         if k in params and params[k]["stderr"]}
    summary = {k: result.summary[k] for k in ("model", "parameters", "chi2_per_dof", "n_eff", "transition", "reason")}
    summary.update(truth=model, z_scores=z, timings_s=result.timings,
                   atoms_timings_s=atoms.summary.get("timings_s"))
    tables = {"thermo_atoms": atoms.atoms, "thermo_candidates": result.candidates(),
              "thermo_histograms": result.histograms()}
    if len(result.scan):
        tables["thermo_scan"] = result.scan
    return AnalysisOutput("Thermodynamics from the image's dopant sites", tables=tables, summary={"thermo": summary},
                          extra={"thermo_result": result, "thermo_truth": truth})


DATASET_ANALYSES.append(thermo_analysis)


# Correlation runs end to end on the simulated HAADF + EELS pair (the seed case: structure-property mining from
# registered spectral and structural data): image -> atom columns; SI -> unmixing; ADF -> registration; mining,
# graded against the simulator's transform and drivers.
CORRELATE_PRESETS = ("pair-haadf-eels",)


def correlation_analysis(ctx: DatasetContext) -> AnalysisOutput | None:
    """Structure-property links of the HAADF image and the EELS SI
    (:func:`~atomine.workflows.correlate.correlate`: atoms, unmixing, registration, mining), with the
    registration error and the true drivers' ranks; None for datasets other than ``CORRELATE_PRESETS``."""
    if ctx.kind not in CORRELATE_PRESETS:
        return None
    from .correlate import correlate
    from .correlate_truth import correlate_scores

    sim = ctx.simulation
    spectra = xr.Dataset({"EELS": sim.data, "ADF": sim.extra["ADF"]})
    result = correlate(sim.extra["HAADF"], spectra, random_state=ctx.seed)
    truth = {k: sim.truth.parameters.get(k) for k in ("transform", "drivers", "coefficients", "intercept")}
    summary = {k: result.summary.get(k) for k in ("registration", "n_structure", "n_property", "n_significant",
                                                   "fdr", "top_links", "cca", "multivariate_cv_r2", "notes",
                                                   "q_floor", "n_permutations", "method")}
    summary.update(scores=correlate_scores(result, truth), timings_s=result.timings)
    # the descriptor maps share the SI's grid: they go into result.zarr beside the data and the truth
    grid = {d: sim.data.coords[d] for d in ("y", "x")}
    maps = {f"correlate_{name}": da.transpose("y", "x").assign_coords(grid)
            for name, da in result.maps().data_vars.items()
            if set(da.dims) == {"y", "x"} and all(da.sizes[d] == sim.data.sizes[d] for d in grid)}
    return AnalysisOutput("Structure-property correlation", maps=maps, tables={"correlate_links": result.links},
                          summary={"correlation": summary}, extra={"correlate_result": result, "correlate_truth": truth})


DATASET_ANALYSES.append(correlation_analysis)
