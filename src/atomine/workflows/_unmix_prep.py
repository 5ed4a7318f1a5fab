"""Input checks and spectral preprocessing for :func:`~.unmix.unmix_spectra`.

What is unmixed, and why:

* EELS / EDS counts: the linear mixing model holds on the *raw counts* (each phase brings
  its own power-law background, so a mixed pixel's background is a sum of power laws with
  different exponents). A per-pixel power-law subtraction is not linear in the abundances:
  on 'eels-si-mixed' (seeds 0/1) FCLS abundance RMSE goes from 0.027/0.024 to 0.20/0.29. So the
  default ``background="endmember"`` fits the per-pixel background (window before the first
  edge, recorded with its per-pixel fit quality) but unmixes the raw counts, and removes the
  background from each *pure* endmember with the same window. ``background="pixel"``
  unmixes the per-pixel background-subtracted spectra instead; ``False`` keeps raw counts.
  Channels are weighted by 1/sqrt(mean spectrum) (Poisson noise made even across channels).
* CITS: the model holds on the current I(V) with the *current weights*; differentiation is
  linear, so it holds on dI/dV with the same weights. The grid is unmixed as dI/dV
  (Savitzky-Golay, cubic, 5 % of the sweep: quadratic fits of the same window bias narrow
  resonances by ~4 deg of spectral angle). The number of components is estimated on I(V),
  whose noise is nearly white; the derivative filter correlates neighbouring channels.
* EDS counts: linear on the raw counts too (each phase brings its own bremsstrahlung), so no
  background is removed. The energy axis is put in eV and channels below 0.15 keV dropped:
  the detector's zero-energy noise (strobe) peak there follows the pulse processor, not the
  specimen, and holds most of a Velox file's counts (82 % on HyperSpy's SuperX file). The
  elements of the summed spectrum are identified (:func:`atomine.spectra.identify_lines`) and
  their principal lines mapped (:func:`atomine.spectra.elemental_maps`, maps ``eds_<El>_<line>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..data import signal_kind
from ..errors import CalibrationError, InputError
from ._unmix_steps import eds_step, lowloss_step, pixel_map

BACKGROUND_MODES = ("endmember", "pixel", "none")
DIDV_POLYORDER = 3
_K_DROP = 0.05  # one more component must cut the held-out error by 5 % to count (noise gives < 1.5 %)
_K_MAX = 10


@dataclass
class Prepared:
    """The matrix to unmix and everything the preprocessing recorded.

    X : (n, m) float64 data to unmix, in data units (counts, A/V)
    weights : (m,) channel weights (1 where unweighted)
    k_data : (n, m') matrix the number of components is estimated on
    axis, dim, axis_units, units : the spectral axis (values, name, units) and the value units
    kind : "eels", "eds" or "cits"
    maps : per-pixel diagnostics (y, x) DataArrays (background fit quality, t/lambda, ...)
    info : JSON-able record of every preprocessing step
    """

    X: np.ndarray
    weights: np.ndarray
    k_data: np.ndarray
    axis: np.ndarray
    dim: str
    axis_units: str
    units: str
    kind: str
    shape: tuple[int, int]
    si: xr.DataArray
    maps: dict[str, xr.DataArray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    background_window: tuple[float, float] | None = None


def check_input(si) -> tuple[xr.DataArray, str]:
    """The spectrum image / CITS grid in memory and its kind ("eels", "eds" or "cits"), else one clear error."""
    if not isinstance(si, xr.DataArray):
        raise InputError("unmix_spectra needs an xarray.DataArray with dims ('y', 'x', 'energy') or ('y', 'x', 'bias') "
                         f"(build it with atomine.data.spectrum_image / cits_grid), got {type(si).__name__}")
    kind = signal_kind(si)
    if kind not in ("spectrum_image", "cits"):
        raise InputError(f"unmix_spectra needs dims ('y', 'x', 'energy') (EELS/EDS) or ('y', 'x', 'bias') (CITS), got "
                         f"dims {tuple(map(str, si.dims))} with shape {si.shape}")
    dim = si.dims[-1]
    if dim not in si.coords:
        raise CalibrationError(f"the {dim} axis has no calibration; build the data with atomine.data")
    axis = np.asarray(si.coords[dim].values, dtype=np.float64)
    if axis.size < 5 or si.sizes["y"] * si.sizes["x"] < 2:
        raise InputError(f"the data have {si.sizes['y'] * si.sizes['x']} pixel(s) and {axis.size} channels; unmixing "
                         "needs at least 2 pixels and 5 channels")
    d = np.diff(axis)
    if not np.all(np.isfinite(axis)) or not (np.all(d > 0) or np.all(d < 0)):
        raise CalibrationError(f"the {dim} axis is not finite and strictly monotonic; fix its calibration")
    if not np.allclose(d, d.mean(), rtol=1e-3, atol=0.0):
        raise CalibrationError(f"the {dim} axis is not evenly spaced (steps {d.min():g}..{d.max():g}); resample it "
                               "onto a uniform axis first")
    if kind == "spectrum_image" and d[0] < 0:
        raise CalibrationError("the energy axis decreases; reverse it (and the data) so energy loss increases")
    data = si.data.compute() if hasattr(si.data, "compute") else si.data
    data = np.asarray(data, dtype=np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        chans = int(np.any(bad.reshape(-1, axis.size), axis=0).sum())
        raise InputError(f"the data hold {int(bad.sum())} NaN/inf values in {chans} channel(s); crop or interpolate "
                         "them before unmixing")
    si = si.copy(data=data)
    if kind == "cits":
        return si, "cits"
    signal = str(si.attrs.get("signal", "")).upper()
    return si, ("eds" if signal in ("EDS", "EDX", "XEDS") else "eels")


def poisson_channel_weights(X: np.ndarray) -> tuple[np.ndarray, str]:
    """1 / sqrt(mean spectrum): even Poisson noise across channels (abundances keep summing to one)."""
    try:
        from ..spectra import poisson_weights
    except ImportError:  # pragma: no cover - the spectra helper landed with this step
        poisson_weights = None
    if poisson_weights is not None:
        # the channel factor only: a pixel factor would make abundance rows stop summing to one
        channel = np.asarray(poisson_weights(X).channel, dtype=np.float64)
        return 1.0 / channel, "atomine.spectra.poisson_weights, channel factor"
    mean = X.mean(axis=0)
    if np.any(mean < 0):
        raise InputError("Poisson weighting needs counts (a non-negative mean spectrum); use weighting=None")
    # an empty channel has no noise to even out; its weight is that of the faintest non-empty one
    floor = np.min(mean[mean > 0]) if np.any(mean > 0) else 1.0
    return 1.0 / np.sqrt(np.maximum(mean, floor)), "inline 1/sqrt(mean spectrum)"


def choose_k(Z: np.ndarray, random_state) -> tuple[int, dict[str, Any]]:
    """The number of components from bi-cross-validation (``estimate_n_components(method="cv")``).

    K is the smallest k after which one more component lowers the held-out prediction error
    by less than 5 % (on the simulated EELS and CITS data signal components lower it by
    30-96 %, noise components by less than 1.5 %), and never more than the error's minimum.
    """
    from ..unmix import estimate_n_components

    Zs = Z / max(float(np.sqrt(np.mean(Z * Z))), np.finfo(float).tiny)
    k_min, est = estimate_n_components(Zs, "cv", max_components=min(_K_MAX, Z.shape[0] - 1, Z.shape[1]),
                                       random_state=random_state)
    err = np.asarray(est.criterion, dtype=np.float64)
    drop = (err[:-1] - err[1:]) / np.maximum(err[:-1], np.finfo(float).tiny)
    small = np.flatnonzero(drop < _K_DROP)
    k = int(min(small[0] + 1 if small.size else len(err), k_min))
    return max(k, 1), {"chosen": "bi-cross-validation", "criterion": "bi-cross-validation (estimate_n_components method='cv'): smallest k after "
                                    f"which one more component cuts the held-out error by < {100 * _K_DROP:g} %",
                       "k": est.k.tolist(), "heldout_error": err.tolist(),
                       "relative_drop": drop.tolist(), "cv_minimum_k": int(k_min)}


def _background(si: xr.DataArray, mode: str, info: dict, maps: dict):
    """Per-pixel power-law fit before the first edge; returns (subtracted data or None, window)."""
    from ..spectra import remove_background

    ds = remove_background(si)
    window = tuple(float(v) for v in ds.attrs["window_ev"])
    maps["background_r"] = pixel_map(ds["r"].values, si, "background_r", "1", "power-law exponent r of A E^-r")
    maps["background_chi2_red"] = pixel_map(ds["chi2_red"].values, si, "background_chi2_red", "1",
                                             "reduced chi-square of the per-pixel background fit")
    maps["background_r_squared"] = pixel_map(ds["r_squared"].values, si, "background_r_squared", "1",
                                              "fraction of the window's variance the background fit explains")
    chi2 = ds["chi2_red"].values
    info["background"] = {
        "mode": mode, "model": "A E^-r, Poisson-weighted log-log least squares (atomine.spectra.remove_background)",
        "window_ev": list(window), "first_edge": ds.attrs.get("first_edge", ""),
        "pixel_r_median": float(np.nanmedian(ds["r"].values)),
        "pixel_r_iqr": [float(v) for v in np.nanpercentile(ds["r"].values, [25, 75])],
        "pixel_chi2_red_median": float(np.nanmedian(chi2)),
        "pixel_chi2_red_p95": float(np.nanpercentile(chi2, 95)),
        "unmixed": ("raw counts; each endmember's own background removed with the same window afterwards (the "
                    "mixing model is linear on raw counts)") if mode == "endmember" else
                   "per-pixel background-subtracted counts",
    }
    signal = np.asarray(ds["signal"].values, dtype=np.float64) if mode == "pixel" else None
    return signal, window


def prepare(si: xr.DataArray, kind: str, *, background, lowloss, weighting, random_state,
            need_k: bool) -> Prepared:
    """Preprocess the checked input into the matrix to unmix (see the module docstring)."""
    maps: dict[str, xr.DataArray] = {}
    info: dict[str, Any] = {"kind": kind}
    if weighting not in ("poisson", None):
        raise InputError(f"weighting must be 'poisson' or None, got {weighting!r}")
    mode = _background_mode(background, kind)
    window = None
    if kind == "cits":
        if lowloss is not None:
            raise InputError("lowloss applies to EELS only; a CITS grid has no zero-loss peak")
        from ..spectra import savgol_didv

        bias = np.asarray(si.coords["bias"].values, dtype=np.float64)
        iv = np.asarray(si.data, dtype=np.float64).reshape(-1, bias.size)
        X = savgol_didv(iv, bias, polyorder=DIDV_POLYORDER)
        window_v = 0.05 * abs(bias[-1] - bias[0])
        info["didv"] = {"method": "Savitzky-Golay derivative (atomine.spectra.savgol_didv)", "window_v": window_v,
                        "polyorder": DIDV_POLYORDER, "model": "I = sum_k w_k I_k holds on dI/dV with the same "
                                                              "current weights w_k"}
        weights = np.ones(bias.size)
        info["weighting"] = "none (CITS: Gaussian current noise, even across the bias)"
        units = f"{si.attrs.get('units', 'A')}/V"
        k_data = iv
        dim, axis = "bias", bias
    else:
        if lowloss is not None:
            if kind != "eels":
                raise InputError("lowloss applies to EELS only")
            si = lowloss_step(si, lowloss, info, maps)
        if kind == "eds":
            si = eds_step(si, info, maps)
        energy = np.asarray(si.coords["energy"].values, dtype=np.float64)
        raw = np.asarray(si.data, dtype=np.float64).reshape(-1, energy.size)
        X = raw
        if mode != "none":
            sub, window = _background(si, mode, info, maps)
            if sub is not None:
                X = sub.reshape(-1, energy.size)
        else:
            info["background"] = {"mode": "none", "unmixed": "raw counts"}
        if weighting == "poisson":
            weights, how = poisson_channel_weights(raw)
            info["weighting"] = f"Poisson: channels scaled by 1/sqrt(mean spectrum) ({how})"
        else:
            weights = np.ones(energy.size)
            info["weighting"] = "none"
        units = str(si.attrs.get("units", "counts"))
        k_data = X * weights
        dim, axis = "energy", energy
    ny, nx = si.shape[:2]
    return Prepared(X, weights, k_data if need_k else np.empty((0, 0)), axis, dim,
                    str(si.coords[dim].attrs.get("units", "eV" if dim == "energy" else "V")), units, kind, (ny, nx),
                    si, maps, info, window)


def _background_mode(background, kind: str) -> str:
    if background is None or background is False:
        return "none"
    if background is True:
        return "endmember" if kind == "eels" else "none"
    if background not in BACKGROUND_MODES:
        raise InputError(f"background must be True, False, or one of {', '.join(BACKGROUND_MODES)}; got {background!r}")
    if background != "none" and kind != "eels":
        raise InputError(f"background={background!r} is the EELS power-law background; it does not apply to {kind} data")
    return background


def subtract_background(E: np.ndarray, energy: np.ndarray, window) -> np.ndarray:
    """Each spectrum minus the power law ``A E^-r`` fitted in ``window`` (eV): the same processing as the pixels."""
    from ..spectra import fit_power_law, power_law

    p = fit_power_law(np.asarray(E, dtype=np.float64), energy, window)
    return E - power_law(energy, np.nan_to_num(p[:, 0]), np.nan_to_num(p[:, 1]))


def references_matrix(references, axis: np.ndarray, dim: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(r, m) reference spectra on the data axis, their names, and a note per resampled one.

    A DataArray on another axis is resampled by linear interpolation when its axis covers the
    data's; a plain array must already have one value per data channel.
    """
    if references is None:
        return np.empty((0, axis.size)), [], []
    if isinstance(references, (xr.DataArray, np.ndarray)) and np.ndim(references) == 1:
        references = [references]
    rows, names, notes = [], [], []
    for i, ref in enumerate(references):
        name = str(ref.name) if isinstance(ref, xr.DataArray) and ref.name is not None else f"reference {i + 1}"
        if isinstance(ref, xr.DataArray) and ref.ndim == 1 and ref.dims[0] in ref.coords and str(
                ref.coords[ref.dims[0]].attrs.get("units", "")) in ("channel", "px", "pixel"):
            ref = ref.values  # uncalibrated (e.g. a .npy): one value per data channel, like a plain array
        if isinstance(ref, xr.DataArray):
            if ref.ndim != 1 or ref.dims[0] not in (dim, "energy", "bias") or ref.dims[0] not in ref.coords:
                raise InputError(f"reference {name!r} must be a 1-D spectrum with a calibrated {dim!r} axis, got dims "
                                 f"{tuple(map(str, ref.dims))}")
            x = np.asarray(ref.coords[ref.dims[0]].values, dtype=np.float64)
            y = np.asarray(ref.values, dtype=np.float64)
            if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
                raise InputError(f"reference {name!r} holds NaN or inf values")
            order = np.argsort(x)
            x, y = x[order], y[order]
            if np.any(np.diff(x) <= 0):
                raise CalibrationError(f"reference {name!r}: its {dim} axis repeats values; fix its calibration")
            lo, hi = float(axis.min()), float(axis.max())
            tol = 1e-6 * max(abs(hi - lo), 1e-12)
            if x[0] > lo + tol or x[-1] < hi - tol:
                raise InputError(f"reference {name!r} covers {x[0]:g}..{x[-1]:g} but the data span {lo:g}..{hi:g} "
                                 f"({dim}); give a reference that covers the data's range")
            if x.size != axis.size or not np.allclose(x, np.sort(axis)):
                notes.append(f"{name}: resampled by linear interpolation from {x.size} points on "
                             f"{x[0]:g}..{x[-1]:g} onto the data's {axis.size} channels")
            rows.append(np.interp(axis, x, y))
        else:
            y = np.asarray(ref, dtype=np.float64)
            if y.shape != axis.shape:
                raise InputError(f"reference {name!r} has {y.size} values but the data have {axis.size} channels; "
                                 "give it as a DataArray with its own axis to have it resampled")
            if not np.all(np.isfinite(y)):
                raise InputError(f"reference {name!r} holds NaN or inf values")
            rows.append(y)
        names.append(name)
    return np.vstack(rows), names, notes


__all__ = ["BACKGROUND_MODES", "Prepared", "check_input", "choose_k", "poisson_channel_weights", "prepare",
           "references_matrix", "subtract_background"]
