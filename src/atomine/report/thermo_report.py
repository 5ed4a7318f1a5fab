"""Report of a thermodynamics fit: model choice, parameters, histograms image vs model, the s^2
landscape, SRO and heat capacity against temperature, the phase diagram and the most probable local
configurations; with a ground truth (the demo), the true parameters beside the estimate.

``thermo_sections(result, truth)`` turns a :class:`~atomine.workflows.thermo.ThermoResult` into
report sections; ``write_thermo_report`` writes them as one self-contained ``report.html``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import OutputExistsError
from ._draw import new_figure
from .html import Figure, Row, Section, Table, Text, write_report

_SHELL_COLORS = ("#1f77b4", "#d62728", "#2ca02c")
_TOP_BINS = 30  # histogram bars drawn; the rest are summed in the caption


# --------------------------------------------------------------------------- tables
def candidates_table(result) -> pd.DataFrame:
    """One row per candidate model: parameters, chi^2, BIC, held-out chi^2, predictive p-values, chosen."""
    rows = []
    for r in result.summary["candidates"]:
        row = {"model": r["model"], "P": r["n_parameters"], "chi2": _num(r.get("chi2"))}
        if "deviance" in r:  # the largest model's chi2 plus the Wald distance to this one's nesting
            row["deviance"] = _num(r["deviance"])
        rows.append({**row, "BIC": _num(r.get("bic")), "CV chi2 (held out)": _num(r.get("cv_chi2")),
                     "PPC p (mean cluster)": _num(r.get("ppc_p_mean_cluster"), 3),
                     "PPC p (clusters >= 5)": _num(r.get("ppc_p_large_cluster_fraction"), 3),
                     "chosen": "yes" if r.get("chosen") else ""})
    return pd.DataFrame(rows)


def parameters_table(result, truth: dict | None = None) -> pd.DataFrame:
    """Each parameter's estimate, standard errors (sandwich and bootstrap), meV with T_f, and the truth."""
    rows = []
    for name, p in result.summary["parameters"].items():
        row = {"parameter": name, "value (k_B T_f)": _num(p["value"], 4), "stderr": _num(p["stderr"], 4),
               "bootstrap stderr": _num(p.get("stderr_bootstrap"), 4)}
        if "meV" in p:
            row["value (meV)"] = _num(p["meV"]["value"], 3)
            row["stderr (meV)"] = _num(p["meV"]["stderr"], 3)
        if truth is not None:
            true = truth.get(name)
            row["truth"] = _num(true, 4)
            ok = true is not None and p.get("stderr")
            row["z = (value - truth) / stderr"] = _num((p["value"] - true) / p["stderr"] if ok else None, 2)
        rows.append(row)
    if truth is not None:  # a true coupling the model left out is estimated as 0
        for name, true in truth.items():
            if name.startswith("J") and name not in result.summary["parameters"]:
                rows.append({"parameter": name, "value (k_B T_f)": "not in model (0)", "truth": _num(true, 4)})
    return pd.DataFrame(rows).fillna("")


def fit_table(result) -> pd.DataFrame:
    s, d = result.summary, result.details
    rows = [("lattice", f"{s['lattice']} {d['lattice_shape'][0]} x {d['lattice_shape'][1]} sites"
             + (f", a = {d['a_nm']:.4g} nm" if d.get("a_nm") else "")),
            ("model sites / sites with a complete neighbourhood", f"{d['n_model_sites']} / {s['n_sites']}"),
            ("dopant fraction", _num(s["composition"], 4)),
            ("statistical distance s (rad)", _num(s["statistical_distance"], 4)),
            ("chi2 = 4 n_eff s^2 / dof", f"{_num(s['chi2'], 1)} / {s['dof']} = {_num(s['chi2_per_dof'], 3)}"),
            ("effective sample size n_eff (design effect)", f"{_num(s['n_eff'], 0)} ({_num(s['design_effect'], 3)})"),
            ("fit converged", "yes" if d.get("converged") else "no (stopped at the iteration limit)"),
            ("bootstrap replicas", d.get("bootstrap", 0)),
            ("SRO alpha_1..3 of the image", ", ".join(_num(a, 3) for a in d["sro_image"])),
            ("total time (s)", f"{result.elapsed_s:.1f}")]
    if s.get("t_freeze_k"):
        rows.insert(4, ("freezing temperature T_f (K)", _num(s["t_freeze_k"], 1)))
    return pd.DataFrame(rows, columns=["quantity", "value"]).astype(str)


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)


