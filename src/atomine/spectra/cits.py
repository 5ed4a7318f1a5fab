"""CITS grids: differential conductance, Feenstra's normalised conductance and gap maps.

Three steps on I(V) curves with the bias axis last, each a numpy core on arrays
``(..., n_bias)`` plus a thin xarray wrapper on ``("y", "x", "bias")`` grids:

* :func:`didv` - dI/dV by a Savitzky-Golay derivative along the bias (window in volts).
* :func:`normalised_conductance` - ``(dI/dV) / (I/V)_bar`` with Feenstra's broadened
  ``(I/V)_bar(V) = int |I(V')/V'| exp(-|V' - V| / dV) dV' / int exp(-|V' - V| / dV) dV'``
  (R. M. Feenstra, Phys. Rev. B 50, 4561 (1994)). The broadening keeps the ratio finite
  inside a gap, where I and V both vanish, while far from the gap edges it tends to the
  plain ``(dI/dV) / (I/V)``, which cancels the exponential voltage dependence of the
  tunnelling transmission and leaves a quantity shaped like the sample DOS.
* :func:`gap_map` - per pixel the bias interval around 0 V in which dI/dV stays below
  ``threshold`` times its level outside the gap (each polarity measured on its own),
  with sub-channel edges by linear interpolation; its width and centre.

Dask-backed grids are processed one pixel block at a time (the bias axis in one chunk).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import savgol_filter

from ..data import require_dims, uniform_axis
from ..data.provenance import with_step
from ..errors import InputError
from ._checks import finite, is_dask

_DIMS = ("y", "x", "bias")


# --------------------------------------------------------------------------- checks
def _bias_step(bias) -> tuple[np.ndarray, float]:
    """The bias axis (V) and its signed step; InputError unless 1-D, finite and uniform."""
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim != 1 or b.size < 5:
        raise InputError(f"the bias axis must be 1-D with at least 5 values, got shape {b.shape}")
    axis = uniform_axis(b, rtol=1e-3)
    if axis is None:
        raise InputError("the bias axis must be finite, strictly monotonic and evenly spaced (Savitzky-Golay "
                         "needs a uniform step); resample the sweep onto a uniform grid first")
    return b, axis[1]


def _window_channels(window_v, bias: np.ndarray, step: float, polyorder: int) -> int:
    """Odd channel count of a Savitzky-Golay window of ``window_v`` volts."""
    span = abs(bias[-1] - bias[0])
    if window_v is None:
        window_v = 0.05 * span  # scale-free default: 5 % of the sweep
    w = float(window_v)
    if not np.isfinite(w) or w <= 0:
        raise InputError(f"window_v must be a positive number of volts, got {window_v!r}")
    n = int(round(w / abs(step)))
    n += 1 - n % 2  # Savitzky-Golay windows have a centre channel
    n = max(n, polyorder + 2 + (polyorder % 2))
    if n > bias.size:
        raise InputError(f"window_v = {w:g} V spans {n} channels but the sweep has only {bias.size} "
                         f"({span:g} V); choose a smaller window")
    return n


def _polyorder(polyorder) -> int:
    if not isinstance(polyorder, (int, np.integer)) or isinstance(polyorder, bool) or not 1 <= polyorder <= 5:
        raise InputError(f"polyorder must be an integer from 1 to 5, got {polyorder!r}")
    return int(polyorder)


# --------------------------------------------------------------------------- numpy cores
def savgol_didv(iv, bias, *, window_v: float | None = None, polyorder: int = 2) -> np.ndarray:
    """dI/dV of I(V) curves by a Savitzky-Golay derivative along the last axis.

    Parameters
    ----------
    iv : ndarray, shape (..., n_bias)
        Tunnelling current (any unit, e.g. A).
    bias : array_like, shape (n_bias,)
        Sample bias (V), uniform; either sweep direction.
    window_v : float, optional
        Width of the fitting window (V), rounded to an odd number of channels; default 5 %
        of the sweep. Wider windows lower the noise and blur features narrower than it.
    polyorder : int
        Order of the local polynomial.

    Returns
    -------
    ndarray, shape (..., n_bias)
        dI/dV in the current's unit per volt (float64).
    """
    bias, step = _bias_step(bias)
    polyorder = _polyorder(polyorder)
    n = _window_channels(window_v, bias, step, polyorder)
    iv = finite(iv, "the I(V) curves")
    if iv.shape[-1] != bias.size:
        raise InputError(f"the curves have {iv.shape[-1]} bias channels but the bias axis has {bias.size}")
    # the signed step makes the derivative d/dV whichever way the sweep runs
    return savgol_filter(iv, n, polyorder, deriv=1, delta=step, axis=-1, mode="interp")


def _broadening_kernel(bias: np.ndarray, broadening_v: float) -> np.ndarray:
    """Row-normalised exp(-|V' - V| / dV) on the sweep; rows sum to 1 over the measured range."""
    k = np.exp(-np.abs(bias[:, None] - bias[None, :]) / broadening_v)
    return k / k.sum(axis=1, keepdims=True)


def feenstra_normalise(iv, didv, bias, *, broadening_v: float | None = None) -> np.ndarray:
    """Normalised conductance ``(dI/dV) / (I/V)_bar`` with Feenstra's exponential broadening.

    Parameters
    ----------
    iv, didv : ndarray, shape (..., n_bias)
        Current and its bias derivative (same current unit; dI/dV per volt).
    bias : array_like, shape (n_bias,)
        Sample bias (V), uniform.
    broadening_v : float, optional
        Width dV (V) of the exponential that broadens ``|I/V|``; Feenstra takes it of the
        order of the gap. Default 10 % of the sweep.

    Returns
    -------
    ndarray, shape (..., n_bias)
        Dimensionless normalised conductance; about 1 for an ohmic (flat-DOS) junction.
    """
    bias, _ = _bias_step(bias)
    iv = finite(iv, "the I(V) curves")
    didv = finite(didv, "the dI/dV curves")
    if iv.shape != didv.shape or iv.shape[-1] != bias.size:
        raise InputError(f"I(V) {iv.shape} and dI/dV {didv.shape} must share one shape ending in the "
                         f"{bias.size} bias channels")
    dv = 0.1 * abs(bias[-1] - bias[0]) if broadening_v is None else broadening_v
    if not np.isfinite(dv) or dv <= 0:
        raise InputError(f"broadening_v must be a positive number of volts, got {broadening_v!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        i_over_v = np.abs(iv / bias)
    # at V = 0 exactly, I/V is 0/0; its limit is dI/dV there
    zero = bias == 0
    if zero.any():
        i_over_v[..., zero] = np.abs(didv[..., zero])
    i_over_v_bar = i_over_v @ _broadening_kernel(bias, float(dv)).T
    tiny = np.finfo(np.float64).tiny
    return didv / np.maximum(i_over_v_bar, tiny)


def _side_levels(didv: np.ndarray, bias: np.ndarray, reference_v) -> tuple[np.ndarray, np.ndarray]:
    """Median dI/dV of each pixel over ``lo <= |V| <= hi`` on the negative and the positive side."""
    vmax = float(np.abs(bias).max())
    lo, hi = (0.5 * vmax, vmax) if reference_v is None else reference_v
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi):
        raise InputError(f"reference_v must be (low, high) |V| bounds with 0 <= low < high, got {reference_v!r}")
    neg = (bias <= -lo) & (bias >= -hi)
    pos = (bias >= lo) & (bias <= hi)
    if not neg.any() or not pos.any():
        raise InputError(f"the reference band {lo:g}..{hi:g} V must hold channels at both polarities; the sweep "
                         f"runs {bias.min():g}..{bias.max():g} V (a gap map needs a sweep through 0 V)")
    return np.median(didv[..., neg], axis=-1), np.median(didv[..., pos], axis=-1)


def _crossing(v0, d0, v1, d1, thr):
    """Bias where the straight line between (v0, d0) and (v1, d1) reaches thr."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(d1 != d0, (thr - d0) / (d1 - d0), 0.5)
    return v0 + np.clip(f, 0.0, 1.0) * (v1 - v0)


def gap_edges(didv, bias, *, threshold: float = 0.5, reference_v=None, with_flag: bool = False):
    """Lower and upper edge (V) of the low-conductance interval around 0 V of each curve.

    A channel is "in the gap" when its dI/dV is below ``threshold`` times the median
    dI/dV of the same polarity in the reference band. The gap is the run of such
    channels containing the channel nearest 0 V; its edges are interpolated linearly to
    the threshold crossing. With ``threshold = 0.5`` the edges sit at half the band
    conductance, where a broadened band edge has its half height.

    Parameters
    ----------
    didv : ndarray, shape (..., n_bias)
        Differential conductance (any unit).
    bias : array_like, shape (n_bias,)
        Sample bias (V), uniform, spanning 0 V.
    threshold : float
        Fraction (0..1) of the outside level below which a channel counts as gapped.
    reference_v : (float, float), optional
        ``(low, high)`` bounds of |V| (V) of the band that sets the outside level; default
        the outer half of the sweep, ``(0.5 max|V|, max|V|)``.

    Returns
    -------
    low, high : ndarray, shape (...)
        Edges (V); both NaN where the conductance at 0 V is above threshold (no gap), and
        the open edge NaN where the gap runs off the end of the sweep.
    gapped : ndarray of bool, shape (...)
        Only with ``with_flag=True``: whether the conductance at 0 V is below threshold.
    """
    bias, step = _bias_step(bias)
    t = float(threshold)
    if not np.isfinite(t) or not 0 < t < 1:
        raise InputError(f"threshold must be a fraction between 0 and 1, got {threshold!r}")
    d = finite(didv, "the dI/dV curves")
    if step < 0:  # work on an increasing axis
        bias, d = bias[::-1], d[..., ::-1]
    if not bias[0] < 0 < bias[-1]:
        raise InputError(f"a gap map needs a sweep through 0 V; the bias runs {bias[0]:g}..{bias[-1]:g} V")
    shape = d.shape[:-1]
    d = d.reshape(-1, bias.size)
    ref_neg, ref_pos = _side_levels(d, bias, reference_v)
    thr = np.where(bias[None, :] < 0, t * ref_neg.reshape(-1, 1), t * ref_pos.reshape(-1, 1))
    low_mask = d < thr
    i0 = int(np.argmin(np.abs(bias)))
    gapped = low_mask[:, i0]
    rows = np.arange(d.shape[0])

    above_r = ~low_mask[:, i0:]  # first channel above threshold to the right of 0 V
    j = i0 + np.argmax(above_r, axis=1)
    closed_r = above_r.any(axis=1) & gapped
    jm = np.maximum(j - 1, 0)
    high = _crossing(bias[jm], d[rows, jm], bias[j], d[rows, j], thr[rows, j])
    high = np.where(closed_r, high, np.nan)

    above_l = ~low_mask[:, i0::-1]  # first channel above threshold to the left of 0 V
    k = i0 - np.argmax(above_l, axis=1)
    closed_l = above_l.any(axis=1) & gapped
    kp = np.minimum(k + 1, bias.size - 1)
    low = _crossing(bias[kp], d[rows, kp], bias[k], d[rows, k], thr[rows, k])
    low = np.where(closed_l, low, np.nan)
    if with_flag:
        return low.reshape(shape), high.reshape(shape), gapped.reshape(shape)
    return low.reshape(shape), high.reshape(shape)


# --------------------------------------------------------------------------- xarray wrappers
def _grid(da, what: str) -> tuple[np.ndarray, object]:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with dims {_DIMS} (see atomine.data.cits_grid)")
    require_dims(da, _DIMS, what)
    if "bias" not in da.coords:
        raise InputError(f"{what} has no bias coordinate; build it with atomine.data.cits_grid")
    units = da.coords["bias"].attrs.get("units", "V")
    if units != "V":
        raise InputError(f"{what}: bias in {units!r}; convert it to volts (atomine.data.units.bias_factor_to_v)")
    return np.asarray(da.coords["bias"].values, dtype=np.float64), da.data


def _map_pixels(func, *arrays, out_channels: int | None = None):
    """Apply ``func`` to pixel blocks of (ny, nx, n_bias) arrays; numpy stays numpy.

    ``out_channels`` is the length of the last axis of ``func``'s output when it differs
    from the bias axis.
    """
    if not any(is_dask(a) for a in arrays):
        return func(*arrays)
    import dask.array as dka

    first = next(a for a in arrays if is_dask(a)).rechunk({2: -1})
    arrays = [dka.asarray(a).rechunk(first.chunks) for a in arrays]
    chunks = first.chunks if out_channels is None else first.chunks[:2] + ((out_channels,),)
    return dka.map_blocks(func, *arrays, dtype=np.float64, chunks=chunks)


def _like(grid: xr.DataArray, data, units: str, name: str, step: str, params: dict) -> xr.DataArray:
    out = xr.DataArray(data, dims=_DIMS, coords=grid.coords, name=name, attrs=dict(grid.attrs))
    out.attrs["units"] = units
    return with_step(out, step, params)


def didv(grid: xr.DataArray, *, window_v: float | None = None, polyorder: int = 2) -> xr.DataArray:
    """Differential conductance dI/dV of a CITS grid (see :func:`savgol_didv`).

    Parameters
    ----------
    grid : xarray.DataArray, dims ("y", "x", "bias")
        I(V) curves (bias in V), e.g. from :func:`atomine.data.cits_grid`; may be dask-backed.
    window_v, polyorder
        Savitzky-Golay window (V; default 5 % of the sweep) and polynomial order.

    Returns
    -------
    xarray.DataArray, dims ("y", "x", "bias")
        dI/dV in the current's unit per volt (e.g. "A/V"), float64.
    """
    bias, data = _grid(grid, "the CITS grid")
    savgol_didv(np.zeros((1, bias.size)), bias, window_v=window_v, polyorder=polyorder)  # check parameters now
    out = _map_pixels(lambda b: savgol_didv(b, bias, window_v=window_v, polyorder=polyorder), data)
    units = f"{grid.attrs.get('units', 'A')}/V"
    return _like(grid, out, units, "dIdV", "spectra.didv", {"window_v": window_v, "polyorder": polyorder})


def normalised_conductance(grid: xr.DataArray, *, conductance: xr.DataArray | None = None,
                           window_v: float | None = None, broadening_v: float | None = None) -> xr.DataArray:
    """Feenstra's normalised conductance ``(dI/dV) / (I/V)_bar`` of a CITS grid.

    Parameters
    ----------
    grid : xarray.DataArray, dims ("y", "x", "bias")
        I(V) curves (bias in V); may be dask-backed.
    conductance : xarray.DataArray, optional
        dI/dV on the same grid (from :func:`didv`); computed with ``window_v`` when omitted.
    window_v : float, optional
        Savitzky-Golay window (V) used when ``conductance`` is omitted.
    broadening_v : float, optional
        Width (V) of the exponential broadening of |I/V|; default 10 % of the sweep.

    Returns
    -------
    xarray.DataArray, dims ("y", "x", "bias")
        Dimensionless normalised conductance.
    """
    bias, data = _grid(grid, "the CITS grid")
    if conductance is None:
        conductance = didv(grid, window_v=window_v)
    c_bias, c_data = _grid(conductance, "conductance")
    if c_data.shape != data.shape or not np.allclose(c_bias, bias):
        raise InputError("conductance must be dI/dV on the same grid and bias axis as the I(V) curves")
    feenstra_normalise(np.ones((1, bias.size)), np.ones((1, bias.size)), bias, broadening_v=broadening_v)
    out = _map_pixels(lambda i, g: feenstra_normalise(i, g, bias, broadening_v=broadening_v), data, c_data)
    return _like(grid, out, "", "normalised_conductance", "spectra.normalised_conductance",
                 {"broadening_v": broadening_v, "window_v": window_v})


def gap_map(conductance: xr.DataArray, *, threshold: float = 0.5, reference_v=None) -> xr.Dataset:
    """Gap width and centre per pixel from a dI/dV grid (see :func:`gap_edges`).

    Parameters
    ----------
    conductance : xarray.DataArray, dims ("y", "x", "bias")
        dI/dV (from :func:`didv`) or the normalised conductance; may be dask-backed.
    threshold : float
        Fraction of the outside conductance below which the sample counts as gapped.
    reference_v : (float, float), optional
        |V| band (V) that sets the outside level; default the outer half of the sweep.

    Returns
    -------
    xarray.Dataset, dims ("y", "x")
        ``gap_v`` (width, V; 0 where the conductance at 0 V is above threshold, NaN where
        the gap runs off the sweep), ``gap_centre_v`` (V; NaN without a gap),
        ``gap_low_v`` and ``gap_high_v`` (edges, V; NaN without a gap).
    """
    bias, data = _grid(conductance, "the conductance grid")
    gap_edges(np.ones((1, bias.size)), bias, threshold=threshold, reference_v=reference_v)  # check parameters now

    def edges(block):
        lo, hi, gapped = gap_edges(block, bias, threshold=threshold, reference_v=reference_v, with_flag=True)
        # a conductance above threshold at 0 V is a gap of width 0, not an unknown one
        return np.stack([lo, hi, np.where(gapped, hi - lo, 0.0)], axis=-1)

    res = _map_pixels(edges, data, out_channels=3)
    lo, hi, width = res[..., 0], res[..., 1], res[..., 2]
    coords = {d: conductance.coords[d] for d in ("y", "x")}
    attrs = {"provenance": list(conductance.attrs.get("provenance", []))}
    ds = xr.Dataset({"gap_v": (("y", "x"), width, {"units": "V"}),
                     "gap_centre_v": (("y", "x"), 0.5 * (lo + hi), {"units": "V"}),
                     "gap_low_v": (("y", "x"), lo, {"units": "V"}),
                     "gap_high_v": (("y", "x"), hi, {"units": "V"})}, coords=coords, attrs=attrs)
    return with_step(ds, "spectra.gap_map", {"threshold": threshold, "reference_v": reference_v})


__all__ = ["didv", "feenstra_normalise", "gap_edges", "gap_map", "normalised_conductance", "savgol_didv"]
