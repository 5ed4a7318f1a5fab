"""Report of a structure-property correlation: the registration (field of view and a red/cyan overlay),
the ranked links, the top links as side-by-side maps with their scatter, CCA / PLS, every descriptor map;
with a ground truth (the demo), the registration error and the true drivers' ranks.

``correlate_sections(result, truth)`` turns a :class:`~atomine.workflows.correlate.CorrelateResult` into
report sections; ``write_correlate_report`` writes them as one self-contained ``report.html``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InputError, OutputExistsError
from . import _correlate_figures as cf
from .html import Figure, Section, Table, Text, write_report

DPI = 72  # the demo report holds many sections: modest PNGs keep this one near 1 MB
TOP_ROWS = 20
_LINK_COLUMNS = ("structure", "property", "r", "p", "q", "cv_r2", "effect", "n")


def _fdr(result) -> float:
    for source in (result.summary, result.parameters):
        if isinstance(source, dict) and source.get("fdr") is not None:
            return float(source["fdr"])
    return 0.05


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return ""
    return f"{v:.{digits}g}" if isinstance(v, (float, np.floating)) else str(v)


# --------------------------------------------------------------------------- tables
def registration_table(result) -> pd.DataFrame:
    """Quality figures of the registration and the transform's parameters (spectral nm -> image nm)."""
    p = result.transform.params()
    rows = []
    reg = result.registration
    grid = result.adf if result.adf is not None else next(iter(result.structure.data_vars.values()))
    pitch = cf.pixel_size(grid)
    if reg is not None:
        rows += [("residual (1 - NCC)", _num(reg.residual)), ("confidence (NCC gap / stderr)", _num(reg.confidence)),
                 ("estimated error (spectral px)", _num(reg.error_px)),
                 ("estimated error (nm)", _num(reg.error_px * pitch)),
                 ("overlap (fraction of spectral pixels)", _num(reg.overlap)), ("method", reg.method)]
    rows += [("spectral pixel (nm)", _num(pitch)),
             ("rotation (deg, counter-clockwise)", _num(p["rotation_deg"], 4)),
             ("scale x, y (image nm / spectral nm)", f"{p['scale'][0]:.5f}, {p['scale'][1]:.5f}"),
             ("shear", _num(p["shear"], 3)),
             ("shift x, y (nm): spectral origin in the image", f"{p['shift_nm'][0]:.4f}, {p['shift_nm'][1]:.4f}")]
    return pd.DataFrame(rows, columns=["quantity", "value"]).astype(str)


def links_table(result, rows: int = TOP_ROWS) -> pd.DataFrame:
    """The first ``rows`` links (ranked by q, then |r|) with q < fdr marked."""
    links = result.links
    cols = [c for c in _LINK_COLUMNS if c in links.columns]
    top = links.loc[:, cols].head(rows).copy()
    fdr = _fdr(result)
    top.insert(0, "rank", np.arange(1, len(top) + 1))
    top["q < fdr"] = np.where(top["q"] < fdr, "yes", "")
    for c, digits in (("r", 3), ("p", 3), ("q", 3), ("cv_r2", 3), ("effect", 4)):
        if c in top.columns:
            top[c] = [_num(float(v), digits) for v in top[c]]
    return top


def multivariate_table(result) -> pd.DataFrame:
    """Per spectral descriptor: PLS in-sample and block-CV R^2, and the ridge model's block-CV R^2."""
    m = result.mining
    pls = m.pls or {}
    props = list(dict.fromkeys([*pls.get("cv_r2", {}), *(m.multivariate_cv_r2 or {})]))
    rows = [{"property": p, "PLS R2": _num(pls.get("r2", {}).get(p)), "PLS CV R2": _num(pls.get("cv_r2", {}).get(p)),
             "ridge CV R2 (all structure)": _num((m.multivariate_cv_r2 or {}).get(p))} for p in props]
    return pd.DataFrame(rows, columns=["property", "PLS R2", "PLS CV R2", "ridge CV R2 (all structure)"])