# --------------------------------------------------------------------------- figures
def _pooled(result):
    """Pooled bins: (labels, image p, model q, image counts) in bin order."""
    f = result.fit
    n_bins = int(f.bins.max()) + 1
    p = np.bincount(f.bins, weights=f.p_image, minlength=n_bins)
    q = np.bincount(f.bins, weights=f.q_model, minlength=n_bins)
    members = [np.flatnonzero(f.bins == b) for b in range(n_bins)]
    labels = [f.class_labels[m[0]] if len(m) == 1 else f"{len(m)} rare classes pooled" for m in members]
    return labels, p, q


def histogram_figure(result):
    """The most frequent pooled classes (bars, log scale) and every bin's Pearson residual."""
    labels, p, q = _pooled(result)
    n_eff = result.fit.n_eff
    order = np.argsort(-q, kind="stable")[:_TOP_BINS]
    fig = new_figure(10.0, 0.22 * len(order) + 1.6)
    ax, res = fig.subplots(1, 2, width_ratios=(2.2, 1))
    y = np.arange(len(order))
    err = np.sqrt(q[order] * (1 - q[order]) / n_eff)
    ax.barh(y + 0.2, q[order], 0.4, color="#d62728", label="model q", xerr=err, error_kw={"lw": 0.6})
    ax.barh(y - 0.2, p[order], 0.4, color="#1f77b4", label="image p")
    ax.set_yticks(y, [labels[k] for k in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("fraction of sites")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"the {len(order)} most frequent of {len(q)} pooled classes", fontsize="medium")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p - q) / np.sqrt(q * (1 - q) / n_eff)
    res.plot(np.arange(len(q)), z, "o", ms=3, color="#1f77b4")
    for level in (-2, 2):
        res.axhline(level, color="0.6", lw=0.8, ls="--")
    res.axhline(0, color="0.3", lw=0.6)
    res.set_xlabel("pooled class (bin)")
    res.set_ylabel("(p - q) / sd (n_eff)")
    res.set_title("residuals", fontsize="medium")
    return fig, float(q[np.argsort(-q)[_TOP_BINS:]].sum()) if len(q) > _TOP_BINS else 0.0


def _ellipse(ax, centre, cov, k: float, **kw):
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    t = np.linspace(0, 2 * np.pi, 181)
    pts = vecs @ (np.sqrt(np.clip(vals, 0, None))[:, None] * np.array([np.cos(t), np.sin(t)])) * k
    ax.plot(centre[0] + pts[0], centre[1] + pts[1], **kw)


