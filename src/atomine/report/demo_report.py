"""The demo's report: an overview, then per dataset its data on calibrated axes and each analysis' output.

Renderers are chosen by the analysis' name (``AnalysisOutput.name``); an analysis without
a renderer of its own is shown by :func:`generic_section` (its tables and 2-D maps).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import pandas as pd
import xarray as xr

from .. import __version__
from ..data import signal_kind
from ..workflows.demo import DemoResult
from ..workflows.demo_analyses import AnalysisOutput, DatasetContext, atom_tables, overview_map
from .html import Figure, Row, Section, Table, Text, write_report
from .tables import calibration_table, column_units, metadata_table, parameters_table


def plot_signal(da: xr.DataArray):
    """The standard figure of a signal by its kind, or None for layouts without one."""
    from .figures import plot_image
    from .spectral import plot_cits, plot_spectrum_image

    kind = signal_kind(da)
    if kind == "image":
        return plot_image(da)
    if kind == "spectrum_image":
        return plot_spectrum_image(da)
    if kind == "cits":
        return plot_cits(da)
    return None


def data_section(ctx: DatasetContext) -> Section:
    """Each signal on calibrated axes (next to the ground-truth positions), with its calibration and metadata."""
    from .figures import plot_atoms_overlay

    sim = ctx.simulation
    base = overview_map(sim.data)
    blocks = []
    for i, da in enumerate(sim.signals()):
        fig = plot_signal(da)
        row = [Figure(fig, caption=f"{da.name}: {da.attrs.get('signal', '')} data")] if fig is not None else \
              [Text(f"{da.name}: dims {tuple(da.dims)} have no standard figure", "note")]
        if i == 0 and base is not None:
            for name, table in atom_tables(sim.truth).items():
                row.append(Figure(plot_atoms_overlay(base, table, title=f"ground truth '{name}' over {da.name}"),
                                  caption=f"ground-truth positions from table '{name}'"))
        blocks.append(Section(f"{da.name} ({da.attrs.get('signal', '')}, {signal_kind(da)})", [
            Row(row),
            Row([Table(calibration_table(da), caption="calibration: physical = offset + index * scale"),
                 Table(metadata_table(da), caption="metadata")]),
        ]))
    return Section("Data, calibration and metadata", blocks)


def _map_figures(maps: dict[str, xr.DataArray], what: str) -> list[Figure]:
    """Flat (y, x) maps in one panel figure, component stacks as grids, curves and profiles as line plots."""
    from .figures import plot_curves, plot_image_grid, plot_maps, plot_profiles

    flat, figures, profiles = [], [], []
    for name, m in maps.items():
        m = m.rename(name.removeprefix("truth_"))
        spatial = {"y", "x"} <= set(m.dims)
        if spatial and m.ndim == 2:
            flat.append(m.transpose("y", "x"))
        elif spatial and m.ndim == 3:
            other = next(d for d in m.dims if d not in ("y", "x"))
            figures.append(Figure(plot_image_grid(m.transpose("y", "x", other), other, title=f"{what} '{m.name}'"),
                                  caption=f"{what} '{m.name}' per {other}"))
        elif not spatial and m.ndim == 2:
            figures.append(Figure(plot_curves(m, title=f"{what} '{m.name}'"), caption=f"{what} '{m.name}'"))
        elif m.ndim == 1:
            profiles.append(m)
    if flat:
        figures.insert(0, Figure(plot_maps(flat, title=f"{what} maps"),
                                 caption=f"per-pixel {what}: " + ", ".join(str(m.name) for m in flat)))
    if profiles:
        figures.append(Figure(plot_profiles(profiles, title=f"{what} profiles"),
                              caption=f"{what} along one axis: " + ", ".join(str(p.name) for p in profiles)))
    return figures


def truth_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """What the simulator put in: parameters, tables (e.g. atoms), maps and per-component curves."""
    truth = ctx.simulation.truth
    blocks: list = [Table(parameters_table(truth.parameters), caption=f"simulation parameters (seed {ctx.seed})")]
    for name, t in truth.tables.items():
        blocks.append(Table(t, caption=f"table '{name}': {len(t)} rows", units=column_units(t), max_rows=12))
    figures = _map_figures(output.maps, "ground truth")
    if figures:
        blocks.append(Row(figures))
    left = [f"{name} {tuple(m.dims)}" for name, m in truth.maps.data_vars.items() if f"truth_{name}" not in output.maps]
    if left:
        blocks.append(Text("also in the truth folder, not drawn: " + ", ".join(left), "note"))
    return Section(output.title, blocks)


def statistics_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Sampling and value statistics, one row per signal; truth-table counts per sublattice and class."""
    blocks: list = [Table(output.tables["signal_statistics"], caption="sampling and value statistics, one row per signal")]
    for name in atom_tables(ctx.simulation.truth):
        counts = output.tables.get(f"truth_{name}_counts")
        if counts is not None:
            by = [c for c in counts.columns if c != "count"]
            blocks.append(Table(counts, caption=f"truth table '{name}': rows per {' and '.join(by)}"))
    return Section(output.title, blocks)


