"""Grade an unmixing against the simulation it came from.

:func:`unmix_scores` matches each recovered component to a true one by the Hungarian
assignment on spectral angle, then reports the issue's acceptance figures: abundance RMSE
(targets <= 0.05), spectral angle per component (<= 3 deg), the smallest endmember value
(no negative spectra) and, for Bayesian unmixing, how often the 95 % interval holds the
true abundance (90-98 %).

The truth is processed exactly as the data were, so the angle measures the unmixing, not
the preprocessing: EELS with background removal compares against each true pure spectrum
minus the power law fitted in the same window; CITS compares against the same
Savitzky-Golay dI/dV of the true endmember currents (and, for reference, against the
analytic dI/dV the simulator wrote). CITS abundances are graded against the *current
weights*, the coefficients of the linear model on I(V).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import InputError
from . import _unmix_prep as prep

TARGETS = {"abundance_rmse": 0.05, "angle_deg": 3.0, "coverage": (0.90, 0.98)}


def spectral_angles(E: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(k, t) angle in degrees between every recovered (rows of E) and true (rows of T) spectrum."""
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-300)
    Tn = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-300)
    return np.degrees(np.arccos(np.clip(En @ Tn.T, -1.0, 1.0)))


def _on_axis(truth_da, dim: str, axis: np.ndarray) -> np.ndarray:
    """True spectra (component, dim) interpolated onto the result's axis (e.g. cropped by zero-loss alignment)."""
    x = np.asarray(truth_da.coords[dim].values, dtype=np.float64) if dim in truth_da.coords else axis
    values = np.asarray(truth_da.transpose("component", ...).values, dtype=np.float64)
    if x.shape == axis.shape and np.allclose(x, axis):
        return values
    return np.vstack([np.interp(axis, x, v) for v in values])


def truth_spectra(result, simulation):
    """(truth processed like the data, truth as written, true abundances (y, x, component), component names).

    EELS: the true pure spectra, minus the power law fitted in the result's background window
    when the background was removed. CITS: the Savitzky-Golay dI/dV (the result's window and
    order) of the true endmember currents; as written, the simulator's analytic dI/dV; the true
    abundances are the current weights. Spectra are (component, channel) on the result's axis.
    """
    maps, s = result.maps, result.summary
    truth = simulation.truth.maps
    names = [str(c) for c in truth["component"].values] if "component" in truth.coords else None
    if s.get("kind") == "cits":
        if "current_weights" not in truth or "endmember_iv" not in truth:
            raise InputError("unmix_scores needs a CITS simulation with 'current_weights' and 'endmember_iv' truth")
        from ..spectra import savgol_didv

        axis = np.asarray(maps["bias"].values, dtype=np.float64)
        didv = s["preprocessing"]["didv"]
        T = savgol_didv(_on_axis(truth["endmember_iv"], "bias", axis), axis, window_v=didv["window_v"],
                        polyorder=didv["polyorder"])
        return T, _on_axis(truth["endmember_didv"], "bias", axis), truth["current_weights"], names
    if "abundances" not in truth or "endmembers" not in truth:
        raise InputError("unmix_scores needs an EELS simulation with 'abundances' and 'endmembers' truth")
    axis = np.asarray(maps["energy"].values, dtype=np.float64)
    T_raw = _on_axis(truth["endmembers"], "energy", axis)
    background = s["preprocessing"].get("background", {})
    T = T_raw if background.get("mode", "none") == "none" else prep.subtract_background(T_raw, axis,
                                                                                        background["window_ev"])
    return T, T_raw, truth["abundances"], names


