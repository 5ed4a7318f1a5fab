"""How well a segmentation matches a simulation's ground truth (demo, validation and tests share it).

* Phase map: adjusted Rand index (label names do not matter) at image resolution against
  the truth regions, a region being one (phase, rotation) combination of the simulated
  grains, so two inclusions of one phase are one region and grains of one structure at
  different orientations are different regions.
* Dislocations: each simulated core matched to the nearest reported core; distances,
  Burgers-vector errors and the number of reported cores matching none (false).
* Rotation and strain: at every lattice window lying wholly inside one grain, the measured
  rotation against the truth (grain rotation minus that of the reference grain, modulo the
  lattice symmetry) and the measured strain against zero (the simulated grains are
  unstrained; images with dislocations are scored on cores only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

from ..data import Simulation
from .segment import SegmentResult


def truth_regions(sim: Simulation) -> np.ndarray:
    """(y, x) int labels of the distinct (phase, rotation) combinations of the simulated grains."""
    grain = sim.truth.maps["grain"].values
    table = sim.truth.tables["grains"]
    keys = list(zip(table["phase"].to_numpy(), np.round(table["rotation_deg"].to_numpy(), 6)))
    codes = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    lookup = np.zeros(int(table["grain"].max()) + 1, dtype=np.int64)
    lookup[table["grain"].to_numpy()] = [codes[key] for key in keys]
    return lookup[grain]


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    if len(np.unique(a)) == 1 and len(np.unique(b)) == 1:
        return 1.0  # both say "one region": a perfect match, which the index's formula leaves undefined
    return float(adjusted_rand_score(a.ravel(), b.ravel()))


def _dislocation_scores(result: SegmentResult, sim: Simulation) -> dict[str, Any]:
    truth = sim.truth.tables.get("dislocations")
    found = result.defects[result.defects["kind"] == "dislocation"]
    n_true = 0 if truth is None else len(truth)
    out: dict[str, Any] = {"true": n_true, "found": int(len(found))}
    if n_true == 0:
        out["false"] = int(len(found))
        return out
    step_nm = result.parameters["step"] * abs(float(result.maps.x[1] - result.maps.x[0]))
    distances, burgers = [], []
    matched = set()
    for _, t in truth.iterrows():
        if len(found) == 0:
            distances.append(np.inf)
            burgers.append(np.inf)
            continue
        d = np.hypot(found["x"].to_numpy() - t["x_nm"], found["y"].to_numpy() - t["y_nm"])
        i = int(np.argmin(d))
        matched.add(i)
        distances.append(float(d[i]))
        burgers.append(float(np.hypot(found["bx"].iloc[i] - t["bx_nm"], found["by"].iloc[i] - t["by_nm"])))
    out.update(distance_nm=distances, burgers_error_nm=burgers, window_step_nm=step_nm,
               within_2_steps=bool(np.all(np.asarray(distances) <= 2 * step_nm)),
               false=int(len(found) - len(matched)))
    return out


def _interior_windows(result: SegmentResult, grain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grain of each lattice window and whether the whole window lies in it."""
    w = int(result.parameters["lattice_window"])
    lo = ndimage.minimum_filter(grain, size=w, mode="nearest")
    hi = ndimage.maximum_filter(grain, size=w, mode="nearest")
    x, y = result.maps.x.values, result.maps.y.values
    iy = np.clip(np.rint((result.maps.lwy.values - y[0]) / (y[1] - y[0])).astype(int), 0, y.size - 1)
    ix = np.clip(np.rint((result.maps.lwx.values - x[0]) / (x[1] - x[0])).astype(int), 0, x.size - 1)
    inside = (lo == hi)[np.ix_(iy, ix)]
    return grain[np.ix_(iy, ix)], inside


