"""Name what each unmixed component contains: EELS edges, or CITS gaps and resonances.

Unmixing returns endmember spectra without names. :func:`annotate_eels` runs the edge
finder (:func:`~atomine.spectra.edges.detect_onsets` / :func:`~atomine.spectra.edges.match_edges`)
on every component, groups spin-orbit partners (L3 + L2 -> "L2,3", M5 + M4 -> "M4,5"), and
measures each edge against a power-law background (:func:`~atomine.spectra.background.fit_power_law`)
fitted just before it: the jump ratio and the edge's integrated strength.
:func:`annotate_cits` finds each dI/dV component's gap around 0 V
(:func:`~atomine.spectra.cits.gap_edges`) and its resonance peaks, with widths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal import find_peaks, peak_widths

from ..errors import InputError
from ._checks import finite, number, uniform_axis
from .background import fit_power_law
from .cits import gap_edges
from .edges import detect_onsets, match_edges

EELS_COLUMNS = ["component", "element", "edge", "lines", "onset_ev", "measured_onset_ev", "shift_ev", "rise",
                "jump_ratio", "strength", "background_r", "background_r_squared", "window_ev"]
CITS_COLUMNS = ["component", "feature", "position_v", "width_v", "low_v", "high_v", "height"]
_SHELL = {"L3": "L2,3", "L2": "L2,3", "L2,3": "L2,3", "M5": "M4,5", "M4": "M4,5", "M4,5": "M4,5"}
_COUNTS_SCALE = 1e4  # components are rescaled to this mean so the Poisson-weighted background fit sees counts


def _components(endmembers, axis, dim: str, what: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(k, m) float64 spectra, their axis, component names; from a DataArray or an array plus axis."""
    if isinstance(endmembers, xr.DataArray):
        if endmembers.dims[-1] != dim or dim not in endmembers.coords:
            raise InputError(f"{what} must have a calibrated {dim!r} axis last, got dims {endmembers.dims}")
        if axis is not None:
            raise InputError(f"give the {dim} axis either as the DataArray's coordinate or as an argument, not both")
        axis = endmembers.coords[dim].values
        names = (list(endmembers.coords[endmembers.dims[0]].values) if endmembers.ndim == 2
                 and endmembers.dims[0] in endmembers.coords else None)
        data = endmembers.values
    else:
        if axis is None:
            raise InputError(f"give the {dim} axis of a plain array of {what}, or pass an xarray.DataArray")
        data, names = endmembers, None
    data = finite(data, what)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2:
        raise InputError(f"{what} must be (component, {dim}), got shape {data.shape}")
    axis = np.asarray(axis, dtype=np.float64)
    if axis.ndim != 1 or axis.size != data.shape[1]:
        raise InputError(f"{what} have {data.shape[1]} channels but the {dim} axis has {axis.size}")
    names = names if names is not None else list(range(data.shape[0]))
    return data, axis, [n.item() if hasattr(n, "item") else n for n in names]


def _group_edges(named: pd.DataFrame, edge_table: pd.DataFrame | None, component=None) -> list[dict]:
    """One dict per element shell (or unnamed onset), by energy, from match_edges' rows."""
    groups: dict[tuple, dict] = {}
    for i, rec in enumerate(named.itertuples(index=False)):
        key = (rec.element, _SHELL.get(rec.edge, rec.edge)) if isinstance(rec.element, str) else (None, i)
        g = groups.setdefault(key, {"element": key[0], "edge": key[1] if key[0] else None, "lines": [],
                                    "onset_ev": np.inf, "measured": [], "rise": 0.0})
        if key[0]:
            g["lines"].append(rec.label)
            g["onset_ev"] = min(g["onset_ev"], float(rec.onset_ev))
        g["measured"].append(float(rec.measured_onset_ev))
        g["rise"] += float(rec.rise)
    out = sorted(groups.values(), key=lambda g: min(g["measured"]))
    for g in out:
        if g["element"] is None:
            g["onset_ev"] = np.nan
        elif edge_table is not None and "onset_ev" in edge_table:
            rows = edge_table[(edge_table["element"] == g["element"])
                              & edge_table["edge"].map(lambda e: _SHELL.get(e, e) == g["edge"])]
            if "component" in rows and (rows["component"] == component).any():
                rows = rows[rows["component"] == component]  # per-component onsets (chemical shifts)
            if len(rows):
                g["onset_ev"] = float(rows["onset_ev"].min())
    return out


