"""Per-pixel EELS edge maps: onset energy (chemical shift) and edge strength of every edge.

For each edge a power law ``A E^-r`` is fitted in a pre-edge window for all pixels at once
(:func:`~atomine.spectra.background.fit_power_law`) and subtracted. The onset is then the
energy at which the background-subtracted signal, smoothed along energy by a Gaussian,
first reaches half of its post-edge level (the mean over ``level_ev`` above the edge's
reference onset), by linear interpolation between channels. Half the post-edge level is
a shape-independent mark on the rising flank: a valence change that moves the whole edge
(Ti3+ vs Ti4+ L2,3, ~1-2 eV) moves it by the same amount. The strength is the
background-subtracted counts summed over a window of ``window_ev`` above the onset.

Errors come from Poisson statistics, propagated to first order: the smoothed signal at the
crossing and the half level each carry the variance of the counts that enter them, and
their combined error divided by the rise per eV between the two channels that bracket the
crossing (the interpolation's actual sensitivity) is the onset's 1-sigma error. The extrapolated background's uncertainty
(the covariance of the power-law fit) is added to both errors; for a weak edge on a
steep background it dominates the strength's error.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter1d, uniform_filter

from ..errors import InputError
from ..simulate.edges import EDGES
from ._checks import finite, number, spectral_data, uniform_axis
from .background import MIN_CHANNELS, fit_power_law
from .edges import find_edges

_SHELL = {"L3": "L2,3", "L2": "L2,3", "L2,3": "L2,3", "M5": "M4,5", "M4": "M4,5", "M4,5": "M4,5"}
WINDOW_EV = 40.0  # default strength window: the edge and its near-edge structure, before most next edges
_LEAD_EV = 2.0  # the strength window starts this far below the reference onset, so a downward shift stays inside
_MIN_LEVEL_SIGMA = 3.0  # an edge whose post-edge level is below this many sigma gets no onset
_PREV_CLEAR_EV = 20.0
_SAME_EDGE_EV = 10.0  # onsets closer than this below an edge belong to it (white lines, crystal-field split)  # a pre-edge window starts this far above the previous edge: past its white lines


def slug(element: str, edge: str) -> str:
    """Variable-name form of an edge: ``("Ti", "L2,3") -> "ti_l23"``, ``("O", "K") -> "o_k"``."""
    return f"{element.lower()}_{re.sub(r'[^0-9a-z]', '', edge.lower())}"


def _shell(element: str, edge: str) -> tuple[str, str, float]:
    """(element, shell, tabulated onset eV) of an edge or one of its spin-orbit lines, else InputError."""
    rows = EDGES[EDGES["element"].str.lower() == element.lower()]
    if not len(rows):
        raise InputError(f"unknown element {element!r} in the edge list; use a symbol such as 'Ti' or 'O'")
    shell = _SHELL.get(edge.upper().replace(" ", ""), edge.upper().replace(" ", ""))
    lines = rows[rows["edge"].map(lambda e: _SHELL.get(e, e) == shell)]
    if not len(lines):
        raise InputError(f"{element} has no {edge!r} edge in the table (it has {', '.join(rows['edge'])})")
    return str(lines["element"].iloc[0]), shell, float(lines["onset_ev"].min())


def _key(element, edge) -> tuple[str, str] | None:
    """(element, shell) of a named table row, None for an unnamed onset."""
    if not isinstance(element, str) or not isinstance(edge, str):
        return None
    return _shell(element, edge)[:2]


def _edge_list(edges, si, energy: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """One dict per edge shell, by energy (element, shell, slug, reference onset eV), and every onset
    known in the spectrum (eV, mapped or not), which the windows of the mapped edges must avoid."""
    if edges is None:
        edges = find_edges(si)
    found, known = {}, []
    if isinstance(edges, pd.DataFrame):
        if "element" not in edges or "edge" not in edges or not ({"measured_onset_ev", "onset_ev"} & set(edges)):
            raise InputError("edges must be an edge table with 'element', 'edge' and 'measured_onset_ev' or 'onset_ev' "
                             "columns (find_edges, annotate_eels or unmix_spectra annotations), or a list of names")
        col = "measured_onset_ev" if "measured_onset_ev" in edges else "onset_ev"
        known = [(float(on), _key(el, ed)) for el, ed, on in zip(edges["element"], edges["edge"], edges[col])
                 if np.isfinite(on)]
        for el, ed, on in zip(edges["element"], edges["edge"], edges[col]):
            if not isinstance(el, str) or not isinstance(ed, str) or not np.isfinite(on):
                continue  # an unnamed onset has no element to map
            element, shell, _ = _shell(el, ed)
            found[(element, shell)] = min(found.get((element, shell), np.inf), float(on))
    else:
        names = [edges] if isinstance(edges, str) else list(edges)
        detected = None
        for name in names:
            parts = str(name).strip().split(maxsplit=1)
            if len(parts) != 2:
                raise InputError(f"edge name {name!r} must be 'Element Edge', e.g. 'Ti L2,3' or 'O K'")
            element, shell, tab = _shell(*parts)
            if detected is None:
                detected = find_edges(si)
                known = [(float(on), _key(el, ed)) for el, ed, on in zip(detected["element"], detected["edge"],
                                                                          detected["measured_onset_ev"])]
            # the measured onset on the summed spectrum, when one is named so, else the tabulated one
            hit = detected[(detected["element"] == element) & detected["edge"].map(
                lambda e, s=shell: isinstance(e, str) and _SHELL.get(e, e) == s)]
            found[(element, shell)] = float(hit["measured_onset_ev"].min()) if len(hit) else tab
    if not found:
        raise InputError("no named edge to map: give edges=['Ti L2,3', ...] or an annotated edge table")
    out = []
    for (element, shell), ref in sorted(found.items(), key=lambda kv: kv[1]):
        if not energy[0] < ref < energy[-1]:
            raise InputError(f"the {element} {shell} edge at {ref:g} eV lies outside the energy axis "
                             f"{energy[0]:g}..{energy[-1]:g} eV; drop it or record that range")
        out.append({"element": element, "edge": shell, "slug": slug(element, shell), "ref_ev": ref})
    # lines of a mapped shell (L2 of L2,3, M4 of M4,5) are part of it, not neighbours
    others = [on for on, key in known if key not in found]
    return out, np.asarray(others + [it["ref_ev"] for it in out], dtype=np.float64)


def _spatial_mean(data: np.ndarray, smooth_px: int) -> tuple[np.ndarray, float]:
    """Counts averaged over (2 smooth_px + 1)^2 neighbours (same grid) and the number averaged."""
    if smooth_px == 0:
        return data, 1.0
    if data.ndim != 3:
        raise InputError(f"smooth_px needs a (y, x, energy) spectrum image, got {data.ndim - 1} spatial axes")
    k = 2 * smooth_px + 1
    return uniform_filter(data, size=(k, k, 1), mode="reflect"), float(k * k)


def _crossing(s: np.ndarray, half: np.ndarray, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional channel where each row of ``s`` first reaches ``half`` in [i0, i1) (NaN if it never does
    or already starts there: no rise inside the search window), whether it does, and the rise per channel
    between the two channels that bracket it."""
    above = s[:, i0:i1] >= half[:, None]
    first = np.argmax(above, axis=1)
    ok = above.any(axis=1) & (first > 0)
    j = i0 + np.maximum(first, 1)
    rows = np.arange(s.shape[0])
    lo, hi = s[rows, j - 1], s[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((half - lo) / (hi - lo), 0.0, 1.0)
    return np.where(ok, j - 1 + frac, np.nan), ok, hi - lo


def _interp_rows(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Each row of ``values`` at its fractional channel ``pos`` (NaN stays NaN)."""
    p = np.nan_to_num(pos, nan=0.0)
    i = np.clip(np.floor(p).astype(int), 0, values.shape[1] - 2)
    f = p - i
    rows = np.arange(values.shape[0])
    out = values[rows, i] * (1.0 - f) + values[rows, i + 1] * f
    return np.where(np.isnan(pos), np.nan, out)


def _background_cov(amp, r, chi2, energy, lo: float, hi: float) -> tuple[np.ndarray, ...]:
    """Per-pixel covariance (var ln A, cov, var r') of the power law ln bg = ln A + r' ln E (r' = -r),
    from its Poisson weights (the model counts) and scaled by chi2_red, as for r_err of fit_power_law."""
    e = energy[(energy >= lo) & (energy <= hi)]
    x = np.log(e)[None, :]
    mu = amp[:, None] * e[None, :] ** (-r[:, None])
    s0, s1, s2 = mu.sum(axis=1), (mu * x).sum(axis=1), (mu * x * x).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.nan_to_num(np.maximum(chi2, 0.0)) / (s0 * s2 - s1 * s1)
    return s2 * scale, -s1 * scale, s0 * scale


def _quad(cov, g0, g1) -> np.ndarray:
    """Variance of the functional with gradient (g0, g1) in (ln A, r')."""
    caa, cab, cbb = cov
    return np.maximum(np.nan_to_num(g0 * g0 * caa + 2.0 * g0 * g1 * cab + g1 * g1 * cbb), 0.0)


def _measure(c: np.ndarray, n_avg: float, energy: np.ndarray, step: float, ref: float, prev_ref, next_ref,
             p: dict) -> dict:
    """Onset, its error, strength and its error (flat pixel arrays) of one edge."""
    hi_bg = ref - p["gap_ev"]
    lo_bg = max(float(energy[0]), hi_bg - p["pre_ev"])
    if prev_ref is not None:
        lo_bg = max(lo_bg, prev_ref + _PREV_CLEAR_EV)
    if np.count_nonzero((energy >= lo_bg) & (energy <= hi_bg)) < MIN_CHANNELS:
        raise InputError(f"fewer than {MIN_CHANNELS} channels lie before the edge at {ref:g} eV for a background; "
                         "record more pre-edge range or drop that edge")
    par = fit_power_law(c, energy, (lo_bg, hi_bg))
    amp, r = par[:, 0], np.nan_to_num(par[:, 1])
    cov = _background_cov(amp, r, par[:, 3], energy, lo_bg, hi_bg)
    end = energy[-1] if next_ref is None else next_ref - p["gap_ev"]
    # work only on channels from the background window's end to the last one any window needs
    i_a = int(np.searchsorted(energy, min(hi_bg, ref - p["search_ev"])))
    i_b = int(np.searchsorted(energy, min(end, ref + max(p["window_ev"], p["level_ev"], p["search_ev"])), "right"))
    e = energy[i_a:i_b]
    raw = c[:, i_a:i_b]
    sub = raw - amp[:, None] * e[None, :] ** (-r[:, None])
    sig_ch = p["smooth_ev"] / step
    s = gaussian_filter1d(sub, sig_ch, axis=1, mode="nearest") if sig_ch > 0 else sub
    var = np.maximum(gaussian_filter1d(raw, max(sig_ch, 1.0), axis=1, mode="nearest"), 0.0) / n_avg
    # variance of a Gaussian-smoothed channel: the counts' variance seen through the squared kernel
    var_s = (gaussian_filter1d(var, sig_ch / np.sqrt(2.0), axis=1, mode="nearest") / (2.0 * np.sqrt(np.pi) * sig_ch)
             if sig_ch > 0 else var)
    lev = (e >= ref) & (e <= min(ref + p["level_ev"], end))
    if lev.sum() < 2:
        raise InputError(f"the edge at {ref:g} eV has under 2 channels before the next edge or the axis end; "
                         "record more range above it or drop it")
    level = s[:, lev].mean(axis=1)
    var_level = var[:, lev].sum(axis=1) / lev.sum() ** 2
    half = 0.5 * level
    j0 = int(np.searchsorted(e, ref - p["search_ev"]))
    j1 = int(np.searchsorted(e, ref + p["search_ev"], "right"))
    pos, ok, rise = _crossing(s, half, j0, j1)
    ok &= level > _MIN_LEVEL_SIGMA * np.sqrt(var_level)  # no edge above the noise: no onset to report
    pos = np.where(ok, pos, np.nan)
    onset = energy[i_a] + pos * step
    # the interpolated crossing responds to noise through the secant between its two channels (not the
    # edge's true slope); after smoothing along energy that secant is itself nearly noise-free
    slope = rise / step
    # background uncertainty: the fitted line's (ln A, r) covariance seen through bg(E*) - level_bg / 2
    bg = raw - sub  # the fitted background on these channels
    xe = np.log(e)[None, :]
    g0 = _interp_rows(bg, pos) - 0.5 * bg[:, lev].mean(axis=1)
    g1 = _interp_rows(bg * xe, pos) - 0.5 * (bg * xe)[:, lev].mean(axis=1)
    sd = np.sqrt(_interp_rows(var_s, pos) + 0.25 * var_level + _quad(cov, g0, g1))
    with np.errstate(divide="ignore", invalid="ignore"):
        onset_err = np.where(slope > 0, sd / slope, np.nan)
    # an onset less certain than the search window is noise that happened to cross the half level
    unsure = ~(onset_err <= p["search_ev"])
    onset, onset_err = np.where(unsure, np.nan, onset), np.where(unsure, np.nan, onset_err)
    win = (e >= ref - _LEAD_EV) & (e <= min(ref + p["window_ev"], end))
    strength = sub[:, win].sum(axis=1)
    strength_err = np.sqrt(var[:, win].sum(axis=1) + _quad(cov, bg[:, win].sum(axis=1),
                                                            (bg * xe)[:, win].sum(axis=1)))
    return {"onset": onset, "onset_err": onset_err, "intensity": strength, "intensity_err": strength_err,
            "background_ev": (float(lo_bg), float(hi_bg)), "level_ev": (float(ref), float(e[lev][-1])),
            "intensity_ev": (float(e[win][0]), float(e[win][-1]))}


def edge_maps(si: xr.DataArray, edges: pd.DataFrame | list[str] | None = None, *, window_ev=None,
              smooth_px: int = 0, smooth_ev: float = 1.0, level_ev: float = 15.0, search_ev: float = 5.0,
              gap_ev: float = 5.0, pre_ev: float | None = None) -> xr.Dataset:
    """Per-pixel onset energy and strength of EELS core-loss edges, for correlation with structure.

    Parameters
    ----------
    si : xarray.DataArray, dims (..., "energy")
        EELS spectrum image in counts (e.g. ``("y", "x", "energy")``), energy in eV: evenly
        spaced, increasing, above 0, no NaN. Loaded into memory (dask input is computed).
    edges : DataFrame, list of str or None
        Edges to map: an edge table with ``element``, ``edge`` and ``measured_onset_ev`` or
        ``onset_ev`` (:func:`find_edges`, :func:`annotate_eels`, the annotations of
        ``unmix_spectra``; spin-orbit lines are grouped into L2,3 / M4,5 shells), names
        such as ``["Ti L2,3", "O K", "La M4,5"]``, or None to detect and name the edges of
        the summed spectrum. Each edge's reference onset is its measured onset on the
        summed spectrum where one is known, else the tabulated one.
    window_ev : float, optional
        Width (eV) of the strength window above the reference onset (default 40 eV; it starts
        2 eV below the onset and is cut ``gap_ev`` before the next edge).
    smooth_px : int
        Average each spectrum with its (2 smooth_px + 1)^2 neighbours first (same grid). It
        cuts the onset noise by about that factor's square root at the cost of spatial
        resolution, and makes neighbouring pixels' values correlated (fewer independent
        samples for a correlation test). 0 (default) keeps every pixel independent.
    smooth_ev : float
        Standard deviation (eV) of the Gaussian smoothing along energy before the onset is
        located (0: none). Wider smoothing lowers noise but blurs fine structure.
    level_ev : float
        The post-edge level is the mean signal over this many eV above the reference onset.
    search_ev : float
        The onset is searched within this many eV of the reference onset (larger than the
        expected shifts); pixels with no crossing there get NaN.
    gap_ev, pre_ev : float
        The background window ends ``gap_ev`` below the reference onset and spans ``pre_ev``
        (default 15 % of the onset), starting at least 20 eV above a previous edge.

    Returns
    -------
    xarray.Dataset
        On the pixel grid of ``si``, for each edge slug (``ti_l23``, ``o_k``, ``la_m45``):
        ``edge_onset_<slug>`` and ``edge_onset_<slug>_err`` (eV, 1-sigma from Poisson noise),
        ``edge_intensity_<slug>`` and ``edge_intensity_<slug>_err`` (background-subtracted
        counts summed over the strength window; after ``smooth_px`` averaging, per pixel).
        ``attrs["edges"]``: per slug the reference onset and the background, level and
        strength windows (eV); ``attrs["parameters"]``.

    Raises
    ------
    InputError
        No energy axis, a non-monotonic or uneven axis, NaN channels, an edge outside the
        axis or without pre-edge range, or bad parameters.
    """
    data, energy = spectral_data(si, "energy", "the EELS spectrum image")
    _, step = uniform_axis(energy, "the energy axis", min_channels=16)
    if energy[0] <= 0:
        raise InputError(f"the energy axis starts at {energy[0]:g} eV; crop the zero-loss region first")
    data = finite(np.asarray(data.compute() if hasattr(data, "compute") else data), "the EELS spectrum image")
    if not isinstance(smooth_px, (int, np.integer)) or isinstance(smooth_px, bool) or smooth_px < 0:
        raise InputError(f"smooth_px must be a whole number >= 0, got {smooth_px!r}")
    p = {"window_ev": WINDOW_EV if window_ev is None else number(window_ev, "window_ev", positive=True,
                                                                  allow_zero=False),
         "smooth_ev": number(smooth_ev, "smooth_ev", positive=True),
         "level_ev": number(level_ev, "level_ev", positive=True, allow_zero=False),
         "search_ev": number(search_ev, "search_ev", positive=True, allow_zero=False),
         "gap_ev": number(gap_ev, "gap_ev", positive=True)}
    items, known = _edge_list(edges, si, energy)
    c, n_avg = _spatial_mean(data, int(smooth_px))
    lead = c.shape[:-1]
    flat = c.reshape(-1, c.shape[-1])
    dims = si.dims[:-1]
    coords = {d: si.coords[d] for d in dims if d in si.coords}
    out = xr.Dataset(coords=coords)
    info = {}
    for k, it in enumerate(items):
        # neighbouring edges, mapped or not: the background must not be fitted across one, nor the strength
        # summed into one (lines of the same shell, within the level window, are not neighbours)
        below = known[known < it["ref_ev"] - _SAME_EDGE_EV]
        above = known[known > it["ref_ev"] + max(p["level_ev"], _SAME_EDGE_EV)]
        prev = float(below.max()) if below.size else None
        nxt = float(above.min()) if above.size else None
        q = {**p, "pre_ev": 0.15 * it["ref_ev"] if pre_ev is None else number(pre_ev, "pre_ev", positive=True,
                                                                                  allow_zero=False)}
        m = _measure(flat, n_avg, energy, step, it["ref_ev"], prev, nxt, q)
        name = f"{it['element']} {it['edge']}"
        for key, units, long in (("onset", "eV", "onset (half post-edge level)"),
                                 ("intensity", "counts", "background-subtracted strength")):
            for suffix, what in (("", long), ("_err", f"1-sigma error of the {long}")):
                var = f"edge_{key}_{it['slug']}{suffix}"
                out[var] = xr.DataArray(m[key + suffix].reshape(lead).astype(np.float32), dims=dims,
                                        attrs={"units": units, "long_name": f"{name} {what}"})
        info[it["slug"]] = {"label": name, "reference_onset_ev": it["ref_ev"], "background_ev": m["background_ev"],
                            "level_ev": m["level_ev"], "intensity_ev": m["intensity_ev"]}
    out.attrs = {"edges": info, "parameters": {**p, "smooth_px": int(smooth_px)}}
    return out


__all__ = ["WINDOW_EV", "edge_maps", "slug"]
