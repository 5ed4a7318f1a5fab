"""How well an atom analysis matches a simulation's ground truth (demo, report and tests share it).

True columns are taken at their apparent positions (the truth table's ``x_px``, ``y_px``
through the image's calibration, i.e. after scan distortion and drift), matched to the
nearest found column within 0.05 nm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..data import Simulation

MATCH_NM = 0.05  # a found column scores against the nearest true column only within this distance


def truth_columns(truth_atoms: pd.DataFrame, image: xr.DataArray) -> pd.DataFrame:
    """True columns where they appear in the image, inside its field of view.

    The simulators record ``x_px``, ``y_px`` after scan distortion (jitter, drift): that, not the
    undistorted ``x``, ``y``, is where a perfect finder puts a column. They are turned into the
    image's coordinates (offset + index * scale)."""
    t = truth_atoms.copy()
    if {"x_px", "y_px"} <= set(t.columns):
        for d in ("x", "y"):
            c = np.asarray(image[d].values, dtype=np.float64)
            t[d] = c[0] + (c[1] - c[0] if c.size > 1 else 1.0) * t[f"{d}_px"].to_numpy(np.float64)
    xs, ys = image.x.values, image.y.values
    inside = t["x"].between(min(xs[0], xs[-1]), max(xs[0], xs[-1])) & t["y"].between(min(ys[0], ys[-1]),
                                                                                       max(ys[0], ys[-1]))
    return t[inside].reset_index(drop=True)


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if tp + fp + fn else None)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": f1}


def atom_scores(result, simulation: Simulation) -> dict[str, Any]:
    """Scores of :func:`~atomine.workflows.atoms.analyze_atoms` against a simulation's atom table.

    Each found column (vacancy rows left out) is matched to the nearest true column within
    ``MATCH_NM``. Returns position RMS error (pm) per found sublattice (fitted columns only, with
    their median reported 1-sigma), sublattice agreement (found labels mapped to the true
    sublattice most of their columns sit on; true columns of sublattices that were not found at
    all, e.g. faint oxygen, are counted apart), dopant precision / recall / F1 (true dopants with
    no found column count as missed), polarisation medians per truth domain (sign of the true
    displacement), and vacancy recall (a found vacancy row within ``MATCH_NM`` of a true one)."""
    from scipy.spatial import cKDTree

    t = truth_columns(simulation.truth.tables["atoms"], simulation.data)
    a = result.atoms
    imaged = a["imaged"].astype(bool) if "imaged" in a else a["cls"] != "vacancy"
    found = a[imaged].reset_index(drop=True)
    dist, idx = cKDTree(t[["x", "y"]].to_numpy(np.float64)).query(found[["x", "y"]].to_numpy(np.float64))
    ok = dist <= MATCH_NM
    f, true = found[ok], t.iloc[idx[ok]].reset_index(drop=True)
    d_nm = dist[ok]
    sub, tsub = f["sublattice"].to_numpy(), true["sublattice"].to_numpy()
    position = {}
    for s in sorted(int(v) for v in np.unique(sub) if v >= 0):
        fit = (sub == s) & f["fit_ok"].to_numpy(bool)
        position[s] = {"n": int(fit.sum()), "rms_pm": float(1e3 * np.sqrt(np.mean(d_nm[fit] ** 2))),
                       "median_pos_err_pm": float(1e3 * np.median(f["pos_err"].to_numpy()[fit]))}
    mapping = {s: int(pd.Series(tsub[sub == s]).mode()[0]) for s in position}
    on_found = np.isin(tsub, list(mapping.values()))
    mapped = np.array([mapping.get(int(s), -1) for s in sub])
    agree = float(np.mean(mapped[on_found] == tsub[on_found])) if on_found.any() else None
    is_dop, true_dop = (f["cls"] == "dopant").to_numpy(), (true["cls"] == "dopant").to_numpy()
    missed = int((t["cls"] == "dopant").sum()) - int(np.unique(idx[ok][true_dop]).size)
    dopants = _prf(int((is_dop & true_dop).sum()), int((is_dop & ~true_dop).sum()) + int(
        ((found["cls"] == "dopant").to_numpy() & ~ok).sum()), int((~is_dop & true_dop).sum()) + missed)
    scores: dict[str, Any] = {
        "matched": int(ok.sum()), "unmatched": int((~ok).sum()), "match_nm": MATCH_NM, "position": position,
        "sublattice_map": mapping, "sublattice_agreement": agree,
        "columns_on_sublattices_not_found": int((~on_found).sum()), "dopants": dopants}
    tv = t[t["cls"] == "vacancy"]
    vac = a[a["cls"] == "vacancy"]
    if len(tv):
        hit = 0
        if len(vac):
            dv, _ = cKDTree(vac[["x", "y"]].to_numpy(np.float64)).query(tv[["x", "y"]].to_numpy(np.float64))
            hit = int((dv <= MATCH_NM).sum())
        scores["vacancies"] = {"true": int(len(tv)), "found": int(len(vac)), "recall": hit / len(tv)}
    scores["polarisation"] = _polarisation_scores(result.polarisation, t)
    sub = result.summary.get("subsurface")
    sites = simulation.truth.tables.get("sites")
    if sub is not None and sites is not None:
        scores["subsurface"] = _site_scores(a[a["sublattice"] == sub["sublattice"]], sites, simulation.data)
        scores["dopants"] = scores["subsurface"]["dopants"]
    return scores