def _measure(spec: np.ndarray, energy: np.ndarray, step: float, onset: float, prev_onset: float | None,
             next_onset: float | None, gap_ev: float, post_ev: float) -> dict:
    """Jump ratio and strength of one edge against a power law fitted just before it."""
    hi = onset - gap_ev
    lo = max(float(energy[0]), hi - 0.15 * onset)
    if prev_onset is not None:
        lo = max(lo, prev_onset + 2.0 * gap_ev)  # the fit window must not straddle the previous edge's rise
    nan = {"jump_ratio": np.nan, "strength": np.nan, "background_r": np.nan, "background_r_squared": np.nan,
           "window_ev": None}
    if hi <= energy[0] or np.count_nonzero((energy >= lo) & (energy <= hi)) < 5:
        return nan  # too little pre-edge range for a background: say so with NaN rather than guess
    if spec[(energy >= lo) & (energy <= hi)].min() <= 0:
        return nan
    amp, r, _, _, r_sq = fit_power_law(spec[None, :], energy, (lo, hi))[0]
    end = onset + post_ev if next_onset is None else min(onset + post_ev, next_onset - gap_ev)
    post = (energy >= onset) & (energy <= end)
    if not post.any():
        return nan
    background = amp * energy[post] ** (-r)
    return {"jump_ratio": float(spec[post].sum() / background.sum()),
            "strength": float((spec[post] - background).sum() * step), "background_r": float(r),
            "background_r_squared": float(r_sq), "window_ev": [float(lo), float(hi)]}


def annotate_eels(endmembers, energy=None, *, edge_table: pd.DataFrame | None = None, elements=None,
                  tolerance_ev: float = 8.0, gap_ev: float = 3.0, post_ev: float = 20.0, **detect) -> pd.DataFrame:
    """The core-loss edges each EELS component contains, with onset, jump ratio and strength.

    Parameters
    ----------
    endmembers : xarray.DataArray (component, "energy") or array_like (k, n_e)
        Component spectra (counts or any non-negative scale, background included), e.g.
        an unmixing's ``components_``.
    energy : array_like (n_e,), optional
        Energy-loss axis (eV) of a plain array; evenly spaced and increasing.
    edge_table : pandas.DataFrame, optional
        Edges allowed (columns ``element``, ``edge``, optionally ``onset_ev`` and
        ``component``): only these elements and shells are named, and their ``onset_ev``
        (of the same component when the table has one) is reported as tabulated.
        Default: the EELS Atlas table of :mod:`atomine.simulate.edges`.
    elements : iterable of str, optional
        Only name edges of these elements.
    tolerance_ev : float
        Largest |measured - tabulated| onset (eV) for a name (see :func:`match_edges`).
    gap_ev : float
        The background window ends this far (eV) below the onset and starts this far beyond
        twice that above the previous edge's onset.
    post_ev : float
        Width (eV) of the window after the onset over which the jump ratio and strength are
        taken (cut short before the next edge).
    **detect
        Passed to :func:`detect_onsets` (``smooth_ev``, ``min_rise``, ``significance``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per component and edge shell, by energy: ``component``, ``element`` and
        ``edge`` (e.g. "Mn", "L2,3"; None for an onset no tabulated edge explains),
        ``lines`` (the named onsets, e.g. "Mn L3, Mn L2"), ``onset_ev`` (tabulated, eV),
        ``measured_onset_ev`` (steepest rise of the first line, eV), ``shift_ev``, ``rise``
        (summed ``ln(S_after/S_before)`` of its lines), ``jump_ratio`` (counts over the
        extrapolated background in the post-edge window; NaN without pre-edge range),
        ``strength`` (background-subtracted counts x eV over that window, in the input's
        units), ``background_r`` and ``background_r_squared`` of the pre-edge fit and
        ``window_ev`` (its range).
    """
    data, axis, names = _components(endmembers, energy, "energy", "the EELS components")
    _, step = uniform_axis(axis, "the energy axis", min_channels=16)
    gap_ev = number(gap_ev, "gap_ev", positive=True)
    post_ev = number(post_ev, "post_ev", positive=True, allow_zero=False)
    allowed = None
    if edge_table is not None:
        if not isinstance(edge_table, pd.DataFrame) or not {"element", "edge"} <= set(edge_table.columns):
            raise InputError("edge_table must be a DataFrame with 'element' and 'edge' columns (e.g. the truth "
                             "tables['edges'] or atomine.simulate.edges.EDGES)")
        allowed = {(e, _SHELL.get(s, s)) for e, s in zip(edge_table["element"], edge_table["edge"])}
        table_elements = sorted({e for e, _ in allowed})
        elements = table_elements if elements is None else [e for e in elements if e in table_elements]
    rows = []
    for name, spec in zip(names, data):
        mean = spec.mean()
        scale = _COUNTS_SCALE / mean if mean > 0 else 1.0
        scaled = spec * scale
        onsets = detect_onsets(scaled, axis, **detect)
        named = match_edges(onsets, tolerance_ev=tolerance_ev, elements=elements)
        if allowed is not None:  # a line of an element's shell the table does not list is left unnamed
            keep = [isinstance(el, str) and (el, _SHELL.get(ed, ed)) in allowed
                    for el, ed in zip(named["element"], named["edge"])]
            named.loc[~np.asarray(keep, dtype=bool), ["element", "edge", "label"]] = None
            named.loc[~np.asarray(keep, dtype=bool), "onset_ev"] = np.nan
        groups = _group_edges(named, edge_table, name)
        for i, g in enumerate(groups):
            first = min(g["measured"])
            prev = max(groups[i - 1]["measured"]) if i else None
            nxt = min(groups[i + 1]["measured"]) if i + 1 < len(groups) else None
            m = _measure(scaled, axis, step, first, prev, nxt, gap_ev, post_ev)
            if np.isfinite(m["strength"]):
                m["strength"] /= scale
            rows.append({"component": name, "element": g["element"], "edge": g["edge"],
                         "lines": ", ".join(g["lines"]), "onset_ev": g["onset_ev"], "measured_onset_ev": first,
                         "shift_ev": first - g["onset_ev"], "rise": g["rise"], **m})
    return pd.DataFrame(rows, columns=EELS_COLUMNS)