def unmix_scores(result, simulation) -> dict[str, Any]:
    """Abundance RMSE, per-component spectral angle, smallest endmember value and interval coverage.

    Parameters
    ----------
    result : atomine.workflows.unmix.UnmixResult
    simulation : atomine.data.Simulation
        The ``eels-si*`` or ``cits-grid*`` simulation the data came from.

    Returns
    -------
    dict
        ``matches`` (recovered component -> true component name, angle in deg), ``angle_deg``
        (per matched component, against the truth processed like the data),
        ``angle_raw_deg`` (EELS: raw counts with background; CITS: against the analytic dI/dV),
        ``abundance_rmse`` (over all pixels and matched components), ``abundance_rmse_per_component``,
        ``endmember_min`` (smallest value of the non-negative spectra: EELS raw counts, CITS dI/dV),
        ``endmember_min_fraction`` (smallest value of ``endmember`` over its maximum), ``coverage`` (bayes)
        and ``coverage_hull`` (against the truth re-expressed on the data hull's vertices),
        ``n_components`` recovered / true, and ``passed`` against :data:`TARGETS`.
    """
    maps, s = result.maps, result.summary
    kind = s.get("kind")
    T, T_raw, ab_true, names = truth_spectra(result, simulation)
    E = maps["endmember"].values
    if kind == "cits":
        E_raw = nonneg = E
    else:
        E_raw = nonneg = maps["endmember_counts"].values if "endmember_counts" in maps else E
    A = maps["abundance"].transpose("y", "x", "component").values.reshape(-1, maps.sizes["component"])
    At = np.asarray(ab_true.transpose("y", "x", "component").values, dtype=np.float64).reshape(A.shape[0], -1)
    ang = spectral_angles(E, T)
    rows, cols = linear_sum_assignment(ang)
    ang_raw = spectral_angles(E_raw, T_raw)[rows, cols]
    err = A[:, rows] - At[:, cols]
    rmse = float(np.sqrt(np.mean(err**2)))
    scores: dict[str, Any] = {
        "n_components": int(A.shape[1]), "n_components_true": int(At.shape[1]),
        "matches": [{"component": int(r), "true": names[c] if names else int(c), "angle_deg": float(ang[r, c])}
                    for r, c in zip(rows, cols)],
        "angle_deg": [float(ang[r, c]) for r, c in zip(rows, cols)],
        "angle_raw_deg": [float(a) for a in ang_raw],
        "angle_raw_is": "raw counts incl. background" if kind != "cits" else "analytic dI/dV of the simulator",
        "abundance_rmse": rmse,
        "abundance_rmse_per_component": np.sqrt(np.mean(err**2, axis=0)).tolist(),
        "endmember_min": float(np.min(nonneg)),
        "endmember_min_fraction": float(np.min(E / np.maximum(np.max(np.abs(E), axis=1, keepdims=True), 1e-300))),
    }
    if "abundance_lo" in maps:
        lo = maps["abundance_lo"].transpose("y", "x", "component").values.reshape(A.shape)[:, rows]
        hi = maps["abundance_hi"].transpose("y", "x", "component").values.reshape(A.shape)[:, rows]
        truth_m = At[:, cols]
        scores["coverage"] = float(np.mean((truth_m >= lo) & (truth_m <= hi)))
        scores["interval_width_median"] = float(np.median(hi - lo))
        # What the data can identify: if every pixel holds at least m_k of component k, the pure
        # spectra are never seen and any method recovers the hull's vertices; scored against
        # (a - m) / (1 - sum m), the truth re-expressed on those vertices.
        m = truth_m.min(axis=0)
        hull = (truth_m - m) / max(1.0 - float(m.sum()), 1e-12)
        scores["coverage_hull"] = float(np.mean((hull >= lo) & (hull <= hi)))
        scores["truth_floor"] = m.tolist()
    passed = (rmse <= TARGETS["abundance_rmse"] and max(scores["angle_deg"]) <= TARGETS["angle_deg"]
              and scores["endmember_min"] >= 0 and A.shape[1] == At.shape[1])
    if "coverage" in scores:
        passed = passed and TARGETS["coverage"][0] <= scores["coverage"] <= TARGETS["coverage"][1]
    scores["passed"] = bool(passed)
    scores["targets"] = {"abundance_rmse": TARGETS["abundance_rmse"], "angle_deg": TARGETS["angle_deg"],
                         "coverage": list(TARGETS["coverage"]), "endmember_min": 0.0}
    return scores


__all__ = ["TARGETS", "spectral_angles", "truth_spectra", "unmix_scores"]
