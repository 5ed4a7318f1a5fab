"""Power-law background ``A E^-r`` of core-loss EELS: fitted per pixel in a pre-edge window and removed.

The fit is the Poisson maximum-likelihood fit of ``mu = exp(a + b ln E)`` to the counts in
the window, solved by iteratively reweighted least squares: each iteration is a weighted
*linear* least-squares fit of the linearised log counts ``z = ln mu + (N - mu) / mu`` against
``ln E`` with weights ``mu`` (the inverse variance of ``ln N`` for Poisson counts). The
first iteration uses ``ln N`` weighted by ``N``, the classic weighted log-log fit; the
following ones remove its bias at low counts and accept empty channels. Every step is a
closed-form 2x2 solve, so all pixels are fitted at once with array arithmetic.

Quality per pixel: ``chi2_red`` (Pearson chi-square per degree of freedom; about 1 for
Poisson counts when the power law holds), ``r_squared`` (fraction of the counts' variance
in the window that the fit explains) and ``r_err`` (standard error of r, scaled by
``sqrt(chi2_red)`` so it also holds for data not in raw counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data import array_hash, with_step
from ..errors import InputError
from ._checks import check_finite, is_dask, map_pixels, number, spectral_data, uniform_axis, window_slice
from .edges import find_edges

PARAMS = ("A", "r", "r_err", "chi2_red", "r_squared")
MIN_CHANNELS = 5  # two parameters plus enough degrees of freedom for a quality measure


def _wls_line(x: np.ndarray, z: np.ndarray, w: np.ndarray):
    """Per-row weighted least squares of z = a + b x; returns (a, b, var_b_unscaled)."""
    s0 = w.sum(-1)
    s1 = (w * x).sum(-1)
    s2 = (w * x * x).sum(-1)
    t0 = (w * z).sum(-1)
    t1 = (w * x * z).sum(-1)
    det = s0 * s2 - s1 * s1
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (s0 * t1 - s1 * t0) / det
        a = (t0 - b * s1) / s0
        var_b = s0 / det
    return a, b, var_b


def _fit_block(counts: np.ndarray, x: np.ndarray, log_ref: float, n_iter: int) -> np.ndarray:
    """(..., 5) of A, r, r_err, chi2_red, r_squared for counts (..., n_window) at x = ln(E / E_ref)."""
    n = counts
    w = np.maximum(n, 1.0)
    a, b, var_b = _wls_line(x, np.log(w), w)  # weighted log-log fit: ln N, weights N
    for _ in range(n_iter):  # Poisson IRLS: linearised log counts, weights = model counts
        mu = np.exp(np.clip(a[..., None] + b[..., None] * x, -700.0, 700.0))
        mu = np.maximum(mu, 1e-300)
        z = np.log(mu) + (n - mu) / mu
        a, b, var_b = _wls_line(x, z, mu)
    mu = np.exp(np.clip(a[..., None] + b[..., None] * x, -700.0, 700.0))
    dof = max(x.size - 2, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = (((n - mu) ** 2) / np.maximum(mu, 1e-300)).sum(-1) / dof
        ss_res = ((n - mu) ** 2).sum(-1)
        ss_tot = ((n - n.mean(-1, keepdims=True)) ** 2).sum(-1)
        r_sq = 1.0 - ss_res / ss_tot
    r = -b
    amp = np.exp(a + r * log_ref)  # A in A E^-r with E in eV
    r_err = np.sqrt(var_b * np.maximum(chi2, 1e-300))
    empty = n.sum(-1) <= 0  # nothing to fit: no background, no exponent
    amp = np.where(empty, 0.0, amp)
    r, r_err, chi2, r_sq = (np.where(empty, np.nan, v) for v in (r, r_err, chi2, r_sq))
    return np.stack([amp, r, r_err, chi2, r_sq], axis=-1)


def power_law(energy, A, r):
    """``A E^-r`` on the energy axis (eV) for every pixel: maps (...) -> (..., n_e)."""
    e = np.asarray(energy, dtype=np.float64)
    A = A[..., None] if hasattr(A, "ndim") and A.ndim else A
    r = r[..., None] if hasattr(r, "ndim") and r.ndim else r
    return A * e ** (-r)


def fit_power_law(counts, energy, window, *, n_iter: int = 3):
    """Fit ``A E^-r`` to every spectrum in the energy window (Poisson-weighted log-log least squares).

    Parameters
    ----------
    counts : array_like or dask array, shape (..., n_e)
        Counts with the energy axis last; dask input stays lazy (fitted block by block).
    energy : array_like (n_e,)
        Energy-loss axis (eV), increasing and above 0 in the window.
    window : (float, float)
        Fit window (eV), at least 5 channels, inside the axis.
    n_iter : int
        Poisson reweighting iterations after the weighted log-log start (0 keeps the
        plain weighted log-log fit).

    Returns
    -------
    ndarray or dask array, shape (..., 5)
        ``A`` (counts eV^r), ``r``, ``r_err``, ``chi2_red``, ``r_squared`` per spectrum
        (order of :data:`PARAMS`).
    """
    e = np.asarray(energy, dtype=np.float64)
    sl = window_slice(e, window, "the background window", MIN_CHANNELS)
    if e[sl][0] <= 0:
        raise InputError(f"the background window starts at {e[sl][0]:g} eV; a power law needs energies above 0 eV")
    if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or not 0 <= n_iter <= 50:
        raise InputError(f"n_iter must be a whole number in 0..50, got {n_iter!r}")
    if np.shape(counts)[-1] != e.size:
        raise InputError(f"the counts have {np.shape(counts)[-1]} channels but the energy axis has {e.size}")
    log_e = np.log(e[sl])
    log_ref = float(log_e.mean())  # centring ln E keeps the 2x2 normal equations well conditioned
    x = log_e - log_ref
    data = counts if is_dask(counts) else np.asarray(counts)
    return map_pixels(lambda block: _fit_block(block[..., sl], x, log_ref, int(n_iter)), data, n_out=len(PARAMS),
                      what="the spectra")


def pre_edge_window(energy, onset_ev: float, *, gap_ev: float = 5.0,
                    width_ev: float | None = None) -> tuple[float, float]:
    """A background window ending ``gap_ev`` below an edge onset.

    Parameters
    ----------
    energy : array_like (n_e,)
        Energy axis (eV).
    onset_ev : float
        Edge onset (eV), e.g. a ``measured_onset_ev`` of :func:`~atomine.spectra.find_edges`.
    gap_ev : float
        Distance (eV) kept from the onset, so the edge's resolution-broadened foot is not fitted.
    width_ev : float, optional
        Window width (eV); default 15 % of the onset energy, cut at the start of the axis.

    Raises
    ------
    InputError
        Fewer than 5 channels fit between the axis start and the onset.
    """
    e = np.asarray(energy, dtype=np.float64)
    onset = number(onset_ev, "onset_ev")
    gap = number(gap_ev, "gap_ev", positive=True)
    width = 0.15 * onset if width_ev is None else number(width_ev, "width_ev", positive=True, allow_zero=False)
    hi = onset - gap
    lo = max(float(e[0]), hi - width)
    n = int(np.count_nonzero((e >= lo) & (e <= hi)))
    if hi <= lo or n < MIN_CHANNELS:
        raise InputError(f"only {max(n, 0)} channels lie before the edge at {onset:g} eV (axis starts at {e[0]:g} eV); "
                         "give the background window explicitly or record more pre-edge range")
    return lo, hi


def _pixel_map(values, spectra: xr.DataArray, name: str, units: str) -> xr.DataArray:
    dims = spectra.dims[:-1]
    coords = {d: spectra.coords[d] for d in dims if d in spectra.coords}
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs={"units": units})


def remove_background(spectra: xr.DataArray, window=None, *, edges: pd.DataFrame | None = None,
                      gap_ev: float = 5.0, width_ev: float | None = None, n_iter: int = 3) -> xr.Dataset:
    """Fit and subtract a power-law background ``A E^-r`` from every spectrum.

    Parameters
    ----------
    spectra : xarray.DataArray, dims (..., "energy")
        EELS counts (a spectrum image ``("y", "x", "energy")`` or one spectrum), numpy or
        dask backed; the energy axis must be evenly spaced, increasing and above 0 eV.
    window : (float, float), optional
        Fit window (eV). Default: before the first edge that :func:`find_edges` detects
        in the summed spectrum (see :func:`pre_edge_window`).
    edges : pandas.DataFrame, optional
        Edges already found (a ``measured_onset_ev`` column) to choose the window from.
    gap_ev, width_ev : float
        Automatic window: its end below the first onset and its width (eV).
    n_iter : int
        Poisson reweighting iterations (see :func:`fit_power_law`).

    Returns
    -------
    xarray.Dataset
        ``signal`` (background-subtracted counts, float32, same dims; provenance recorded),
        ``background`` (the fitted ``A E^-r``, float32), and per-pixel maps ``A``
        (counts eV^r), ``r``, ``r_err``, ``chi2_red``, ``r_squared``. ``attrs``:
        ``window_ev`` and ``first_edge`` (its label or measured onset, when chosen
        automatically). Dask input gives lazy variables.
    """
    data, energy = spectral_data(spectra, "energy", "the EELS spectra")
    uniform_axis(energy, "the energy axis", min_channels=MIN_CHANNELS)
    if energy[0] <= 0:
        raise InputError(f"the energy axis starts at {energy[0]:g} eV; a power-law background needs energy losses "
                         "above 0 eV (crop the zero-loss region first)")
    check_finite(data, "the EELS spectra")
    first_edge = None
    if window is None:
        if edges is None:
            edges = find_edges(spectra)
        if not isinstance(edges, pd.DataFrame) or "measured_onset_ev" not in edges:
            raise InputError("edges must be the DataFrame of find_edges (a 'measured_onset_ev' column)")
        if not len(edges):
            raise InputError("no edge was found in the summed spectrum, so the background window cannot be chosen; "
                             "give window=(start_eV, end_eV)")
        row = edges.sort_values("measured_onset_ev").iloc[0]
        window = pre_edge_window(energy, float(row["measured_onset_ev"]), gap_ev=gap_ev, width_ev=width_ev)
        label = row.get("label")
        first_edge = label if isinstance(label, str) else f"{float(row['measured_onset_ev']):.1f} eV"
    params = fit_power_law(data, energy, window, n_iter=n_iter)
    amp, r = params[..., 0], params[..., 1]
    # empty pixels have r = NaN and A = 0: their background is 0, not NaN (dask dispatches np.where)
    safe_r = np.where(np.isnan(r), 0.0, r)
    background = (amp[..., None] * energy ** (-safe_r[..., None])).astype(np.float32)
    signal = (data - background).astype(np.float32)
    dims = spectra.dims
    out = xr.Dataset(coords=spectra.coords)
    sig = xr.DataArray(signal, dims=dims, coords=spectra.coords, name="signal", attrs=dict(spectra.attrs))
    parameters = {"window_ev": [float(window[0]), float(window[1])], "n_iter": int(n_iter),
                  "model": "A E^-r, Poisson-weighted log-log least squares"}
    input_hash = None if is_dask(data) else array_hash(spectra)
    out["signal"] = with_step(sig, "spectra.remove_background", parameters, input_hash)
    out["background"] = xr.DataArray(background, dims=dims, coords=spectra.coords,
                                     attrs={"units": spectra.attrs.get("units", "counts")})
    units = {"A": "counts eV^r", "r": "", "r_err": "", "chi2_red": "", "r_squared": ""}
    for i, name in enumerate(PARAMS):
        out[name] = _pixel_map(params[..., i], spectra, name, units[name])
    out.attrs = {"window_ev": [float(window[0]), float(window[1])], "first_edge": first_edge or ""}
    return out


__all__ = ["PARAMS", "fit_power_law", "power_law", "pre_edge_window", "remove_background"]