def truth_table(result, truth: dict) -> pd.DataFrame:
    """The acceptance figures against the simulator's truth (see :mod:`atomine.workflows.correlate_truth`)."""
    from ..workflows.correlate_truth import correlate_scores

    s = correlate_scores(result, truth)
    t = s["targets"]
    rows = []
    if "registration_error_px" in s:
        rows.append({"check": "registration error vs the true transform (max over SI pixel centres)",
                     "value": f"{s['registration_error_px']:.4f} spectral px",
                     "target": f"<= {t['registration_error_px']} px",
                     "pass": "yes" if s["registration_ok"] else "NO"})
    for d in s.get("drivers", []):
        if d.get("descriptor") is None:
            rows.append({"check": f"true driver {d['driver']}", "value": "no structural descriptor of that name",
                         "target": "", "pass": "NO"})
            continue
        coef = f", true coefficient {d['true_coefficient']:g}" if "true_coefficient" in d else ""
        rows.append({"check": f"true driver {d['driver']} -> {d['property']}",
                     "value": f"rank {d['rank']}, q = {d['q']:.2g}, r = {d['r']:.3f}, effect {d['effect']:.3g}{coef}",
                     "target": f"rank <= {len(s['drivers'])}, q < {t['q']}",
                     "pass": "yes" if d["rank"] <= len(s["drivers"]) and d["q"] < t["q"] else "NO"})
    if "drivers_first" in s:
        rows.append({"check": "true drivers ranked first with q < 0.01", "value": "yes" if s["drivers_first"] else "no",
                     "target": "yes", "pass": "yes" if s["drivers_first"] else "NO"})
    return pd.DataFrame(rows, columns=["check", "value", "target", "pass"])


# --------------------------------------------------------------------------- sections
def _registration_section(result) -> Section:
    reg = result.registration
    how = ("registered: the simultaneous channel onto the image (" + reg.method + ")") if reg is not None else \
        "the transform was given (no registration ran); its quality is not measured here"
    blocks: list = [Text(how + ". The outline is the spectrum image's outer pixel edges mapped into the image; in "
                         "the overlay, red is the image smoothed to the spectral pixel and cyan the registered "
                         "simultaneous channel: aligned structure looks grey/white, a misalignment shows red and "
                         "cyan fringes.")]
    if result.image is not None:
        blocks.append(Figure(cf.registration_figure(result), dpi=DPI,
                             caption="spectrum image field of view and registered overlay (image frame, nm)"))
    else:
        blocks.append(Text("no high-resolution image was kept with the result: nothing to overlay", "note"))
    blocks.append(Table(registration_table(result), caption="registration quality and the transform spectral nm -> "
                                                            "image nm (transform.json)"))
    return Section("Registration", blocks)


def _links_section(result) -> Section:
    m, fdr = result.mining, _fdr(result)
    n_sig = int((result.links["q"] < fdr).sum())
    blocks: list = [
        Text(f"{len(result.links)} links tested ({result.links['structure'].nunique()} structural x "
             f"{result.links['property'].nunique()} spectral descriptors), {n_sig} with q < {fdr:g}; p from "
             f"{m.n_permutations} toroidal shifts per test (spatial autocorrelation kept), q by Benjamini-Hochberg; "
             f"the smallest reachable q is {m.q_floor:.2g}" + ("" if m.q_reachable else " (q < 0.01 out of reach)")
             + "."),
        Table(links_table(result), caption=f"top {min(TOP_ROWS, len(result.links))} links ranked by q, then |r| "
              "(links.csv has all); effect: OLS slope, property units per structure unit; cv_r2: spatial block "
              "cross-validated R^2", max_rows=TOP_ROWS)]
    if m.notes:
        blocks.append(Text("notes: " + "; ".join(map(str, m.notes)), "note"))
    return Section("Links", blocks)


def _top_links_section(result, top: int) -> Section:
    fdr = _fdr(result)
    links = result.links
    chosen = links[links["q"] < fdr].head(top)
    lead = f"the {len(chosen)} best links with q < {fdr:g}"
    if chosen.empty:
        chosen = links.head(2)
        lead = f"no link reaches q < {fdr:g}; the 2 best-ranked are shown"
    blocks: list = [Text(lead + ": the structural and spectral maps on the spectral grid (same extent, nm) and "
                         "the property against the structure per spectral pixel, with the OLS line.")]
    for _, row in chosen.iterrows():
        s, p = str(row["structure"]), str(row["property"])
        if s not in result.structure or p not in result.spectra:
            blocks.append(Text(f"{s} vs {p}: maps not in the result", "note"))
            continue
        fig = cf.link_figure(result.structure[s].transpose("y", "x"), result.spectra[p].transpose("y", "x"),
                             row.to_dict(), like=result.adf)
        blocks.append(Figure(fig, dpi=DPI, caption=f"{s} vs {p}: r = {row['r']:.3f}, q = {row['q']:.2g}"))
    return Section("Top links", blocks)


