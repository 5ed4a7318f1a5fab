"""Report of the atom-column analysis: columns by sublattice and class, vector PDF, short-range order,
polarisation and strain maps, summary; with a simulation, the ground truth next to them and the scores.

``atoms_sections(result, image, truth)`` turns an :class:`~atomine.workflows.atoms.AtomsResult` into
report sections; ``write_atoms_report`` writes them as one self-contained ``report.html``.
Per-site quantities (polarisation, strain) are drawn as coloured markers at the sites' positions in
nm, so every map shares the image's calibrated axes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import LogNorm

from .. import __version__
from ..data import axis_units
from ..errors import OutputExistsError
from ._draw import draw_image, extent, new_figure
from .html import Figure, Row, Section, Table, Text, write_report

_ARROW_PM_PER_NM = 50.0  # a 20 pm displacement is drawn 0.4 nm long (about one perovskite cell)
_STRAIN = (("rotation", "rotation (ccw +)", "deg", 1.0), ("exx", "strain exx", "%", 100.0),
           ("eyy", "strain eyy", "%", 100.0), ("exy", "strain exy", "%", 100.0))


def _limits(ax, image: xr.DataArray) -> None:
    x0, x1, y0, y1 = extent(image)
    ax.set_xlim(x0, x1)  # markers outside the field of view must not rescale the image
    ax.set_ylim(y0, y1)


def _columns_section(result, image: xr.DataArray, truth) -> Section:
    from ..workflows.atoms_truth import truth_columns
    from .figures import plot_atoms_overlay

    atoms = result.atoms
    by_sub = plot_atoms_overlay(image, atoms, by="sublattice", title="columns by sublattice (marker: class)")
    by_cls = plot_atoms_overlay(image, atoms, by="cls", title="columns by class")
    imaged = atoms["imaged"].astype(bool) if "imaged" in atoms else atoms["cls"] != "vacancy"
    failed = atoms[~atoms["fit_ok"].astype(bool) & imaged]
    for fig in (by_sub, by_cls):
        ax = fig.axes[0]
        if len(failed):
            ax.scatter(failed["x"], failed["y"], marker="x", s=30, color="#ff2a2a", linewidths=1.2,
                       label=f"fit failed ({len(failed)})", zorder=5)
            ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
        _limits(ax, image)
    row = [Figure(by_sub, caption="colour: sublattice (-1: on no sublattice); marker: class (host o, dopant *, "
                                  "vacancy X, unknown ^); red x: fit failed (position from the centre of mass)"),
           Figure(by_cls, caption="colour and marker: class")]
    if truth is not None:
        t = truth_columns(truth.truth.tables["atoms"], image)
        row.append(Figure(plot_atoms_overlay(image, t, by="sublattice", title="ground-truth columns"),
                          caption="true columns where the simulation put them in the image (after scan distortion)"))
    counts = atoms.groupby(["sublattice", "cls"]).size().unstack(fill_value=0).reset_index()
    return Section("Atom columns", [Row(row), Table(counts, caption="columns per sublattice and class")])


def _pdf_axes(fig, ax, pdf: xr.DataArray, title: str, units: str) -> None:
    values = np.asarray(pdf.values, dtype=np.float64)
    positive = values[values > 0]
    if positive.size == 0:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{title}:\nno pairs", ha="center", va="center", transform=ax.transAxes)
        return
    top = float(positive.max())
    dx, dy = pdf.dx.values, pdf.dy.values
    h = (dx[1] - dx[0]) / 2 if dx.size > 1 else 0.5
    im = ax.imshow(np.where(values > 0, values, np.nan), origin="upper", cmap="inferno",
                   extent=(dx[0] - h, dx[-1] + h, dy[-1] + h, dy[0] - h), interpolation="nearest",
                   norm=LogNorm(vmin=max(top * 1e-3, positive.min()), vmax=top))
    ax.set_facecolor("black")
    ax.set_xlabel(f"dx ({units})")
    ax.set_ylabel(f"dy ({units})")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.85).set_label(str(pdf.attrs.get("units", "neighbours per atom per bin")))


def _pdf_section(result, units: str) -> Section:
    from ..atoms import vector_pdf

    pdf = result.pdf
    fig = new_figure(5.4, 4.6)
    _pdf_axes(fig, fig.add_subplot(), pdf, "vector PDF, all fitted columns", units)
    blocks = [Figure(fig, caption="2-D vector pair distribution function of all columns (log colour scale); "
                                  "dy grows downward like y")]
    a = result.atoms
    imaged = a["imaged"].astype(bool) if "imaged" in a else a["cls"] != "vacancy"
    atoms = a[imaged & (a["sublattice"] >= 0)]
    n_sub = int(atoms["sublattice"].nunique())
    if 1 < n_sub <= 4 and pdf.size:  # a few pairs are cheap (KD-tree); more would not read
        pairs = vector_pdf(atoms, radius_nm=float(pdf.attrs.get("radius_nm", abs(pdf.dx.values[-1]))),
                           bin_nm=pdf.attrs.get("bin_nm"), by="sublattice")
        fs, ts = pairs["from_sublattice"].values, pairs["to_sublattice"].values
        grid = new_figure(3.6 * len(ts), 3.1 * len(fs))
        axes = np.atleast_2d(grid.subplots(len(fs), len(ts)))
        for i, f in enumerate(fs):
            for j, t in enumerate(ts):
                _pdf_axes(grid, axes[i, j], pairs.isel(from_sublattice=i, to_sublattice=j),
                          f"sublattice {f} -> {t}", units)
        blocks.append(Figure(grid, caption="vector PDF per ordered pair of sublattices (from an atom of the first "
                                           "to its neighbours on the second)"))
    return Section("Vector pair distribution function", blocks)


def _sro_section(result) -> Section:
    sro = result.sro
    if not len(sro):
        return Section("Short-range order", [Text("not measured: " + "; ".join(
            s for s in result.summary.get("skipped", []) if s.startswith("short-range")) or "no dopants", "note")])
    cols = ["sublattice", "shell", "distance_nm", "n_pairs", "alpha", "ci_low", "ci_high", "random_mean",
            "random_sd", "p_random"]
    table = sro[[c for c in cols if c in sro.columns]].rename(columns={"distance_nm": "distance"})
    fig = new_figure(5.6, 4.0)
    ax = fig.add_subplot()
    for k, (s, g) in enumerate(sro.groupby("sublattice")):
        shell = g["shell"].to_numpy(float) + 0.08 * k  # side by side, not on top of each other
        err = np.vstack([g["alpha"] - g["ci_low"], g["ci_high"] - g["alpha"]])
        ax.errorbar(shell, g["alpha"], yerr=np.clip(err, 0, None), fmt="o", capsize=4, label=f"sublattice {s}")
        ax.fill_between(shell, g["random_mean"] - 2 * g["random_sd"], g["random_mean"] + 2 * g["random_sd"],
                        alpha=0.15, step="mid")
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xlabel("shell (1)")
    ax.set_ylabel("Warren-Cowley alpha (1)")
    ax.set_xticks(sorted(sro["shell"].unique()))
    ax.set_title("short-range order against shell")
    ax.legend(fontsize="small")
    return Section("Short-range order", [Row([
        Figure(fig, caption="alpha with its block-bootstrap interval (bars); shaded: random arrangement, mean +- 2 sd; "
                            "alpha < 0 dopants avoid each other, > 0 they cluster"),
        Table(table, caption="Warren-Cowley alpha per sublattice and shell, interval, random reference",
              units={"distance": "nm"})])])


def _site_map(fig, ax, image, x, y, values, *, title: str, label: str, diverging: bool) -> None:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    draw_image(fig, ax, image, title=title, colorbar_label="image (counts)")
    if finite.size == 0:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="white")
        return
    if diverging:  # symmetric about zero so the sign reads from the colour
        top = float(np.percentile(np.abs(finite), 99)) or 1e-12
        lims, cmap = (-top, top), "RdBu_r"
    else:
        lims, cmap = (0.0, float(np.percentile(finite, 95)) or 1e-12), "magma"
    sc = ax.scatter(x, y, c=values, cmap=cmap, vmin=lims[0], vmax=lims[1], s=14, edgecolors="none")
    fig.colorbar(sc, ax=ax, shrink=0.85).set_label(label)
    _limits(ax, image)


def _order_section(result, image: xr.DataArray) -> Section:
    blocks: list = []
    skipped = result.summary.get("skipped", [])
    pol = result.polarisation
    pol = pol[pol["ok"].astype(bool)] if len(pol) else pol
    if len(pol):
        fig = new_figure(16.5, 4.6)
        ax_q, ax_p, ax_e = fig.subplots(1, 3)
        draw_image(fig, ax_q, image, title="polarisation (B-site displacement)")
        ax_q.quiver(pol["x"], pol["y"], pol["dx_pm"], pol["dy_pm"], angles="xy", scale_units="xy",
                    scale=_ARROW_PM_PER_NM, color="#ffd400", width=0.004)
        _limits(ax_q, image)
        _site_map(fig, ax_p, image, pol["x"], pol["y"], pol["p_pm"], title="|P|", label="|P| (pm)", diverging=False)
        _site_map(fig, ax_e, image, pol["x"], pol["y"], pol["p_err_pm"], title="|P| uncertainty",
                  label="1 sigma (pm)", diverging=False)
        blocks.append(Figure(fig, caption=f"arrows: displacement, {_ARROW_PM_PER_NM * 0.1:g} pm drawn 0.1 nm long "
                                          f"({len(pol)} sites); y grows downward"))
    else:
        blocks.append(Text("polarisation not measured: " + ("; ".join(s for s in skipped if s.startswith("polar"))
                                                            or "no site has a full cage"), "note"))
    st = result.strain
    st = st[st["ok"].astype(bool)] if len(st) else st
    if len(st):
        fig = new_figure(20.0, 8.4)
        axes = fig.subplots(2, 4)
        for j, (c, title, unit, f) in enumerate(_STRAIN):
            _site_map(fig, axes[0, j], image, st["x"], st["y"], f * st[c], title=title, label=f"{c} ({unit})",
                      diverging=True)
            _site_map(fig, axes[1, j], image, st["x"], st["y"], f * st[f"{c}_err"], title=f"{c} uncertainty",
                      label=f"1 sigma ({unit})", diverging=False)
        blocks.append(Figure(fig, caption="sublattice 0: rotation (deg, counter-clockwise as displayed) and strain "
                                          "(%, tensile positive) against the mean lattice; colours symmetric at the "
                                          "99th percentile of |value|; bottom: propagated 1 sigma"))
    else:
        blocks.append(Text("strain not measured: " + ("; ".join(s for s in skipped if s.startswith("strain"))
                                                      or "too few sites"), "note"))
    return Section("Order parameters", blocks)


def _summary_section(result) -> Section:
    s, lat = result.summary, result.lattice
    a1, a2 = (np.asarray(lat.get(k, [np.nan, np.nan]), dtype=float) for k in ("a1_nm", "a2_nm"))
    rows = [("columns found", s["n_columns"]), ("fit_ok fraction", f"{s['fit_ok_fraction']:.4f}"),
            ("median position error (pm)", f"{s['median_pos_err_pm']:.3g}"),
            ("lattice a1 (nm)", f"({a1[0]:.4f}, {a1[1]:.4f}), |a1| = {np.hypot(*a1):.4f}"),
            ("lattice a2 (nm)", f"({a2[0]:.4f}, {a2[1]:.4f}), |a2| = {np.hypot(*a2):.4f}"),
            ("atoms per sublattice", ", ".join(map(str, lat.get("atoms_per_sublattice", [])))),
            ("columns on no sublattice", lat.get("unassigned", "")), ("total time (s)", f"{result.elapsed_s:.2f}")]
    if "subsurface" in s:
        sub = s["subsurface"]
        rows.append(("sub-surface sites", f"sublattice {sub['sublattice']} at fractional {tuple(sub['fraction'])} "
                     f"of the cell (the hollow whose height spreads most: {sub['spread']}); classes by mean height "
                     f"in a {sub['radius_nm']:.3f} nm disk"))
    rows += [(f"skipped: {k.split(':')[0]}", k.split(":", 1)[-1].strip()) for k in s.get("skipped", [])]
    classes = pd.DataFrame([(k.split("/")[0], k.split("/")[1], n) for k, n in s.get("classes", {}).items()],
                           columns=["sublattice", "class", "columns"])
    timings = pd.DataFrame(list(s.get("timings_s", {}).items()), columns=["stage", "time"])
    return Section("Atom analysis summary", [Row([
        Table(pd.DataFrame([(k, str(v)) for k, v in rows], columns=["quantity", "value"]),
              caption="parameters and outcome"),
        Table(classes, caption="columns per sublattice and class"),
        Table(timings, caption="time per stage", units={"time": "s"})])])


def _fmt(v) -> str:
    return "not measured" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"


def score_table(scores: dict) -> pd.DataFrame:
    """(score, value) rows of :func:`~atomine.workflows.atoms_truth.atom_scores`, as shown in the report."""
    rows = [("columns matched to a true column / not", f"{scores['matched']} / {scores['unmatched']}")]
    for s, p in scores["position"].items():
        rows.append((f"position RMS error, sublattice {s} (pm)", _fmt(p["rms_pm"])))
        rows.append((f"median reported 1 sigma, sublattice {s} (pm)", _fmt(p["median_pos_err_pm"])))
    agree = scores["sublattice_agreement"]
    rows.append(("sublattice agreement (%)", _fmt(None if agree is None else 100 * agree)))
    rows.append(("true columns on sublattices not found", str(scores["columns_on_sublattices_not_found"])))
    d = scores["dopants"]
    rows += [("dopant precision", _fmt(d["precision"])), ("dopant recall", _fmt(d["recall"])),
             ("dopant F1", _fmt(d["f1"])), ("dopants true positive / false positive / missed",
                                            f"{d['tp']} / {d['fp']} / {d['fn']}")]
    if "vacancies" in scores:
        v = scores["vacancies"]
        rows.append(("vacancy recall", _fmt(v["recall"])))
        rows.append(("vacancies true / found", f"{v['true']} / {v['found']}"))
    if "subsurface" in scores:
        ss = scores["subsurface"]
        rows.append(("sub-surface sites predicted / true in the field", f"{ss['found_sites']} / {ss['true_sites']}"))
        rows.append(("sub-surface site position RMS (pm)", _fmt(ss.get("position_rms_pm"))))
        v = ss["vacancy_sites"]
        rows.append(("sub-surface vacancy precision / recall", f"{_fmt(v['precision'])} / {_fmt(v['recall'])}"))
    return pd.DataFrame(rows, columns=["score", "value"])


def _truth_section(result, truth) -> Section:
    from ..workflows.atoms_truth import atom_scores

    scores = atom_scores(result, truth)
    blocks: list = [Table(score_table(scores), caption=(
        f"against the simulation's columns: each found column scored against the nearest true column within "
        f"{scores['match_nm']} nm; positions of fitted columns only"), max_rows=60)]
    if scores["polarisation"]:
        pol = pd.DataFrame(scores["polarisation"]).rename(columns=lambda c: c.replace("_pm", "").replace("_", " "))
        blocks.append(Table(pol, caption="polarisation (B-site displacement): median per truth domain, the domains "
                                         "split by the sign of the true displacement",
                            units={c: "pm" for c in ("true dx", "found dx", "true dy", "found dy")}))
    return Section("Ground-truth scores", blocks)


def atoms_sections(result, image: xr.DataArray, truth=None) -> list[Section]:
    """Report sections of an atom analysis: columns, vector PDF, short-range order, order parameters, summary.

    Parameters
    ----------
    result : atomine.workflows.atoms.AtomsResult
    image : xarray.DataArray (y, x)
        The analysed image (coordinates in nm, or px when uncalibrated).
    truth : atomine.data.Simulation, optional
        The simulation the image came from: adds the true columns next to the found ones and a
        table of :func:`~atomine.workflows.atoms_truth.atom_scores` (position RMS error per
        sublattice in pm, sublattice agreement, dopant precision / recall / F1, vacancy recall,
        polarisation per truth domain).
    """
    sections = [_columns_section(result, image, truth), _pdf_section(result, axis_units(image, "x") or "px"), _sro_section(result),
                _order_section(result, image), _summary_section(result)]
    if truth is not None:
        sections.insert(0, _truth_section(result, truth))
    return sections


def write_atoms_report(result, path: str | os.PathLike, image: xr.DataArray, truth=None, *,
                       overwrite: bool = False) -> Path:
    """Write the atom analysis' self-contained ``report.html`` (figures embedded) to ``path``."""
    if Path(path).exists() and not overwrite:  # refuse before seconds of drawing, not after
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    s = result.summary
    return write_report(path, "atomine atom columns", atoms_sections(result, image, truth),
                        subtitle=f"{image.name}: {' x '.join(map(str, image.shape))} px, {s['n_columns']} columns, "
                                 f"{len(result.lattice.get('atoms_per_sublattice', []))} sublattice(s)",
                        footer=f"atomine {__version__}; parameters and inputs in provenance.json",
                        overwrite=overwrite)


__all__ = ["atoms_sections", "score_table", "write_atoms_report"]
