"""Which elements an EDS spectrum contains: peaks above a SNIP background, matched to X-ray lines.

Split from :mod:`atomine.spectra.eds` (windows and maps); this module finds significant peaks,
explains them with the fewest elements whose main line is present, and reports detector
artefacts (Si escape and sum peaks, the Cu of grids and holders) as rows of their own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from ._checks import is_dask, number
from .eds import FWHM_MNKA_EV, _check_values, energy_axis_ev, fwhm_ev
from .xray_lines import ELEMENTS, check_element, main_line, xray_lines

SI_KA_EV = 1739.7      # a photon that ionises the Si detector's K shell may leave with its Si Ka: escape peak
SI_K_EDGE_EV = 1839.0
LOW_KEV = 0.15         # below this the detector's zero-energy noise peak dominates
MIN_WEIGHT = 0.02      # lines weaker than this never decide anything
CROSS_FAMILY_KEV = 1.0  # a second family above this energy must show when the main line is strong
ARTEFACT_ELEMENTS = {"Cu": "grid/holder"}
SECONDARY_MARGIN = 1.5
SUM_MIN_EV = 2000.0
FLANK_RATIO = 0.8      # twice the smaller flank over the core: 0.18 for a Gaussian line, ~1 for a broad hump
ID_COLUMNS = ["element", "line", "energy_keV", "measured_keV", "counts", "snr", "origin", "blend", "shared_with",
              "note"]
# Not searched unless asked for: neon and krypton (gases no specimen holds) and the short-lived radioactive
# elements; their lines would otherwise "explain" peaks of common elements (Ne Ka sits on Ni La).
UNLIKELY = frozenset({"Ne", "Kr", "Tc", "Pm", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Pa"})


def _snip_background(counts: np.ndarray, half_width_ch: np.ndarray) -> np.ndarray:
    """SNIP clipping (Ryan et al. 1988) with a per-channel window: the smooth continuum under the peaks.

    The log-log-sqrt transform compresses the dynamic range so that small and large peaks
    are clipped alike; each pass replaces a channel by the mean of its neighbours ``w``
    channels away when that is lower, for w = 1 .. the local clipping half-width.
    """
    v = np.log(np.log(np.sqrt(np.maximum(counts, 0.0) + 1.0) + 1.0) + 1.0)
    for w in range(1, int(half_width_ch.max()) + 1):
        mean = 0.5 * (v[:-2 * w] + v[2 * w:])
        inner = v[w:-w]
        v[w:-w] = np.where(half_width_ch[w:-w] >= w, np.minimum(inner, mean), inner)
    return (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0


def _find_peaks(counts, e_ev, fwhm_mnka_ev, min_snr):
    """Significant peaks: dict of arrays energy_ev (centroid), counts (net), snr, and the background."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    step = float(np.median(np.diff(e_ev)))
    f = fwhm_ev(e_ev, fwhm_mnka_ev)
    sigma_ch = max(1.0, float(f.min()) / 2.355 / step)  # matched to the narrowest line on the axis
    # clip the smoothed spectrum: on raw counts of a few per channel SNIP sinks into the Poisson minima
    bg = _snip_background(gaussian_filter1d(counts, sigma_ch, mode="nearest"), np.ceil(2.0 * f / step))
    net = counts - bg
    smooth = gaussian_filter1d(net, sigma_ch, mode="nearest")
    # noise of the smoothed net counts: Poisson variance of the counts through the Gaussian kernel
    kernel_gain = 1.0 / np.sqrt(2.0 * np.sqrt(np.pi) * sigma_ch)
    noise = np.sqrt(np.maximum(gaussian_filter1d(counts, sigma_ch, mode="nearest"), 1.0)) * kernel_gain
    with warnings.catch_warnings():  # every maximum is a candidate, flat ones (prominence 0) included
        warnings.filterwarnings("ignore", message="some peaks have a prominence of 0")
        cand, props = find_peaks(smooth, prominence=0.0, wlen=int(4 * f.max() / step) | 1)
    # significant above the continuum, and a real maximum rather than a noise ripple (on a neighbour's
    # flank the prominence understates a line, so it only has to beat 2 sigma)
    keep = (smooth[cand] >= min_snr * noise[cand]) & (props["prominences"] >= 2.0 * noise[cand])
    found = []
    for p in cand[keep]:
        half = 0.6 * f[p]
        idx = np.flatnonzero(np.abs(e_ev - e_ev[p]) <= half)
        gross, n = counts[idx].sum(), net[idx].sum()
        snr = n / np.sqrt(max(gross, 1.0))  # Poisson: the variance of the counts in the window
        # a line is as narrow as the detector makes it: +-0.6 FWHM holds 84 % of a Gaussian, each flank out
        # to 1.2 FWHM 7.6 %; a broad residue of the continuum (its low-energy maximum) has both flanks as
        # big as the core, while a neighbouring line raises one flank only
        d = e_ev - e_ev[p]
        flanks = min(net[(d < -half) & (d >= -2 * half)].sum(), net[(d > half) & (d <= 2 * half)].sum())
        if snr < min_snr or 2 * flanks >= FLANK_RATIO * n:
            continue
        pos = np.clip(net[idx], 0.0, None)
        centre = float(np.sum(pos * e_ev[idx]) / pos.sum()) if pos.sum() > 0 else float(e_ev[p])
        found.append((centre, float(n), float(snr), float(bg[idx].sum())))
    found.sort()
    merged = []  # two maxima closer than half a FWHM are one line broken up by noise
    for pk in found:
        if merged and pk[0] - merged[-1][0] < 0.5 * float(fwhm_ev(pk[0], fwhm_mnka_ev)):
            if pk[2] > merged[-1][2]:
                merged[-1] = pk
            continue
        merged.append(pk)
    return merged, bg