def landscape_figure(result, truth: dict | None):
    land = result.landscape
    chi2 = 4.0 * land.attrs["n_eff"] * land.values
    est = land.attrs["estimate"]
    names = list(land.dims)
    fig = new_figure(5.4, 4.3)
    ax = fig.add_subplot()
    if land.ndim == 1:
        x = land.coords[names[0]].values
        ax.plot(x, chi2, "-", color="#1f77b4")
        sd = float(np.sqrt(land.attrs["covariance"][0][0]))
        ax.axvspan(est[0] - sd, est[0] + sd, color="#1f77b4", alpha=0.15, label="estimate +- 1 stderr")
        ax.axvline(est[0], color="#1f77b4", lw=0.8)
        if truth is not None and names[0] in truth:
            ax.axvline(truth[names[0]], color="k", ls=":", label="truth")
        ax.set_xlabel(f"{names[0]} (k_B T_f)")
        ax.set_ylabel("chi2 = 4 n_eff s^2")
        ax.legend(fontsize=8)
        return fig
    x, y = (land.coords[n].values for n in names)
    levels = np.nanmin(chi2) + np.array([1, 2.3, 4, 6.2, 9, 11.8, 16, 25, 36, 49, 64])
    low = float(np.nanmin(chi2))
    cs = ax.contourf(x, y, chi2.T, levels=np.linspace(low, low + 64, 33), cmap="viridis_r", extend="max")
    ax.contour(x, y, chi2.T, levels=levels, colors="white", linewidths=0.4)
    fig.colorbar(cs, ax=ax, shrink=0.85).set_label("chi2 = 4 n_eff s^2")
    cov = land.attrs["covariance"]
    _ellipse(ax, est, cov, 1.0, color="#d62728", lw=1.2, label="1 stderr")
    _ellipse(ax, est, cov, 2.0, color="#d62728", lw=1.0, ls="--", label="2 stderr")
    ax.plot(*est, "+", color="#d62728", ms=10, mew=2, label="estimate")
    if truth is not None and all(n in truth for n in names):
        ax.plot(truth[names[0]], truth[names[1]], "*", color="k", ms=12, label="truth")
    ax.set_xlabel(f"{names[0]} (k_B T_f)")
    ax.set_ylabel(f"{names[1]} (k_B T_f)")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def _log_ticks(axis, values) -> None:
    """Plain 1-2-3-5 tick labels on a log axis (matplotlib's minor labels overlap on short ranges)."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    lo, hi = float(np.min(values)), float(np.max(values))
    ticks = [m * 10.0**e for e in range(-3, 4) for m in (1, 2, 3, 5) if lo <= m * 10.0**e <= hi]
    if len(ticks) >= 2:
        axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def _kelvin_axis(ax, t, t_f):
    if t_f:
        sec = ax.secondary_xaxis("top", functions=(lambda x: x * t_f, lambda k: k / t_f))
        sec.set_xlabel("T (K)")
        _log_ticks(sec.xaxis, np.asarray(t) * t_f)


def temperature_figure(result):
    scan, trans = result.scan, result.transition
    t = scan["temperature"].to_numpy()
    t_f = result.summary.get("t_freeze_k")
    fig = new_figure(10.0, 3.8)
    ax_sro, ax_c = fig.subplots(1, 2)
    for m in range(3):
        ax_sro.plot(t, scan[f"sro_{m + 1}"], "o-", ms=3, color=_SHELL_COLORS[m], label=f"alpha_{m + 1} (model)")
        ax_sro.plot([1.0], [result.details["sro_image"][m]], "s", mfc="none", ms=8, color=_SHELL_COLORS[m])
    ax_sro.plot([], [], "s", mfc="none", color="0.3", label="image (at t = 1)")
    ax_sro.set_ylabel("Warren-Cowley alpha")
    ax_c.errorbar(t, scan["heat_capacity"], yerr=scan["heat_capacity_err"], fmt="o-", ms=3, color="0.2")
    ax_c.set_ylabel("heat capacity per site (k_B)")
    for ax in (ax_sro, ax_c):
        ax.set_xscale("log")
        ax.set_xlabel("t = T / T_f")
        ax.axvline(1.0, color="#2ca02c", lw=1.0, ls="--", label="t = 1 (freezing)")
        if trans.get("temperature") is not None:
            ax.axvline(trans["temperature"], color="#d62728", lw=1.0, label=f"t_c = {trans['temperature']:.3f}")
        _log_ticks(ax.xaxis, t)
        _kelvin_axis(ax, t, t_f)
    ax_sro.legend(fontsize=7)
    ax_c.legend(fontsize=7)
    ax_sro.set_title("short-range order", fontsize="medium")
    ax_c.set_title(f"heat capacity; transition: {trans.get('kind')}", fontsize="medium")
    return fig


def phase_figure(result):
    ds = result.phase_diagram
    c = ds["composition"].values
    t = ds["temperature"].values
    fig = new_figure(10.0, 3.9)
    axes = fig.subplots(1, 2)
    for ax, name, label, cmap in ((axes[0], "heat_capacity", "heat capacity per site (k_B)", "magma"),
                                  (axes[1], "order_parameter", "order parameter s_max", "viridis")):
        values = ds[name].values.T
        im = ax.pcolormesh(c, t, np.log10(np.clip(values, 1e-6, None)) if name == "order_parameter" else values,
                           shading="nearest", cmap=cmap)
        fig.colorbar(im, ax=ax, shrink=0.85).set_label(("log10 " if name == "order_parameter" else "") + label)
        ax.plot(c, ds["transition_temperature"].values, "o-", color="cyan", ms=4, lw=1.2, label="transition t_c")
        ax.axvline(result.summary["composition"], color="white", ls="--", lw=1.0, label="observed composition")
        ax.axhline(1.0, color="#2ca02c", ls=":", lw=1.0, label="t = 1 (freezing)")
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, t)
        ax.set_xlabel("dopant fraction c")
        ax.set_ylabel("t = T / T_f")
        ax.legend(fontsize=7, loc="upper right")
    return fig


def configurations_figure(result):
    from ..thermo.lattice import cartesian

    confs = result.configurations
    cols = min(5, len(confs))
    rows = -(-len(confs) // cols)
    fig = new_figure(1.9 * cols, 2.1 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, conf in zip(axes, confs):
        xy = cartesian(result.lattice.kind, np.asarray(conf["offsets"]))
        spins = np.asarray(conf["spins"])
        ax.scatter(xy[:, 0], xy[:, 1], s=140, c=np.where(spins > 0, "#d62728", "white"), edgecolors="0.3",
                   linewidths=np.where(np.arange(len(spins)) == 0, 2.2, 0.8))
        ax.set_title(f"#{conf['rank']}: p = {conf['probability']:.3f}\nimage {conf['probability_image']:.3f}",
                     fontsize=8)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.margins(0.2)
    for ax in axes[len(confs):]:
        ax.set_axis_off()
    return fig


# --------------------------------------------------------------------------- sections
def thermo_sections(result, truth: dict | None = None) -> list[Section]:
    """Report sections of a thermodynamics fit.

    Parameters
    ----------
    result : atomine.workflows.thermo.ThermoResult
    truth : dict, optional
        True parameters by name (``{"J1": -0.2, "J2": -0.06}``): shown beside the estimate with
        z-scores, and marked on the landscape.
    """
    s = result.summary
    sections = []
    if truth is not None:
        sections.append(Section("Ground truth: true couplings", [Table(parameters_table(result, truth), caption=(
            "the parameters the configuration was simulated with, beside the estimate; |z| <= 2 in 95 % of "
            "repeated experiments when the stderr is right"))]))
    sections.append(Section("Model choice", [
        Text(f"chosen: {s['model']}. {s['reason']}."),
        Table(candidates_table(result), caption=(
            "all candidates scored on one histogram and pooling: BIC = "
            + ("deviance" if "deviance" in s["candidates"][0] else "chi2") + " + P ln n_eff; CV: held-out chi2 of "
            "spatial tiles refitted without them; PPC: predictive p-values of dopant cluster sizes, which the "
            "fit does not use"))]))
    sections.append(Section("Parameters", [Row([
        Table(parameters_table(result), caption=f"{s['convention']}; energies in k_B T_f"
              + (f", and in meV with T_f = {s['t_freeze_k']:g} K" if s.get("t_freeze_k") else "")),
        Table(fit_table(result), caption="fit quality and the data it used")])]))
    fig, rest = histogram_figure(result)
    sections.append(Section("Configuration histograms: image vs model", [Figure(fig, caption=(
        f"local configurations ({result.fit.descriptor}: centre occupancy and dopants per shell), rare classes "
        "pooled; model bars carry +-1 sd for an image of n_eff sites"
        + (f"; the other bins hold {100 * rest:.1f} % of the model's sites" if rest else "")))]))
    sections.append(Section("s^2 landscape", [Figure(landscape_figure(result, truth), caption=(
        "chi2 = 4 n_eff s^2 around the estimate (contours at +1, 2.3, 4, ... above the minimum), with the 1 and "
        "2 stderr ellipses of the sandwich covariance; " + result.landscape.attrs["method"]))]))
    if len(result.scan):
        tr = result.transition
        where = (f"t_c = {tr['temperature']:.3f}" + (f" ({tr['temperature_k']:.0f} K)" if "temperature_k" in tr
                                                      else "")) if tr.get("temperature") is not None else "none"
        sections.append(Section("Short-range order and heat capacity vs temperature", [Figure(
            temperature_figure(result), caption=(
                f"canonical Monte Carlo of the fitted couplings at the observed composition (zero field); "
                f"transition: {tr['kind']}, {where}, by {tr['method']}; squares: the image's own SRO"
                + (f". Note: {tr['note']}" if tr.get("note") else "")))]))
        sections.append(Section("Phase diagram", [Figure(phase_figure(result), caption=(
            "composition-temperature diagram of the fitted couplings (zero field, 24 x 24 box; c and 1 - c are "
            "equivalent); the line is the heat-capacity maximum at each composition"))]))
    else:
        note = [Text("not computed: the analysis ran without phase behaviour (phase=False / --no-phase)", "note")]
        sections.append(Section("Short-range order and heat capacity vs temperature", note))
        sections.append(Section("Phase diagram", list(note)))
    sections.append(Section("Most probable local configurations", [Figure(configurations_figure(result), caption=(
        "the fitted model's most probable classes of the centre (thick ring) and its first two shells, red = "
        "dopant, with the model's and the image's probabilities; written as configurations.xyz (extended XYZ, "
        "ase.io.read(path, index=':'))"))]))
    return sections


def write_thermo_report(result, path: str | os.PathLike, truth: dict | None = None, *,
                        overwrite: bool = False) -> Path:
    """Write the thermodynamics fit's self-contained ``report.html`` (figures embedded) to ``path``."""
    if Path(path).exists() and not overwrite:  # refuse before the drawing, not after
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    s = result.summary
    names = ", ".join(f"{k} = {v['value']:.3f} +- {v['stderr']:.3f}" for k, v in s["parameters"].items())
    return write_report(path, "atomine thermodynamics", thermo_sections(result, truth),
                        subtitle=f"{s['lattice']} lattice, c = {s['composition']:.3f}: {s['model']} ({names} k_B T_f)",
                        footer=f"atomine {__version__}; parameters and inputs in provenance.json",
                        overwrite=overwrite)


__all__ = ["candidates_table", "parameters_table", "thermo_sections", "write_thermo_report"]