def _order_scores(result: SegmentResult, sim: Simulation) -> dict[str, Any]:
    grain = sim.truth.maps["grain"].values.astype(np.int64)
    table = sim.truth.tables["grains"].set_index("grain")
    wgrain, inside = _interior_windows(result, grain)
    rot = result.maps["lattice_rotation"].values
    ok = inside & np.isfinite(rot)
    if not np.any(ok):
        return {"interior_windows": 0}
    # the zero of rotation is the grain holding most of the reference phase's windows
    ref_grain = int(np.bincount(wgrain[ok]).argmax()) if result.summary["lattice"].get("reference_phase") is None \
        else int(np.bincount(wgrain[ok & (_lattice_phase(result) == result.summary["lattice"]["reference_phase"])],
                             minlength=1).argmax())
    period = float(result.summary["lattice"].get("symmetry_period_deg") or 90.0)
    truth_rot = table.loc[wgrain.ravel(), "rotation_deg"].to_numpy().reshape(wgrain.shape) \
        - float(table.loc[ref_grain, "rotation_deg"])
    err = (rot - truth_rot + 0.5 * period) % period - 0.5 * period
    out: dict[str, Any] = {"interior_windows": int(ok.sum()), "reference_grain": ref_grain,
                           "rotation_error_max_deg": float(np.max(np.abs(err[ok]))),
                           "rotation_error_rms_deg": float(np.sqrt(np.mean(err[ok] ** 2)))}
    strain = np.stack([result.maps[f"lattice_{c}"].values for c in ("exx", "eyy", "exy")])
    if "ux" in sim.truth.maps and "uy" in sim.truth.maps:
        # an elastic field: compare with the simulated displacement's gradient, averaged over each
        # window as the window's taper weights it, away from the cores where it is not small
        truth_rot_f, truth_strain = _elastic_truth(result, sim)
        # the measurement is against the median lattice of the phase's windows, not the undistorted
        # cell (the extra half planes strain the average): refer the truth to the same windows' median
        measured = np.isfinite(rot)
        truth_rot_f = truth_rot_f - np.median(truth_rot_f[measured])
        truth_strain = truth_strain - np.median(truth_strain[:, measured], axis=1)[:, None, None]
        far = _far_from_cores(result, sim)
        ok = ok & far
        err = rot - (truth_rot + truth_rot_f)
        err = (err + 0.5 * period) % period - 0.5 * period
        out.update(interior_windows=int(ok.sum()), compared_with="elastic field referred to its median over the measured windows, windows > 0.75 window from cores",
                   rotation_error_max_deg=float(np.max(np.abs(err[ok]))) if ok.any() else None,
                   rotation_error_rms_deg=float(np.sqrt(np.mean(err[ok] ** 2))) if ok.any() else None)
        strain = strain - truth_strain
    s = np.abs(strain[:, ok])
    if s.size:
        out.update(strain_error_max=float(np.nanmax(s)), strain_error_rms=float(np.sqrt(np.nanmean(s ** 2))))
    return out


def _elastic_truth(result: SegmentResult, sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (deg) and strain (exx, eyy, exy) of the simulated displacement, taper-averaged per lattice window."""
    ux = sim.truth.maps["ux"].values.astype(np.float64)
    uy = sim.truth.maps["uy"].values.astype(np.float64)
    h = abs(float(result.maps.x[1] - result.maps.x[0]))
    cores = sim.truth.tables["dislocations"]
    b = float(np.max(np.hypot(cores["bx_nm"], cores["by_nm"])))
    dux_dy, dux_dx = _wrapped_gradient(ux, h, b)
    duy_dy, duy_dx = _wrapped_gradient(uy, h, b)
    # y grows downward: counter-clockwise as displayed is +0.5 (dux/dy - duy/dx)
    fields = [np.degrees(0.5 * (dux_dy - duy_dx)), dux_dx, duy_dy, 0.5 * (dux_dy + duy_dx)]
    w = int(result.parameters["lattice_window"])
    taper = np.hanning(w + 2)[1:-1]
    taper2 = np.outer(taper, taper)
    taper2 /= taper2.sum()
    x, y = result.maps.x.values, result.maps.y.values
    iy = np.clip(np.rint((result.maps.lwy.values - y[0]) / (y[1] - y[0])).astype(int), 0, y.size - 1)
    ix = np.clip(np.rint((result.maps.lwx.values - x[0]) / (x[1] - x[0])).astype(int), 0, x.size - 1)
    averaged = [fftconvolve(f, taper2[::-1, ::-1], mode="same")[np.ix_(iy, ix)] for f in fields]
    return averaged[0], np.stack(averaged[1:])


def _wrapped_gradient(u: np.ndarray, h: float, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient (d/dy, d/dx) of a displacement defined modulo a lattice vector.

    The displacement of a dislocation jumps by the Burgers vector across its cut; taking
    differences modulo that length removes the jump, leaving the elastic gradient.
    """
    def diff(axis):
        d = np.diff(u, axis=axis)
        d = (d + 0.5 * period) % period - 0.5 * period
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 1)
        d = np.pad(d, pad, mode="edge")
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        return 0.5 * (d[tuple(lo)] + d[tuple(hi)]) / h
    return diff(0), diff(1)


def _far_from_cores(result: SegmentResult, sim: Simulation) -> np.ndarray:
    cores = sim.truth.tables["dislocations"]
    w_nm = int(result.parameters["lattice_window"]) * abs(float(result.maps.x[1] - result.maps.x[0]))
    yy, xx = np.meshgrid(result.maps.lwy.values, result.maps.lwx.values, indexing="ij")
    far = np.ones(yy.shape, dtype=bool)
    for _, c in cores.iterrows():
        far &= np.hypot(xx - c["x_nm"], yy - c["y_nm"]) > 0.75 * w_nm
    return far


def _lattice_phase(result: SegmentResult) -> np.ndarray:
    """Phase label of each lattice window (nearest segmentation window)."""
    wp = result.maps["window_phase"]
    return wp.sel(wy=result.maps.lwy, wx=result.maps.lwx, method="nearest").values


def segmentation_scores(result: SegmentResult, sim: Simulation) -> dict[str, Any]:
    """Phase-map ARI, dislocation matching, rotation and strain errors against the simulation's truth."""
    regions = truth_regions(sim)
    return {"n_regions_true": int(len(np.unique(regions))), "n_phases_found": int(result.summary["n_components"]),
            "ari": _ari(regions, np.asarray(result.maps["phase"].values)),
            "dislocations": _dislocation_scores(result, sim), "order": _order_scores(result, sim)}


__all__ = ["segmentation_scores", "truth_regions"]