def _groups(element, lo_ev, hi_ev, fwhm_mnka_ev):
    """The element's lines on the axis, merged where closer than 1.1 FWHM (the detector shows one peak).

    Each group: family, label (its strongest line), energy (weight-averaged, eV), weight, blend.
    """
    out = []
    lines = sorted((ln for ln in xray_lines(element).values() if ln.weight >= MIN_WEIGHT
                    and lo_ev <= ln.energy_keV * 1000 <= hi_ev), key=lambda ln: ln.energy_keV)
    for family in ("K", "L", "M"):
        members = [ln for ln in lines if ln.line[0] == family]
        clusters = []
        for ln in members:
            if clusters and ln.energy_keV * 1000 - clusters[-1][-1].energy_keV * 1000 < 1.1 * float(
                    fwhm_ev(ln.energy_keV * 1000, fwhm_mnka_ev)):
                clusters[-1].append(ln)
            else:
                clusters.append([ln])
        for cl in clusters:
            wsum = sum(ln.weight for ln in cl)
            top = max(cl, key=lambda ln: ln.weight)
            out.append({"family": family, "line": top.line, "energy_keV": top.energy_keV, "weight": wsum,
                        "centre_ev": sum(ln.weight * ln.energy_keV for ln in cl) * 1000 / wsum,
                        "blend": "+".join(ln.line for ln in cl if ln is not top),
                        "principal": any(ln.line in ("Ka", "La", "Ma") for ln in cl)})
    return out


def _match(centre_ev, peaks, tol_ev):
    """Index of the peak nearest ``centre_ev`` within ``tol_ev``, or None."""
    if not peaks:
        return None
    d = np.abs(np.array([p[0] for p in peaks]) - centre_ev)
    i = int(np.argmin(d))
    return i if d[i] <= tol_ev else None


