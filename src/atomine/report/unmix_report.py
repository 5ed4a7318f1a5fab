"""Report of a spectral unmixing: component spectra with what they contain, abundance maps on one
0..1 scale, residual and preprocessing maps, uncertainty (Bayesian), the annotation table, the
preprocessing and the choice of the number of components; with a simulation, the truth beside
them and the acceptance scores.

``unmix_sections(result, truth)`` turns an :class:`~atomine.workflows.unmix.UnmixResult` into
report sections; ``write_unmix_report`` writes them as one self-contained ``report.html``.
Figures are small (a few panels at 96 dpi): the whole page stays well under 1 MB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..errors import OutputExistsError
from ._draw import add_scale_bar, axis_label, extent, new_figure
from .html import Figure, Row, Section, Table, Text, write_report

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def _map_panel(fig, ax, da: xr.DataArray, *, title: str, label: str, cmap: str = "viridis",
               limits: tuple[float, float] | None = None):
    values = np.asarray(da.transpose("y", "x").values, dtype=np.float64)
    if limits is None:
        finite = values[np.isfinite(values)]
        limits = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) if finite.size else (0.0, 1.0)
        if limits[1] <= limits[0]:
            limits = (limits[0], limits[0] + 1.0)
    im = ax.imshow(values, extent=extent(da), origin="upper", cmap=cmap, vmin=limits[0], vmax=limits[1],
                   interpolation="nearest")
    ax.set_xlabel(axis_label(da, "x"))
    ax.set_ylabel(axis_label(da, "y"))
    ax.set_aspect("equal")
    ax.set_title(title, fontsize="medium")
    fig.colorbar(im, ax=ax, shrink=0.8).set_label(label)
    add_scale_bar(ax, da)
    return im


def _maps_figure(panels: list[tuple[xr.DataArray, str, str, tuple | None, str]], ncols: int = 4) -> Figure:
    """(map, title, colour-bar label, limits, cmap) panels in rows of ``ncols``."""
    n = len(panels)
    cols = min(ncols, n)
    rows = -(-n // cols)
    fig = new_figure(3.3 * cols, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (da, title, label, limits, cmap) in zip(axes, panels):
        _map_panel(fig, ax, da, title=title, label=label, cmap=cmap, limits=limits)
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig


def _mark_features(ax, table: pd.DataFrame, component: int, kind: str, color: str) -> None:
    """Edges (EELS), X-ray lines (EDS) or gap and resonances (CITS) of one component as vertical lines with names."""
    if table is None or not len(table) or "component" not in table:
        return
    rows = table[table["component"] == component]
    top = ax.get_ylim()[1]
    for _, row in rows.iterrows():
        if kind == "cits":
            if row.get("feature") == "gap" and np.isfinite(row.get("low_v", np.nan)) and np.isfinite(row.get("high_v", np.nan)):
                ax.axvspan(row["low_v"], row["high_v"], color=color, alpha=0.12)
                ax.text(row["position_v"], top, f"gap {row['width_v']:.2f} V", ha="center", va="top", fontsize=7)
            elif row.get("feature") == "resonance" and np.isfinite(row.get("position_v", np.nan)):
                ax.axvline(row["position_v"], color=color, lw=0.8, ls="--")
                ax.text(row["position_v"], top, f"{row['position_v']:+.2f} V", rotation=90, ha="right", va="top",
                        fontsize=7)
        else:
            # EELS rows give the measured onset (eV); EDS rows the line centroid in keV on the workflow's eV axis
            onset = row.get("measured_onset_ev", 1000.0 * row.get("measured_keV", np.nan))
            if not np.isfinite(onset):
                continue
            name = row.get("lines") if isinstance(row.get("lines"), str) else (
                f"{row.get('element')} {row.get('edge')}" if isinstance(row.get("element"), str) else f"{onset:.0f} eV")
            ax.axvline(onset, color="0.35", lw=0.7, ls="--")
            ax.text(onset, top, f" {name}", rotation=90, ha="left", va="top", fontsize=7)


def _spectra_figure(result, truth_spectra: np.ndarray | None, match: dict[int, int]) -> Figure:
    maps = result.maps
    kind = result.summary["kind"]
    dim = "bias" if kind == "cits" else "energy"
    E = maps["endmember"]
    k = E.sizes["component"]
    names = result.component_names
    fig = new_figure(4.2 * min(k, 3), 2.9 * -(-k // 3))
    axes = np.atleast_1d(fig.subplots(-(-k // 3), min(k, 3))).ravel()
    x = maps[dim].values
    units = str(E.attrs.get("units", ""))
    for i, ax in enumerate(axes):
        if i >= k:
            ax.set_axis_off()
            continue
        y = E.isel(component=i).values
        ax.plot(x, y, color=_color(i), lw=1.1, label="recovered")
        if "endmember_lo" in maps:
            ax.fill_between(x, maps["endmember_lo"].isel(component=i).values,
                            maps["endmember_hi"].isel(component=i).values, color=_color(i), alpha=0.25, lw=0,
                            label="95 % interval")
        if truth_spectra is not None and i in match:
            t = truth_spectra[match[i]]
            scale = float(np.dot(y, t) / max(np.dot(t, t), 1e-300))  # the truth at the recovered scale
            ax.plot(x, scale * t, color="k", lw=0.8, ls=":", label="truth (scaled)")
        ax.axhline(0.0, color="0.6", lw=0.5)
        ax.margins(x=0)
        ax.set_xlabel(axis_label(maps, dim))
        ax.set_ylabel(f"{'dI/dV' if kind == 'cits' else 'intensity'} ({units})")
        ax.set_title(names[i], fontsize="medium")
        _mark_features(ax, result.annotations, i, kind, _color(i))
        ax.legend(fontsize=7, loc="best")
    return fig


def _truth_spectra(result, truth) -> tuple[np.ndarray | None, dict[int, int], dict | None]:
    if truth is None:
        return None, {}, None
    from ..workflows.unmix_truth import truth_spectra, unmix_scores

    scores = unmix_scores(result, truth)
    T = truth_spectra(result, truth)[0]
    names = [str(c) for c in truth.truth.maps["component"].values]
    match = {m["component"]: names.index(str(m["true"])) if str(m["true"]) in names else int(m["true"])
             for m in scores["matches"]}
    return T, match, scores


def _abundance_section(result, truth, match: dict[int, int]) -> Section:
    maps = result.maps
    names = result.component_names
    panels = [(maps["abundance"].isel(component=i), f"{names[i]}", "abundance (1)", (0.0, 1.0), "viridis")
              for i in range(maps.sizes["component"])]
    blocks: list = [Figure(_maps_figure(panels), caption="abundance of each component; one colour scale, 0 to 1, "
                                                         "for all")]
    if truth is not None and match:
        key = "current_weights" if result.summary["kind"] == "cits" else "abundances"
        t = truth.truth.maps[key]
        for d in ("y", "x"):
            if d not in t.coords:
                t = t.assign_coords({d: maps[d].values})
        tnames = [str(c) for c in t["component"].values]
        tpanels = [(t.isel(component=match[i]).transpose("y", "x"), f"truth: {tnames[match[i]]}", "abundance (1)",
                    (0.0, 1.0), "viridis") for i in sorted(match)]
        blocks.append(Figure(_maps_figure(tpanels), caption=f"ground truth ('{key}') in the same order and scale, "
                                                            "matched by spectral angle"))
    if "abundance_lo" in maps:
        width = maps["abundance_hi"] - maps["abundance_lo"]
        upanels = [(width.isel(component=i), f"{names[i]}: 95 % width", "width (1)", None, "magma")
                   for i in range(maps.sizes["component"])]
        blocks.append(Figure(_maps_figure(upanels), caption="uncertainty: width of the 95 % credible interval of "
                                                            "each abundance (Bayesian unmixing)"))
    return Section("Abundance maps", blocks)


def _residual_section(result) -> Section:
    maps = result.maps
    units = str(maps["residual"].attrs.get("units", ""))
    panels = [(maps["residual"], "residual (RMS over channels)", f"RMS ({units})", None, "magma")]
    for name, title in (("background_chi2_red", "background fit: reduced chi-square"),
                        ("background_r", "background exponent r"), ("t_over_lambda", "t/lambda"),
                        ("zlp_shift", "zero-loss shift")):
        if name in maps:
            u = str(maps[name].attrs.get("units", ""))
            panels.append((maps[name], title, f"{name} ({u})" if u and u != "1" else name, None, "cividis"))
    return Section("Residual and preprocessing maps", [Figure(_maps_figure(panels), caption=(
        "residual: RMS over channels of data minus the unmixed model, in the data's units; for Poisson counts it "
        "should sit near sqrt(counts) everywhere, and a patch above it holds a spectrum no component explains"))])


def _k_figure(crit: dict) -> Figure | None:
    if "heldout_error" not in crit:
        return None
    fig = new_figure(4.2, 3.0)
    ax = fig.add_subplot()
    ax.semilogy(crit["k"], crit["heldout_error"], "o-", color="#1f77b4")
    ax.set_xlabel("number of components k")
    ax.set_ylabel("held-out error (relative)")
    ax.set_title("bi-cross-validation", fontsize="medium")
    return fig


def _preprocessing_section(result) -> Section:
    s = result.summary
    rows = [("kind", s["kind"]), ("signal", s["signal"]), ("method", s["method"]),
            ("components", s["n_components"]), ("number of components chosen by", s["n_components_chosen"])]
    for key, value in s["preprocessing"].items():
        if key == "kind":
            continue
        if isinstance(value, dict):
            rows += [(f"{key}: {k}", json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in value.items()]
        else:
            rows.append((key, value))
    rows += [(f"unmixing: {k}", v) for k, v in s.get("unmixing", {}).items()]
    rows += [("lack of fit (%)", f"{s['lack_of_fit_percent']:.3f}"),
             (f"median residual RMS ({s['residual_units']})", f"{s['residual_rms_median']:.4g}"),
             ("abundance sum range", ", ".join(f"{v:.4f}" for v in s["abundance_sum_range"])),
             ("total time (s)", f"{result.elapsed_s:.2f}")]
    rows += [("reference", n) for n in s.get("references", {}).get("notes", [])]
    rows += [("skipped", v) for v in s.get("skipped", [])]
    table = pd.DataFrame([(k, str(v)) for k, v in rows], columns=["quantity", "value"])
    blocks: list = [Table(table, caption="preprocessing, choice of K, method and fit", max_rows=80)]
    fig = _k_figure(s["n_components_criterion"])
    if fig is not None:
        blocks = [Row([blocks[0], Figure(fig, caption=s["n_components_criterion"]["criterion"])])]
    return Section("Preprocessing and number of components", blocks)


def score_table(scores: dict) -> pd.DataFrame:
    """(score, value, target) rows of :func:`~atomine.workflows.unmix_truth.unmix_scores`."""
    t = scores["targets"]
    rows = [("abundance RMSE", f"{scores['abundance_rmse']:.4f}", f"<= {t['abundance_rmse']}")]
    for m, raw in zip(scores["matches"], scores["angle_raw_deg"]):
        rows.append((f"spectral angle, component {m['component'] + 1} -> {m['true']} (deg)",
                     f"{m['angle_deg']:.2f} ({scores['angle_raw_is']}: {raw:.2f})", f"<= {t['angle_deg']}"))
    rows.append(("smallest endmember value", f"{scores['endmember_min']:.4g}", ">= 0"))
    if "coverage" in scores:
        rows.append(("95 % interval coverage of the true abundances", f"{scores['coverage']:.3f}",
                     f"{t['coverage'][0]}-{t['coverage'][1]}"))
    rows.append(("components recovered / true", f"{scores['n_components']} / {scores['n_components_true']}", "equal"))
    rows.append(("all targets met", "yes" if scores["passed"] else "no", ""))
    return pd.DataFrame(rows, columns=["score", "value", "target"])


def unmix_sections(result, truth=None) -> list[Section]:
    """Report sections of an unmixing: scores (with a simulation), spectra, abundances, residual, annotations,
    preprocessing.

    Parameters
    ----------
    result : atomine.workflows.unmix.UnmixResult
    truth : atomine.data.Simulation, optional
        The simulation the data came from: adds the true spectra (scaled) and abundance maps next to
        the recovered ones, and the acceptance scores.
    """
    T, match, scores = _truth_spectra(result, truth)
    kind = result.summary["kind"]
    what = {"cits": "gap (shaded) and resonances (dashed)", "eds": "X-ray lines (dashed: measured centroid)"}.get(
        kind, "edges (dashed: measured onset)")
    spectra = Section("Component spectra", [Figure(_spectra_figure(result, T, match), caption=(
        f"pure spectra on the physical axis with their {what}" +
        ("; EELS: each spectrum's own power-law background removed with the pixels' window" if
         "endmember_counts" in result.maps else "") + ("; dotted: ground truth, processed the same way" if
                                                       T is not None else "")))])
    ann = result.annotations
    ann_blocks = [Table(ann, caption="what each component contains", max_rows=40)] if len(ann) else \
        [Text("no annotations: " + ("; ".join(result.summary.get("skipped", [])) or "none found"), "note")]
    sections = [spectra, _abundance_section(result, truth, match), _residual_section(result),
                Section("Component annotations", ann_blocks), _preprocessing_section(result)]
    if scores is not None:
        sections.insert(0, Section("Ground-truth scores", [Table(score_table(scores), caption=(
            "against the simulation: components matched to the truth by the Hungarian assignment on spectral angle"
        ))]))
    return sections


def write_unmix_report(result, path: str | os.PathLike, truth=None, *, overwrite: bool = False) -> Path:
    """Write the unmixing's self-contained ``report.html`` (figures embedded) to ``path``."""
    if Path(path).exists() and not overwrite:  # refuse before the drawing, not after
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    s = result.summary
    shape = " x ".join(str(result.maps.sizes[d]) for d in ("y", "x"))
    return write_report(path, "atomine spectral unmixing", unmix_sections(result, truth),
                        subtitle=f"{s['signal'] or s['kind']}: {shape} px, {s['n_components']} component(s) by "
                                 f"{s['method']}",
                        footer=f"atomine {__version__}; parameters and inputs in provenance.json",
                        overwrite=overwrite)


__all__ = ["score_table", "unmix_sections", "write_unmix_report"]
