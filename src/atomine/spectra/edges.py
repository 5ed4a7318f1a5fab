"""Find core-loss edges in an EELS spectrum and name them from the edge table.

An ionisation edge is a sudden rise of the counts on top of a smooth power-law
background ``A E^-r``. On a log scale the background's slope is ``-r / E``: small and
slowly varying, so the derivative of the smoothed log spectrum is a flat baseline on
which every edge (and white line) stands out as a positive peak. The peak's position is
the steepest rise, which for a step broadened by the resolution is the onset itself; the
area of the peak above the baseline is the log of the rise ratio, ``ln(S_after/S_before)``,
a measure of edge strength that does not depend on the dose. Detected onsets are matched
one-to-one to the tabulated onsets (EELS Atlas, :mod:`atomine.simulate.edges`) by an
optimal assignment, so an L3 / L2 pair is never named twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.optimize import linear_sum_assignment
from scipy.signal import find_peaks

from ..errors import InputError
from ..simulate.edges import EDGES, check_element
from ._checks import finite, is_dask, number, spectral_data, uniform_axis

COLUMNS = ["element", "edge", "label", "onset_ev", "measured_onset_ev", "shift_ev", "rise", "significance"]
_BASELINE_EV = 40.0  # running-median span of the derivative baseline: wider than any edge's rise


def summed_spectrum(spectra, energy=None) -> tuple[np.ndarray, np.ndarray]:
    """(counts summed over all pixels, energy axis in eV) of a spectrum or spectrum image.

    Parameters
    ----------
    spectra : xarray.DataArray with an ``"energy"`` axis last, or array_like (..., n_e)
        A single spectrum or a spectrum image; dask data are reduced block by block.
    energy : array_like (n_e,), optional
        Energy axis (eV) of a plain array; a DataArray's own coordinate is used otherwise.
    """
    if hasattr(spectra, "dims"):
        data, axis = spectral_data(spectra, "energy", "the spectra")
    else:
        if energy is None:
            raise InputError("give the energy axis (eV) of a plain array, or pass an xarray.DataArray")
        data, axis = spectra, np.asarray(energy, dtype=np.float64)
    if np.ndim(data) < 1 or np.shape(data)[-1] != axis.size:
        raise InputError(f"the spectra have {np.shape(data)[-1] if np.ndim(data) else 0} channels but the energy "
                         f"axis has {axis.size}")
    lead = tuple(range(np.ndim(data) - 1))
    total = data.sum(axis=lead) if lead else data
    total = total.compute() if is_dask(total) else total
    return finite(total, "the summed spectrum"), axis


def _log_derivative(counts: np.ndarray, step: float, smooth_ch: float) -> tuple[np.ndarray, float]:
    """Smoothed d ln S / dE (1/eV) and its noise standard deviation (from the channel-to-channel scatter)."""
    floor = max(np.percentile(counts[counts > 0], 1) * 1e-3, 1e-12) if np.any(counts > 0) else 1e-12
    log_s = np.log(np.maximum(counts, floor))  # a zero channel must not become -inf
    deriv = gaussian_filter1d(log_s, smooth_ch, order=1, mode="nearest") / step
    # white-noise scatter of ln S from second differences (a smooth curve has none), MAD-robust
    d2 = np.diff(log_s, 2)
    sigma_log = 1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0)
    impulse = np.zeros(int(8 * smooth_ch) + 1)
    impulse[impulse.size // 2] = 1.0
    gain = np.sqrt(np.sum(gaussian_filter1d(impulse, smooth_ch, order=1, mode="constant") ** 2))
    return deriv, float(sigma_log * gain / step)


def _region(excess: np.ndarray, peak: int) -> tuple[int, int]:
    """First and last channel of the contiguous positive excess around ``peak``: one rise."""
    lo = peak
    while lo > 0 and excess[lo - 1] > 0:
        lo -= 1
    hi = peak
    while hi < excess.size - 1 and excess[hi + 1] > 0:
        hi += 1
    return lo, hi


def detect_onsets(counts, energy, *, smooth_ev: float | None = None, min_rise: float = 0.04,
                  significance: float = 6.0, min_separation_ev: float = 3.0) -> pd.DataFrame:
    """Edge onsets of one spectrum, unnamed: where the smoothed log spectrum rises steepest.

    Parameters
    ----------
    counts : array_like (n_e,)
        Counts per channel (a sum over pixels gives a cleaner spectrum).
    energy : array_like (n_e,)
        Evenly spaced, increasing energy-loss axis (eV).
    smooth_ev : float, optional
        Standard deviation (eV) of the Gaussian derivative filter; default the larger of
        1 eV and one channel, about the width of an edge's rise.
    min_rise : float
        Smallest ``ln(S_after / S_before)`` that counts as an edge (0.04 is a 4 % jump); it
        keeps near-edge wiggles out.
    significance : float
        Smallest peak height of the log derivative in units of its noise.
    min_separation_ev : float
        Of two peaks closer than this (eV) only the stronger is kept (a crystal-field
        split white line is one edge).

    Returns
    -------
    pandas.DataFrame
        One row per onset, by energy: ``measured_onset_ev``, ``rise``, ``significance``.
    """
    counts = finite(counts, "the spectrum")
    e0, step = uniform_axis(energy, "the energy axis", min_channels=16)
    smooth = max(1.0, step) if smooth_ev is None else number(smooth_ev, "smooth_ev", positive=True,
                                                                       allow_zero=False)
    min_rise = number(min_rise, "min_rise", positive=True)
    significance = number(significance, "significance", positive=True)
    sep = number(min_separation_ev, "min_separation_ev", positive=True)
    deriv, noise = _log_derivative(counts, step, smooth / step)
    span = max(3, int(round(_BASELINE_EV / step)) | 1)
    excess = deriv - median_filter(deriv, size=min(span, deriv.size | 1), mode="nearest")
    noise = max(noise, 1e-12)
    peaks, _ = find_peaks(excess, height=significance * noise, distance=max(1, int(round(sep / step))))
    # one onset per rise: near-edge wiggles on an edge's rising flank are part of that edge
    best: dict[tuple[int, int], int] = {}
    for p in peaks:
        key = _region(excess, int(p))
        if key not in best or excess[p] > excess[best[key]]:
            best[key] = int(p)
    rows = []
    for (lo, hi), p in sorted(best.items()):
        rise = float(excess[lo:hi + 1].sum() * step)  # integral of d ln S / dE over the rise
        if rise < min_rise:
            continue
        frac = 0.0  # sub-channel position: parabola through the peak and its neighbours
        if 0 < p < excess.size - 1:
            a, b, c = excess[p - 1], excess[p], excess[p + 1]
            den = a - 2.0 * b + c
            frac = 0.5 * (a - c) / den if den < 0 else 0.0
        rows.append({"measured_onset_ev": e0 + (p + frac) * step, "rise": rise,
                     "significance": float(excess[p] / noise)})
    return pd.DataFrame(rows, columns=["measured_onset_ev", "rise", "significance"])


def _elements(elements) -> list[str] | None:
    if elements is None:
        return None
    return [check_element(e) for e in ([elements] if isinstance(elements, str) else list(elements))]


def _candidates(elements, e_min: float, e_max: float) -> pd.DataFrame:
    table = EDGES if elements is None else EDGES[EDGES["element"].isin(elements)]
    return table[(table["onset_ev"] >= e_min) & (table["onset_ev"] <= e_max)].reset_index(drop=True)


def match_edges(onsets: pd.DataFrame, *, tolerance_ev: float = 8.0, elements=None) -> pd.DataFrame:
    """Name detected onsets from the edge table: one-to-one, minimising the total distance.

    Parameters
    ----------
    onsets : pandas.DataFrame
        Output of :func:`detect_onsets` (a ``measured_onset_ev`` column, eV).
    tolerance_ev : float
        Largest |measured - tabulated| onset (eV) for a match; measured onsets are the
        steepest rise, a few eV above the Atlas onset for strong white lines.
    elements : iterable of str, optional
        Restrict the candidates to these elements (default: the whole table).

    Returns
    -------
    pandas.DataFrame
        The onsets with ``element``, ``edge``, ``label`` (e.g. ``"Mn L3"``), ``onset_ev``
        (tabulated) and ``shift_ev`` (measured - tabulated); unmatched onsets keep
        ``None`` / NaN there.
    """
    tol = number(tolerance_ev, "tolerance_ev", positive=True, allow_zero=False)
    elements = _elements(elements)
    if not isinstance(onsets, pd.DataFrame) or "measured_onset_ev" not in onsets:
        raise InputError("onsets must be the DataFrame of detect_onsets (a 'measured_onset_ev' column)")
    out = onsets.copy().reset_index(drop=True)
    for col, fill in (("element", None), ("edge", None), ("label", None), ("onset_ev", np.nan)):
        out[col] = pd.Series([fill] * len(out), dtype=object if fill is None else float)
    if len(out):
        measured = out["measured_onset_ev"].to_numpy(dtype=np.float64)
        cand = _candidates(elements, measured.min() - tol, measured.max() + tol)
        if len(cand):
            dist = np.abs(measured[:, None] - cand["onset_ev"].to_numpy()[None, :])
            # leaving an onset unnamed costs the tolerance, so a match is only made when it is closer
            cost = np.hstack([np.where(dist <= tol, dist, 1e9), np.full((len(out), len(out)), tol)])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if c < len(cand) and dist[r, c] <= tol:
                    rec = cand.iloc[c]
                    out.loc[r, ["element", "edge", "label"]] = [rec["element"], rec["edge"],
                                                                f"{rec['element']} {rec['edge']}"]
                    out.loc[r, "onset_ev"] = float(rec["onset_ev"])
    out["shift_ev"] = out["measured_onset_ev"] - out["onset_ev"]
    return out[COLUMNS]


def find_edges(spectra, *, energy=None, elements=None, tolerance_ev: float = 8.0, smooth_ev: float | None = None,
               min_rise: float = 0.04, significance: float = 6.0, min_separation_ev: float = 3.0) -> pd.DataFrame:
    """Detect the edges of a spectrum (or of a spectrum image's summed spectrum) and name them.

    Parameters
    ----------
    spectra : xarray.DataArray (..., "energy") or array_like (..., n_e)
        EELS counts; a spectrum image is summed over its pixels first.
    energy : array_like (n_e,), optional
        Energy axis (eV) for a plain array.
    elements : iterable of str, optional
        Only name edges of these elements.
    tolerance_ev, smooth_ev, min_rise, significance, min_separation_ev
        See :func:`detect_onsets` and :func:`match_edges`.

    Returns
    -------
    pandas.DataFrame
        One row per detected onset, by energy: ``element``, ``edge``, ``label``,
        ``onset_ev`` (tabulated, eV), ``measured_onset_ev`` (eV), ``shift_ev``, ``rise``
        (``ln(S_after/S_before)``), ``significance`` (peak height / noise). Onsets matching
        no tabulated edge have ``element`` None.
    """
    counts, axis = summed_spectrum(spectra, energy)
    onsets = detect_onsets(counts, axis, smooth_ev=smooth_ev, min_rise=min_rise, significance=significance,
                           min_separation_ev=min_separation_ev)
    return match_edges(onsets, tolerance_ev=tolerance_ev, elements=elements)


__all__ = ["detect_onsets", "find_edges", "match_edges", "summed_spectrum"]