def _explain(element, peaks, bg, e_ev, lo_ev, hi_ev, fwhm_mnka_ev, min_snr):
    """How ``element`` would explain the peaks: {peak index: group}, main peak index, or None if contradicted.

    The main line (Ka, else La, else Ma on the axis) must match a peak (within half a
    FWHM). A line of a family whose principal line matched, predicted by the weights at
    twice the SNR threshold and more than 2 FWHM from the element's stronger lines (closer,
    it hides in their flank), must match too; and when the main line is strong (4x the
    threshold), the principal line of another family above 1 keV must show as well.
    """
    main = main_line(element, e_min_keV=lo_ev / 1000, e_max_keV=hi_ev / 1000)
    if main is None:
        return None
    groups = _groups(element, lo_ev, hi_ev, fwhm_mnka_ev)
    step = float(np.median(np.diff(e_ev)))
    hits = [_match(g["centre_ev"], peaks, max(0.5 * float(fwhm_ev(g["centre_ev"], fwhm_mnka_ev)), 2 * step))
            for g in groups]
    k_main = next(k for k, g in enumerate(groups) if g["line"] == main or main in g["blend"].split("+"))
    if hits[k_main] is None:
        return None
    main_snr = peaks[hits[k_main]][2]
    for k, g in enumerate(groups):
        f = float(fwhm_ev(g["centre_ev"], fwhm_mnka_ev))
        if hits[k] is not None or any(abs(p[0] - g["centre_ev"]) <= 2 * f for p in peaks):
            continue  # found, or possibly hidden in the flank of another peak: no evidence against
        kp = next((j for j, p in enumerate(groups) if p["family"] == g["family"] and p["principal"]), None)
        if kp is not None and kp != k and hits[kp] is not None:
            if any(abs(p["centre_ev"] - g["centre_ev"]) <= 2 * f for p in groups if p["weight"] > g["weight"]):
                continue
            predicted = peaks[hits[kp]][1] * g["weight"] / groups[kp]["weight"]
            idx = np.abs(e_ev - g["centre_ev"]) <= 0.6 * f
            if predicted / np.sqrt(predicted + max(bg[idx].sum(), 1.0)) >= 2 * min_snr:
                return None
        elif g["principal"] and g["centre_ev"] >= CROSS_FAMILY_KEV * 1000 and main_snr >= 4 * min_snr:
            return None
    return {"main": hits[k_main], "family": groups[k_main]["family"],
            "hits": [(hits[k], g) for k, g in enumerate(groups) if hits[k] is not None]}


def _credits(ex, remaining):
    """{peak index: counts} an element accounts for, given the counts the chosen ones left unexplained.

    Its main peak anchors it with all that is left there; a line of the same family is
    credited with at most what the weights predict from it; another family's principal
    line with at most the main line's counts (the ratio between families is not tabulated),
    and that family's other lines again by the weights.
    """
    anchor = {ex["family"]: (remaining[ex["main"]], 1.0)}
    for i, g in ex["hits"]:
        if g["principal"] and g["family"] not in anchor:
            anchor[g["family"]] = (min(remaining[i], remaining[ex["main"]]), g["weight"])
    credit = {}
    for i, g in ex["hits"]:
        base, w = anchor.get(g["family"], (0.0, 1.0))
        # weights are uncertain by tens of percent and omit weak neighbours (Lb3, Lb4 beside Lb1): credit up
        # to 1.5x the prediction, so that a small excess on a known line does not conjure up another element
        want = base if g["principal"] else SECONDARY_MARGIN * base * g["weight"] / w
        credit[i] = min(remaining[i], credit.get(i, 0.0) + max(want, 0.0))
    return credit


def _choose(peaks, explains, min_snr):
    """Greedy: add the element whose credited counts are the most significant, subtract them, repeat."""
    remaining = [p[1] for p in peaks]
    noise = [np.sqrt(max(p[1] + p[3], 1.0)) for p in peaks]
    chosen = []
    while True:
        best, best_gain = None, 0.0
        for el, ex in explains.items():
            if el in chosen or remaining[ex["main"]] < min_snr * noise[ex["main"]]:
                continue  # what is left of its main peak is no longer significant
            gain = sum(c / noise[i] for i, c in _credits(ex, remaining).items())
            if gain > best_gain:
                best, best_gain = el, gain
        if best is None:
            return chosen
        chosen.append(best)
        for i, c in _credits(explains[best], remaining).items():
            remaining[i] -= c