def generic_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Any analysis without its own renderer: its tables and maps."""
    blocks: list = [Table(t, caption=name, units=column_units(t), max_rows=12) for name, t in output.tables.items()]
    figures = _map_figures(output.maps, output.title)
    if figures:
        blocks.append(Row(figures))
    return Section(output.title, blocks or [Text("no tables or maps", "note")])


def segmentation_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Phase, abundance, defect and order-parameter maps next to the ground truth, with the scores."""
    from .segment_report import segment_sections

    result = output.extra.get("segment_result")
    if result is None:  # e.g. an output read back without its result object: show what there is
        return generic_section(ctx, output)
    return Section(output.title, segment_sections(result, ctx.simulation.data, truth=ctx.simulation))


def atoms_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Atom columns, vector PDF, short-range order and order parameters next to the true columns, with the scores."""
    from .atoms_report import atoms_sections

    result = output.extra.get("result")
    if result is None:  # e.g. an output read back without its result object: show what there is
        return generic_section(ctx, output)
    return Section(output.title, atoms_sections(result, ctx.simulation.data, truth=ctx.simulation))


def unmix_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Component spectra and abundance maps next to the true ones, with the acceptance scores."""
    from .unmix_report import unmix_sections

    result = output.extra.get("unmix_result")
    if result is None:  # e.g. an output read back without its result object: show what there is
        return generic_section(ctx, output)
    return Section(output.title, unmix_sections(result, truth=ctx.simulation))


def thermo_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Interactions learned from a simulated occupancy next to the true ones, with what they predict."""
    from .thermo_report import thermo_sections

    result = output.extra.get("thermo_result")
    if result is None:  # e.g. an output read back without its result object: show what there is
        return generic_section(ctx, output)
    return Section(output.title, thermo_sections(result, truth=output.extra.get("thermo_truth")))


def correlation_section(ctx: DatasetContext, output: AnalysisOutput) -> Section:
    """Registration, ranked structure-property links and the top links' maps, against the simulator's truth."""
    from .correlate_report import correlate_sections

    result = output.extra.get("correlate_result")
    if result is None:  # e.g. an output read back without its result object: show what there is
        return generic_section(ctx, output)
    return Section(output.title, correlate_sections(result, truth=output.extra.get("correlate_truth")))


Renderer = Callable[[DatasetContext, AnalysisOutput], Section]
RENDERERS: dict[str, Renderer] = {"truth_analysis": truth_section, "statistics_analysis": statistics_section,
                                  "segmentation_analysis": segmentation_section, "atoms_analysis": atoms_section,
                                  "unmix_analysis": unmix_section, "thermo_analysis": thermo_section,
                                  "correlation_analysis": correlation_section}


def dataset_section(ctx: DatasetContext, outputs: list[AnalysisOutput]) -> Section:
    """One dataset's section: its data, then each analysis' section (by its renderer)."""
    parts = [data_section(ctx)]
    parts += [RENDERERS.get(o.name, generic_section)(ctx, o) for o in outputs]
    return Section(f"{ctx.kind}: {ctx.description}", parts, anchor=ctx.kind)


Progress = Callable[[int, int, str], None]


def demo_sections(result: DemoResult, progress: Progress | None = None, workers: int | None = None) -> list[Section]:
    """An overview section, then one section per dataset: its data, then each analysis' section.

    Rendering the figures is most of the demo's time, so datasets are drawn in ``workers``
    processes (default: one per CPU, at most one per dataset; 1 draws here). ``progress``
    is called as ``progress(done, total, message)`` after each dataset.
    """
    rows = []
    for run in result.datasets:
        da = run.simulation.data
        rows.append({"dataset": run.kind, "description": run.description, "signal": da.attrs.get("signal", ""),
                     "dims": ", ".join(map(str, da.dims)), "shape": " x ".join(map(str, da.shape)),
                     "simultaneous": ", ".join(run.simulation.extra) or "-"})
    overview = Section("Overview", [
        Text(f"{len(result.datasets)} simulated datasets (seed {result.seed}), generated by atomine {__version__} "
             f"in {result.elapsed_s:.1f} s. Each dataset below shows the data on calibrated axes with their "
             "calibration and metadata, the ground truth the simulator put in, and every analysis that "
             "exists so far compared with that truth."),
        Table(pd.DataFrame(rows), caption="datasets"),
    ])
    jobs = [(DatasetContext(run.kind, run.description, result.seed, run.simulation), run.outputs)
            for run in result.datasets]
    n = len(jobs)
    workers = min(os.cpu_count() or 1, n) if workers is None else max(1, min(int(workers), n))
    per_dataset: list[Section] = []
    if workers <= 1:
        for i, (ctx, outputs) in enumerate(jobs):
            per_dataset.append(dataset_section(ctx, outputs))
            if progress is not None:
                progress(i + 1, n, f"drew {ctx.kind}")
    else:
        # 'spawn': workers start clean (no copied dask/numba thread state from this process).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(dataset_section, ctx, outputs) for ctx, outputs in jobs]
            for i, (future, (ctx, _)) in enumerate(zip(futures, jobs)):
                per_dataset.append(future.result())
                if progress is not None:
                    progress(i + 1, n, f"drew {ctx.kind}")
    return [overview, *per_dataset]


def write_demo_report(result: DemoResult, path: str | os.PathLike, *, overwrite: bool = False,
                      progress: Progress | None = None, workers: int | None = None) -> Path:
    """Write the demo's self-contained ``report.html`` (figures embedded) to ``path``."""
    return write_report(path, "atomine demo", demo_sections(result, progress, workers),
                        subtitle=f"simulated datasets with ground truth, seed {result.seed}",
                        footer=f"atomine {__version__}; provenance in provenance.json", overwrite=overwrite)