def _site_scores(found: pd.DataFrame, sites: pd.DataFrame, image: xr.DataArray) -> dict[str, Any]:
    """Classified hollow sites against the true sub-surface sites in the field (STM): dopant P/R/F1
    (true dopant sites without a predicted site count as missed) and vacancy recall."""
    from scipy.spatial import cKDTree

    t = truth_columns(sites[sites["in_image"]] if "in_image" in sites else sites, image)
    if not len(found) or not len(t):
        return {"true_sites": int(len(t)), "found_sites": int(len(found)), "dopants": _prf(0, 0, 0)}
    dist, idx = cKDTree(t[["x", "y"]].to_numpy(np.float64)).query(found[["x", "y"]].to_numpy(np.float64))
    ok = dist <= MATCH_NM
    cls, tcls = found["cls"].to_numpy(), t["cls"].to_numpy()[idx]
    out: dict[str, Any] = {"true_sites": int(len(t)), "found_sites": int(len(found)), "matched": int(ok.sum()),
                           "position_rms_pm": float(1e3 * np.sqrt(np.mean(dist[ok] ** 2))) if ok.any() else None}
    for c in ("dopant", "vacancy"):
        hit = ok & (tcls == c)
        tp = int((hit & (cls == c)).sum())
        fp = int(((cls == c) & ~hit).sum())
        fn = int((hit & (cls != c)).sum()) + int((t["cls"] == c).sum()) - int(np.unique(idx[hit]).size)
        out[f"{c}s" if c == "dopant" else "vacancy_sites"] = _prf(tp, fp, fn)
    return out


def _polarisation_scores(pol: pd.DataFrame, t: pd.DataFrame) -> list[dict[str, Any]]:
    """Median found (dx, dy) per truth domain (sign of the true displacement) against the true median (pm)."""
    from scipy.spatial import cKDTree

    if not len(pol) or not {"dx_pm", "dy_pm"} <= set(t.columns):
        return []
    shifted = t[(t["dx_pm"] != 0) | (t["dy_pm"] != 0)]
    pol = pol[pol["ok"].astype(bool)]
    if not len(shifted) or not len(pol):
        return []
    dist, idx = cKDTree(shifted[["x", "y"]].to_numpy(np.float64)).query(pol[["x", "y"]].to_numpy(np.float64))
    ok = dist <= MATCH_NM
    p, true = pol[ok], shifted.iloc[idx[ok]]
    key = [(int(a), int(b)) for a, b in zip(np.sign(true["dx_pm"].to_numpy()), np.sign(true["dy_pm"].to_numpy()))]
    rows = []
    for k in sorted(set(key)):
        sel = np.array([kk == k for kk in key])
        row = {"domain": f"sign(dx, dy) = ({k[0]:+d}, {k[1]:+d})", "n": int(sel.sum())}
        for c in ("dx_pm", "dy_pm"):
            row[f"true_{c}"] = float(np.median(true[c].to_numpy()[sel]))
            row[f"found_{c}"] = float(np.median(p[c].to_numpy()[sel]))
        rows.append(row)
    return rows


__all__ = ["atom_scores", "truth_columns"]
