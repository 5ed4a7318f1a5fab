"""Tables of the segmentation report: parameters and outcome, and the ground-truth scores with a verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data import axis_units
from .html import Row, Section, Table, Text

# the targets: ARI, cores within this many window steps, rotation and strain errors
TARGETS = {"ari": 0.9, "core_steps": 2.0, "rotation_deg": 0.5, "strain_percent": 0.5}


def _phase_info(result, i: int) -> dict:
    phases = result.summary.get("lattice", {}).get("phases", {})
    return phases.get(i, phases.get(str(i), {})) or {}  # int keys in memory, str keys after JSON


def summary_section(result, image: xr.DataArray) -> Section:
    s = result.summary
    units = axis_units(image, "x") or "px"
    px = abs(float(image.x[1] - image.x[0])) if image.sizes["x"] > 1 else 1.0
    k = int(s["n_components"])
    rows = [("window", f"{s['window_px']} px = {s['window_px'] * px:.4g} {units}"),
            ("step", f"{s['step_px']} px = {s['step_px'] * px:.4g} {units}"),
            ("lattice window", f"{s['lattice_window_px']} px = {s['lattice_window_px'] * px:.4g} {units}"),
            ("band limit k_max", f"{s['k_max']:.4g} {s.get('k_units', '')}"),
            ("method", str(s["method"])), ("windows", str(s.get("n_windows", ""))),
            ("number of phases", f"{k} ({s.get('n_components_chosen', '')})"),
            ("defect windows", f"{100 * s.get('defect_window_fraction', 0):.2f} %"),
            ("reference phase", str(s.get("lattice", {}).get("reference_phase"))),
            ("total time", f"{result.elapsed_s:.2f} s")]
    phases = pd.DataFrame([{"phase": i, "windows": 100 * s["phase_window_fraction"][i],
                            "a1": _phase_info(result, i).get("a1_nm", np.nan),
                            "a2": _phase_info(result, i).get("a2_nm", np.nan),
                            "orientation offset": _phase_info(result, i).get("orientation_offset_deg", np.nan)}
                           for i in range(k)])
    blocks = [Row([Table(pd.DataFrame(rows, columns=["quantity", "value"]), caption="parameters and outcome"),
                   Table(phases, caption="phases: window fraction and lattice (a1, a2 from the local FFT peaks)",
                         units={"windows": "%", "a1": "nm", "a2": "nm", "orientation offset": "deg"})])]
    criterion = s.get("n_components_criterion") or []
    if criterion:
        blocks.append(Table(pd.DataFrame(criterion), caption="choice of the number of phases (largest silhouette "
                                                             "among k with enough pure windows)"))
    counts = pd.DataFrame(sorted(s.get("defect_counts", {}).items()), columns=["kind", "count"])
    timings = pd.DataFrame(list(s.get("timings_s", {}).items()), columns=["stage", "time"])
    blocks.append(Row([Table(counts, caption="defects by kind"),
                       Table(timings, caption="time per stage", units={"time": "s"})]))
    return Section("Segmentation summary", blocks)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "not measured"
    return "none found" if isinstance(v, float) and np.isinf(v) else f"{v:.6g}"  # inf: no core to match


def _score_rows(scores: dict) -> list[tuple[str, object, str, object]]:
    """(score, value, target, met) rows of :func:`~atomine.workflows.segment_truth.segmentation_scores`."""
    d, o = scores.get("dislocations", {}), scores.get("order", {})
    dist = d.get("distance_nm") or []
    step2 = TARGETS["core_steps"] * d["window_step_nm"] if "window_step_nm" in d else None
    rot, strain = o.get("rotation_error_max_deg"), o.get("strain_error_max")

    def met(value, limit, below=True):
        return None if value is None or limit is None else bool(value <= limit if below else value >= limit)

    return [
        ("adjusted Rand index of the phase map", scores["ari"], f">= {TARGETS['ari']}",
         met(scores["ari"], TARGETS["ari"], below=False)),
        ("phases found / true regions", f"{scores['n_phases_found']} / {scores['n_regions_true']}", "", None),
        ("dislocation cores found / true", f"{d.get('found', 0)} / {d.get('true', 0)}", "", None),
        ("largest core distance (nm)", max(dist) if dist else None, f"<= {step2:.4g} (2 steps)" if step2 else "",
         met(max(dist), step2) if dist else None),
        ("false cores", d.get("false", 0), "0", d.get("false", 0) == 0),
        ("largest Burgers-vector error (nm)", max(d["burgers_error_nm"]) if d.get("burgers_error_nm") else None,
         "", None),
        ("largest rotation error (deg)", rot, f"<= {TARGETS['rotation_deg']}", met(rot, TARGETS["rotation_deg"])),
        ("rms rotation error (deg)", o.get("rotation_error_rms_deg"), "", None),
        ("largest strain error (%)", None if strain is None else 100 * strain, f"<= {TARGETS['strain_percent']}",
         met(None if strain is None else 100 * strain, TARGETS["strain_percent"])),
        ("rms strain error (%)", None if o.get("strain_error_rms") is None else 100 * o["strain_error_rms"], "", None),
        ("lattice windows scored", o.get("interior_windows", 0), "", None),
    ]


def truth_section(result, truth) -> Section:
    from ..workflows.segment_truth import segmentation_scores

    scores = segmentation_scores(result, truth)
    rows = _score_rows(scores)
    frame = pd.DataFrame([(n, v if isinstance(v, str) else _fmt(v), t, "" if m is None else ("yes" if m else "NO"))
                          for n, v, t, m in rows], columns=["score", "value", "target", "met"])
    failed = [n for n, _, _, m in rows if m is False]
    unscored = [n for n, v, t, m in rows if t and m is None]
    verdict = ("PASS: every target of issue 3 is met" if not failed else "FAIL: " + "; ".join(failed))
    if unscored:
        verdict += " (not measured here: " + "; ".join(unscored) + ")"
    blocks = [Text(verdict, "" if not failed else "warn"), Table(frame, caption=(
        "against the simulation's ground truth: rotation and strain at lattice windows wholly inside one grain "
        "(and away from dislocation cores)"))]
    true_cores = truth.truth.tables.get("dislocations")
    if true_cores is not None and len(true_cores) and scores["dislocations"].get("distance_nm"):
        cores = true_cores[["x_nm", "y_nm", "bx_nm", "by_nm"]].copy()
        cores["distance to found core_nm"] = scores["dislocations"]["distance_nm"]
        cores["Burgers error_nm"] = scores["dislocations"]["burgers_error_nm"]
        blocks.append(Table(cores, caption="each true dislocation core and the nearest found one",
                            units={c: "nm" for c in cores.columns}))
    return Section("Ground-truth scores", blocks)


__all__ = ["TARGETS", "summary_section", "truth_section"]