def _resonances(curve: np.ndarray, bias: np.ndarray, step: float, prominence: float,
                significance: float) -> list[dict]:
    """Peaks of one dI/dV curve: sub-channel position, full width at half prominence, height."""
    span = float(curve.max() - curve.min())
    if span <= 0:
        return []  # a flat curve has no peaks
    # channel noise from second differences (a smooth curve has none), MAD-robust
    d2 = np.diff(curve, 2)
    noise = 1.4826 * float(np.median(np.abs(d2 - np.median(d2)))) / np.sqrt(6.0)
    peaks, props = find_peaks(curve, prominence=max(prominence * span, significance * noise))
    if not len(peaks):
        return []
    widths, _, left, right = peak_widths(curve, peaks, rel_height=0.5, prominence_data=(
        props["prominences"], props["left_bases"], props["right_bases"]))
    out = []
    for p, w, lo, hi in zip(peaks, widths, left, right):
        frac = 0.0  # parabola through the peak and its neighbours
        if 0 < p < curve.size - 1:
            a, b, c = curve[p - 1], curve[p], curve[p + 1]
            den = a - 2.0 * b + c
            frac = 0.5 * (a - c) / den if den < 0 else 0.0
        out.append({"feature": "resonance", "position_v": bias[0] + (p + frac) * step, "width_v": w * step,
                    "low_v": bias[0] + lo * step, "high_v": bias[0] + hi * step, "height": float(curve[p])})
    return out


def annotate_cits(endmembers_didv, bias=None, *, threshold: float = 0.5, reference_v=None,
                  prominence: float = 0.2, significance: float = 8.0) -> pd.DataFrame:
    """Gap and resonances of each dI/dV component (e.g. unmixed CITS endmembers).

    Parameters
    ----------
    endmembers_didv : xarray.DataArray (component, "bias") or array_like (k, n_bias)
        Differential conductance of each component (any unit).
    bias : array_like (n_bias,), optional
        Sample bias (V) of a plain array; uniform, either direction, spanning 0 V.
    threshold, reference_v
        Gap definition of :func:`~atomine.spectra.cits.gap_edges`: dI/dV below
        ``threshold`` times the level in the outer |V| band (default its outer half).
    prominence : float
        Smallest peak prominence, as a fraction of the curve's range, that counts as a resonance.
    significance : float
        Smallest peak prominence in units of the curve's channel-to-channel noise (from
        its second differences), so noise wiggles on an unmixed component are not peaks.

    Returns
    -------
    pandas.DataFrame
        Per component one ``feature == "gap"`` row (``position_v`` its centre, ``width_v``
        its width, ``low_v`` / ``high_v`` its edges, all V; width 0 and NaN edges when
        dI/dV at 0 V is above threshold, NaN width when the gap runs off the sweep;
        ``height`` the dI/dV at 0 V over the outer level), then one ``"resonance"`` row per
        peak (``position_v`` the maximum, ``width_v`` the full width at half prominence,
        ``low_v`` / ``high_v`` its half-height crossings, ``height`` the dI/dV there).
    """
    data, axis, names = _components(endmembers_didv, bias, "bias", "the dI/dV components")
    prominence = number(prominence, "prominence", positive=True, allow_zero=False)
    significance = number(significance, "significance", positive=True)
    if axis.size >= 2 and axis[0] > axis[-1]:  # peak finding below runs on an increasing axis
        axis, data = axis[::-1], data[:, ::-1]
    _, step = uniform_axis(axis, "the bias axis", min_channels=5)
    low, high, gapped = gap_edges(data, axis, threshold=threshold, reference_v=reference_v, with_flag=True)
    i0 = int(np.argmin(np.abs(axis)))
    vmax = float(np.abs(axis).max())
    lo_ref, hi_ref = (0.5 * vmax, vmax) if reference_v is None else reference_v
    outer = (np.abs(axis) >= lo_ref) & (np.abs(axis) <= hi_ref)
    rows = []
    for k, name in enumerate(names):
        level = float(np.median(data[k, outer]))
        rows.append({"component": name, "feature": "gap",
                     "position_v": 0.5 * (low[k] + high[k]) if gapped[k] else np.nan,
                     "width_v": float(high[k] - low[k]) if gapped[k] else 0.0,
                     "low_v": float(low[k]), "high_v": float(high[k]),
                     "height": float(data[k, i0] / level) if level != 0 else np.nan})
        rows += [{"component": name, **r} for r in _resonances(data[k], axis, step, prominence, significance)]
    return pd.DataFrame(rows, columns=CITS_COLUMNS)


__all__ = ["CITS_COLUMNS", "EELS_COLUMNS", "annotate_cits", "annotate_eels"]