def _artefact(i, peaks, owner, tol):
    """(element, line, expected eV, origin) when peak ``i`` sits at an escape or sum energy of far stronger peaks."""
    e, n = peaks[i][0], peaks[i][1]
    for j in owner:
        ej, nj = peaks[j][0], peaks[j][1]
        if ej > SI_K_EDGE_EV and nj > 20 * n and abs(ej - SI_KA_EV - e) <= tol:
            el, g = owner[j]
            return el, f"{g['line']} escape", ej - SI_KA_EV, "escape"
    strong = sorted(j for j in owner if peaks[j][1] > 20 * n)
    for a in strong:
        for b in strong:  # pile-up of two light-element photons is rare next to the K lines of C..F
            if a <= b and e >= SUM_MIN_EV and abs(peaks[a][0] + peaks[b][0] - e) <= tol:
                (ea, ga), (eb, gb) = owner[a], owner[b]
                return f"{ea}+{eb}", f"{ga['line']}+{gb['line']} sum", peaks[a][0] + peaks[b][0], "sum"
    return None


def identify_lines(spectra, *, min_snr: float = 5.0, fwhm_mnka_ev: float = FWHM_MNKA_EV, candidates=None,
                   artefact_elements=("Cu",), low_kev: float = LOW_KEV):
    """Find the X-ray peaks of a (summed) EDS spectrum and the elements that explain them.

    Peaks: the spectrum (summed over all pixels of a spectrum image; dask is reduced block
    by block) minus a SNIP background, smoothed with a Gaussian as narrow as the narrowest
    line, local maxima whose prominence exceeds ``min_snr`` times the Poisson noise, kept
    when their net counts over +-0.6 FWHM reach ``snr = net / sqrt(counts) >= min_snr``.
    Elements: each candidate's main line must match a peak within half a FWHM and its other
    lines must not contradict the spectrum (see :func:`_explain`); a greedy set cover then
    picks the elements that explain the most peak significance, and drops any whose peaks
    the others already explain.

    Artefacts are reported, never silently dropped: rows with ``origin`` ``"escape"`` (a
    peak 1.740 keV below a strong line above the Si K edge: Si detector escape), ``"sum"``
    (at the sum of two strong lines: pile-up), ``"grid/holder"`` (lines of
    ``artefact_elements``, by default Cu from grids and holders, kept out of the returned
    element list) and ``"unassigned"`` (significant peaks nothing explains). The zero-energy
    noise peak below ``low_kev`` is outside the search.

    Parameters
    ----------
    spectra : xarray.DataArray, dims (..., "energy")
        One EDS spectrum or a spectrum image; energy units eV or keV from the coordinate's attrs.
    min_snr : float
        Poisson significance a peak needs.
    fwhm_mnka_ev : float
        Detector resolution at Mn Ka (eV).
    candidates : sequence of str, optional
        Restrict the search to these elements (default: Be to U).
    artefact_elements : sequence of str
        Elements reported with origin ``"grid/holder"`` and kept out of ``elements``.
    low_kev : float
        Lower end (keV) of the search.

    Returns
    -------
    table : pandas.DataFrame
        One row per peak explanation: ``element``, ``line`` (the group's strongest line),
        ``energy_keV`` (tabulated), ``measured_keV`` (peak centroid), ``counts`` (net),
        ``snr``, ``origin`` (``specimen``, ``grid/holder``, ``escape``, ``sum``,
        ``unassigned``), ``blend`` (unresolved lines in the same peak), ``shared_with``
        (other chosen elements matching the same peak), ``note`` ("one peak only" marks
        an identification resting on a single peak; an escape or sum row names the
        element it could otherwise be). Sorted by ``measured_keV``.
    elements : list of str
        The specimen elements, the one with the most significant peak first.
    """
    
    data, e_ev = energy_axis_ev(spectra, "the EDS spectra")
    _check_values(data, "the EDS spectra")
    min_snr = number(min_snr, "min_snr", positive=True, allow_zero=False)
    lead = tuple(range(np.ndim(data) - 1))
    total = data.sum(axis=lead) if lead else data
    counts = np.asarray(total.compute() if is_dask(total) else total, dtype=np.float64)
    keep = e_ev >= number(low_kev, "low_kev") * 1000
    if keep.sum() < 8:
        raise InputError(f"fewer than 8 channels lie above low_kev = {low_kev:g} keV; nothing to identify")
    counts, e_ev = counts[keep], e_ev[keep]
    lo_ev, hi_ev = float(e_ev[0]), float(e_ev[-1])
    artefacts = {check_element(el) for el in (artefact_elements or ())}
    pool = [el for el in ELEMENTS if el not in UNLIKELY] if candidates is None else \
        list(dict.fromkeys(check_element(el) for el in ([candidates] if isinstance(candidates, str) else candidates)))
    if counts.sum() <= 0:  # an empty spectrum has no peaks
        return pd.DataFrame([], columns=ID_COLUMNS), []
    peaks, bg = _find_peaks(counts, e_ev, fwhm_mnka_ev, min_snr)
    explains = {el: ex for el in pool if (ex := _explain(el, peaks, bg, e_ev, lo_ev, hi_ev, fwhm_mnka_ev, min_snr))}
    chosen = _choose(peaks, explains, min_snr)
    owner = {}
    for el in chosen:
        for i, g in explains[el]["hits"]:
            owner.setdefault(i, (el, g))
    rows, elements = [], []
    for el in chosen:
        hits = explains[el]["hits"]
        origin = ARTEFACT_ELEMENTS.get(el, "grid/holder") if el in artefacts else "specimen"
        note = "one peak only" if len({i for i, _ in hits}) == 1 else ""
        if note:
            # a lone peak at an escape or sum energy of far stronger peaks is more likely that artefact
            others = {k: v for k, v in owner.items() if v[0] != el}
            art = _artefact(explains[el]["main"], peaks, others, 0.5 * float(fwhm_ev(peaks[explains[el]["main"]][0],
                                                                                      fwhm_mnka_ev)))
            if art:
                e, n, snr, _ = peaks[explains[el]["main"]]
                g = hits[0][1]
                rows.append((art[0], art[1], art[2] / 1000, e / 1000, n, snr, art[3], "", "",
                             f"or {el} {g['line']} ({g['energy_keV']:g} keV)"))
                continue
        if origin == "specimen":
            elements.append(el)
        for i, g in hits:
            e, n, snr, _ = peaks[i]
            shared = [o for o in chosen if o != el and any(i == k for k, _ in explains[o]["hits"])]
            rows.append((el, g["line"], g["energy_keV"], e / 1000, n, snr, origin, g["blend"], ",".join(shared), note))
    for i, (e, n, snr, _) in enumerate(peaks):
        if i in owner:
            continue
        art = _artefact(i, peaks, owner, 0.5 * float(fwhm_ev(e, fwhm_mnka_ev)))
        el, line, expect, origin = art if art else ("", "", np.nan, "unassigned")
        rows.append((el, line, expect / 1000, e / 1000, n, snr, origin, "", "", ""))
    table = pd.DataFrame(rows, columns=ID_COLUMNS).sort_values("measured_keV", kind="stable").reset_index(drop=True)
    strongest = {el: max(peaks[i][2] for i, _ in explains[el]["hits"]) for el in elements}
    return table, sorted(elements, key=strongest.get, reverse=True)


__all__ = ["identify_lines"]