def _multivariate_section(result) -> Section:
    m = result.mining
    blocks: list = []
    cca = m.cca or {}
    if cca.get("x_loadings"):
        blocks.append(Figure(cf.cca_figure(cca), dpi=DPI, caption=(
            "first canonical pair between all structural and all spectral descriptors; block-CV r correlates "
            "canonical scores of held-out spatial blocks")))
    else:
        blocks.append(Text("canonical correlation not computed" + (f": {cca['note']}" if cca.get("note") else ""),
                           "note"))
    table = multivariate_table(result)
    if len(table):
        k = (m.pls or {}).get("n_components")
        blocks.append(Table(table, caption=f"structure -> spectra models scored by spatial block cross-validation: "
                                           f"PLS ({k} components) and a ridge model per property on all structural "
                                           "descriptors"))
    return Section("Multivariate: CCA and PLS", blocks)


def _descriptor_section(result) -> Section:
    blocks: list = []
    for ds, what in ((result.structure, "structural"), (result.spectra, "spectral")):
        fig = cf.descriptor_figure(ds, f"{what} descriptors on the spectral grid", like=result.adf)
        if fig is None:
            blocks.append(Text(f"no {what} descriptor with data", "note"))
            continue
        src = ", ".join(sorted({str(da.attrs.get("source", "")) for da in ds.data_vars.values()} - {""}))
        blocks.append(Figure(fig, dpi=56, caption=f"{len(ds.data_vars)} {what} descriptor(s)"
                             + (f" from {src}" if src else "") + "; colour bars in each descriptor's units"))
    rows = [{"descriptor": str(n), "kind": kind, "long name": str(da.attrs.get("long_name", "")),
             "units": str(da.attrs.get("units", "")), "source": str(da.attrs.get("source", "")),
             "valid pixels": int(np.isfinite(np.asarray(da.values, dtype=np.float64)).sum())}
            for ds, kind in ((result.structure, "structure"), (result.spectra, "property"))
            for n, da in ds.data_vars.items()]
    blocks.append(Table(pd.DataFrame(rows), caption="descriptors", max_rows=60))
    return Section("Descriptors", blocks)


def correlate_sections(result, truth: dict | None = None, *, top: int = 4) -> list[Section]:
    """Report sections of a structure-property correlation.

    Parameters
    ----------
    result : atomine.workflows.correlate.CorrelateResult
    truth : dict, optional
        The simulator's parameters (``"transform"``, ``"drivers"``, optionally ``"coefficients"``):
        adds an "Against ground truth" section with the registration error and the drivers' ranks.
    top : int
        Links with q < fdr drawn as maps and scatter plots (the 2 best-ranked when none is significant).
    """
    if not hasattr(result, "links") or not hasattr(result, "transform"):
        raise InputError(f"correlate_sections needs a CorrelateResult, got {type(result).__name__}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InputError(f"top must be a positive integer, got {top!r}")
    sections = []
    if truth is not None:
        sections.append(Section("Against ground truth", [Table(truth_table(result, truth), caption=(
            "the simulator's transform and drivers against the result: registration error in spectral pixels "
            "(target <= 0.2); the true drivers should be the top-ranked structure of the property they drive, "
            "each with q < 0.01"))]))
    sections += [_registration_section(result), _links_section(result), _top_links_section(result, int(top)),
                 _multivariate_section(result), _descriptor_section(result)]
    return sections


def write_correlate_report(result, path: str | os.PathLike, truth: dict | None = None, *, overwrite: bool = False,
                           top: int = 4) -> Path:
    """Write the correlation's self-contained ``report.html`` (figures embedded) to ``path``."""
    if Path(path).exists() and not overwrite:  # refuse before the drawing, not after
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    fdr = _fdr(result)
    n_sig = int((result.links["q"] < fdr).sum())
    shape = " x ".join(str(result.structure.sizes[d]) for d in ("y", "x"))
    best = result.links.iloc[0] if len(result.links) else None
    lead = f"; best: {best['structure']} vs {best['property']} (r = {best['r']:.2f}, q = {best['q']:.2g})" \
        if best is not None else ""
    return write_report(path, "atomine structure-property correlation", correlate_sections(result, truth, top=top),
                        subtitle=f"{shape} spectral pixels, {len(result.links)} links, {n_sig} with q < {fdr:g}{lead}",
                        footer=f"atomine {__version__}; parameters and inputs in provenance.json",
                        overwrite=overwrite)


__all__ = ["correlate_sections", "links_table", "multivariate_table", "registration_table", "truth_table",
           "write_correlate_report"]
