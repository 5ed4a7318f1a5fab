"""EDS spectrum images: detector resolution, elemental maps and identification of X-ray lines.

An EDS spectrum is a smooth bremsstrahlung background with Gaussian X-ray lines on top,
broadened by the silicon detector: FWHM(E)^2 = FWHM(Mn Ka)^2 + 2.5 eV (E - 5899 eV), the
Fano-limited law whose slope 2.5 eV = 8 ln2 F eps (Fano factor F ~ 0.115, eps = 3.8 eV per
electron-hole pair in Si). An elemental map integrates each line over a window of
``width`` FWHM and subtracts the background interpolated linearly from two side windows
of the same width that avoid the other lines of the elements present. Line identification
finds significant peaks in the summed spectrum and chooses the set of elements that
explains them.

Line energies and weights come from :mod:`.xray_lines`; identification lives in :mod:`.eds_identify`.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..data.provenance import array_hash, with_step
from ..data.units import energy_factor_to_ev
from ..errors import InputError
from ._checks import is_dask, number, spectral_data
from .xray_lines import check_element, main_line, parse_line, xray_lines

FWHM_MNKA_EV = 130.0  # a typical silicon-drift detector at Mn Ka
MN_KA_EV = 5898.7
FANO_SLOPE_EV = 2.5   # 8 ln2 * F * eps: the statistical (Fano) broadening per eV of photon energy
WIDTH_FWHM = 1.2      # default line window, in FWHM: +-1.41 sigma, 84 % of a Gaussian line's counts
MAX_SHIFT = 4.0       # side windows slide outward at most this many window widths before giving up
OBSTACLE_WEIGHT = 0.05  # lines weaker than this (relative to their family's principal line) do not block a window


def fwhm_ev(energy_ev, fwhm_mnka_ev: float = FWHM_MNKA_EV):
    """Detector resolution FWHM (eV) at ``energy_ev`` from its FWHM at Mn Ka (5899 eV).

    FWHM(E) = sqrt(FWHM_MnKa^2 + 2.5 eV (E - 5899 eV)), floored at FWHM_MnKa / 4 so that a
    very good detector never gets an imaginary width near 0 eV.
    """
    f = number(fwhm_mnka_ev, "fwhm_mnka_ev", positive=True, allow_zero=False)
    radicand = f * f + FANO_SLOPE_EV * (np.asarray(energy_ev, dtype=np.float64) - MN_KA_EV)
    return np.sqrt(np.maximum(radicand, (0.25 * f) ** 2))


def energy_axis_ev(spectra, what: str = "the EDS spectra"):
    """(data, energy axis in eV) of a DataArray whose ``"energy"`` coordinate says its units (eV or keV).

    Raises
    ------
    InputError
        No energy axis or not last, no units, unknown units, NaN, or not strictly increasing.
    """
    data, axis = spectral_data(spectra, "energy", what)
    units = spectra.coords["energy"].attrs.get("units")
    if not units:
        raise InputError(f"{what}: the energy axis has no units; set da.energy.attrs['units'] to 'eV' or 'keV'")
    e = axis * energy_factor_to_ev(units)
    if e.size < 8 or not np.all(np.isfinite(e)):
        raise InputError(f"{what}: the energy axis needs at least 8 finite channels, got {e.size}")
    if np.any(np.diff(e) <= 0):
        raise InputError(f"{what}: the energy axis is not strictly increasing; fix the calibration")
    return data, e


def _check_values(data, what: str) -> None:
    # integer counts are always finite; a float array is checked now, a dask one is not computed here
    if not is_dask(data) and np.asarray(data).dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise InputError(f"{what} holds NaN or inf; mask or interpolate them first")


def _targets(si, elements, lines, e_ev) -> tuple[list[tuple[str, str]], list[str]]:
    """(lines to map as (element, line), every element present) from the arguments or the metadata."""
    if lines is not None:
        targets = [parse_line(lab) for lab in ([lines] if isinstance(lines, str) else lines)]
        present = [el for el, _ in targets]
        if elements is not None:
            present += [check_element(el) for el in ([elements] if isinstance(elements, str) else elements)]
        return targets, list(dict.fromkeys(present))
    if elements is None:
        elements = (si.attrs.get("metadata") or {}).get("elements") or []
        if not elements:
            from .eds_identify import identify_lines  # the identification imports this module

            elements = identify_lines(si)[1]
        if not elements:
            raise InputError("no elements given, none in the metadata and none identified in the summed spectrum; "
                             "pass elements=['Ni', ...] or lines=['Ni_Ka', ...]")
    present = [check_element(el) for el in ([elements] if isinstance(elements, str) else elements)]
    targets = []
    for el in dict.fromkeys(present):
        name = main_line(el, e_min_keV=max(e_ev[0], 100.0) / 1000, e_max_keV=e_ev[-1] / 1000)
        if name is None:
            raise InputError(f"no principal line (Ka, La, Ma) of {el} lies on the energy axis "
                             f"{e_ev[0] / 1000:g}..{e_ev[-1] / 1000:g} keV; give lines=[...] explicitly")
        targets.append((el, name))
    return targets, list(dict.fromkeys(present))


def _obstacles(present, e_ev, fwhm_mnka_ev) -> list[tuple[str, float, float]]:
    """(label, start, end) in eV that side windows must avoid: +-1 FWHM around each line present, and the noise peak."""
    out = []
    for el in present:
        for ln in xray_lines(el).values():
            centre = ln.energy_keV * 1000
            if ln.weight >= OBSTACLE_WEIGHT and e_ev[0] - 500 <= centre <= e_ev[-1] + 500:
                f = float(fwhm_ev(centre, fwhm_mnka_ev))
                out.append((f"{el}_{ln.line}", centre - f, centre + f))
    if e_ev[0] <= 0.0:  # the detector's zero-energy noise (strobe) peak
        f = float(fwhm_ev(0.0, fwhm_mnka_ev))
        out.append(("zero peak", -2 * f, 2 * f))
    return out


def _channels(e_ev, lo, hi) -> np.ndarray:
    return np.flatnonzero((e_ev >= lo) & (e_ev <= hi))


def _side_window(e_ev, centre, w, sign, own, obstacles, min_ch):
    """Nearest window of width ``w`` on one side of ``centre`` that stays on the axis and clear of obstacles."""
    step = w / 4
    for k in range(int(MAX_SHIFT * 4) + 1):
        inner = centre + sign * (w + k * step)
        lo, hi = sorted((inner, inner + sign * w))
        if lo < e_ev[0] or hi > e_ev[-1]:
            return None  # sliding further only leaves the axis more
        if any(lab != own and a < hi and b > lo for lab, a, b in obstacles):
            continue
        idx = _channels(e_ev, lo, hi)
        if idx.size >= min_ch:
            return lo, hi, idx
    return None


def _line_weights(targets, present, e_ev, width, fwhm_mnka_ev, background):
    """Matrix (n_energy, n_lines) whose product with a spectrum gives each line's net counts, and the windows."""
    step = float(np.median(np.diff(e_ev)))
    obstacles = _obstacles(present, e_ev, fwhm_mnka_ev) if background else []
    weights = np.zeros((e_ev.size, len(targets)))
    info = []
    for k, (el, name) in enumerate(targets):
        label = f"{el}_{name}"
        centre = xray_lines(el)[name].energy_keV * 1000
        f = float(fwhm_ev(centre, fwhm_mnka_ev))
        w = width * f
        lo, hi = centre - w / 2, centre + w / 2
        if lo < e_ev[0] - step / 2 or hi > e_ev[-1] + step / 2:
            raise InputError(f"the {label} window {lo / 1000:.3f}..{hi / 1000:.3f} keV lies outside the energy axis "
                             f"{e_ev[0] / 1000:g}..{e_ev[-1] / 1000:g} keV; choose lines on the axis")
        idx = _channels(e_ev, lo, hi)
        if idx.size == 0:
            raise InputError(f"the {label} window ({w:.0f} eV) holds no channel of {step:g} eV; increase width")
        weights[idx, k] = 1.0
        rec = {"line_keV": centre / 1000, "fwhm_ev": f, "window_ev": [float(e_ev[idx[0]] - step / 2),
                                                                       float(e_ev[idx[-1]] + step / 2)],
               "background": "none", "background_windows_ev": []}
        if background:
            min_ch = min(3, idx.size)
            sides = [_side_window(e_ev, centre, w, s, label, obstacles, min_ch) for s in (-1, 1)]
            found = [s for s in sides if s is not None]
            n = idx.size
            if len(found) == 2:
                (_, _, il), (_, _, ir) = found
                el_c, er_c = e_ev[il].mean(), e_ev[ir].mean()
                # sum over the line's channels of the straight line through the two windows' mean counts
                frac = np.sum(e_ev[idx] - el_c) / (er_c - el_c)
                weights[il, k] -= (n - frac) / il.size
                weights[ir, k] -= frac / ir.size
                rec["background"] = "linear"
            elif len(found) == 1:
                ii = found[0][2]
                weights[ii, k] -= n / ii.size
                rec["background"] = "flat (one side window only)"
            else:
                warnings.warn(f"{label}: no background window fits beside the line (other lines or the axis end "
                              "are in the way); its map holds gross counts", stacklevel=3)
            rec["background_windows_ev"] = [[float(e_ev[s[2][0]] - step / 2), float(e_ev[s[2][-1]] + step / 2)]
                                            for s in found]
        info.append((label, rec))
    return weights, info


def elemental_maps(si, elements=None, lines=None, *, width=None, background: bool = True,
                   fwhm_mnka_ev: float = FWHM_MNKA_EV) -> xr.Dataset:
    """Net counts of X-ray lines per pixel, by window integration with a linear background.

    Parameters
    ----------
    si : xarray.DataArray, dims (..., "energy")
        EDS counts, e.g. ``("y", "x", "energy")``; numpy or dask backed (dask stays lazy).
        The energy coordinate must carry ``attrs["units"]`` ``"eV"`` or ``"keV"``.
    elements : sequence of str, optional
        Elements to map, each by its principal line on the axis (Ka, else La, else Ma).
        Default: ``si.attrs["metadata"]["elements"]``, else those :func:`identify_lines` finds.
        With ``lines`` they only add lines for the side windows to avoid.
    lines : sequence of str, optional
        Lines to map, written ``"Element_Line"`` (``"Ni_Ka"``, ``"Au_Ma"``).
    width : float, optional
        Window full width in units of the local FWHM (default 1.2).
    background : bool
        Subtract the background interpolated linearly under the line from two side windows
        of the same width; a side window that overlaps +-1 FWHM of another line of the
        elements present (or the zero-energy noise peak) slides outward, up to 4 widths.
    fwhm_mnka_ev : float
        Detector resolution at Mn Ka (eV); the width at other energies follows :func:`fwhm_ev`.

    Returns
    -------
    xarray.Dataset
        One variable per line, named ``"Element_Line"``, with the pixel dims of ``si`` and
        ``units`` ``"counts"`` (float64). Each variable's attrs: ``line_keV``, ``fwhm_ev``,
        ``window_ev`` (channel edges integrated), ``background`` (``linear``, ``flat`` or
        ``none``), ``background_windows_ev``; the Dataset's attrs repeat them under ``windows``.

    Raises
    ------
    InputError
        No units or a non-increasing energy axis, an unknown element or line, or a line
        window outside the axis.
    """
    data, e_ev = energy_axis_ev(si, "the EDS spectrum image")
    _check_values(data, "the EDS spectrum image")
    width = WIDTH_FWHM if width is None else number(width, "width (in FWHM)", positive=True, allow_zero=False)
    targets, present = _targets(si, elements, lines, e_ev)
    weights, info = _line_weights(targets, present, e_ev, width, fwhm_mnka_ev, bool(background))
    w = xr.DataArray(weights, dims=("energy", "line"), coords={"line": [lab for lab, _ in info]})
    # one matrix product over the energy axis: vectorised over pixels, lazy and chunk-wise for dask
    net = xr.dot(si.drop_vars("energy").astype(np.float64), w, dim="energy")
    params = {"width_fwhm": float(width), "fwhm_mnka_ev": float(fwhm_mnka_ev), "background": bool(background),
              "lines": [lab for lab, _ in info]}
    input_hash = None if is_dask(data) else array_hash(si)
    out = xr.Dataset()
    for label, rec in info:
        var = net.sel(line=label, drop=True)
        var.attrs = {"units": "counts", "long_name": f"{label.replace('_', ' ')} net counts", **rec}
        out[label] = with_step(var, "spectra.elemental_maps", params, input_hash)
    out.attrs = {"signal": "EDS maps", "width_fwhm": float(width), "fwhm_mnka_ev": float(fwhm_mnka_ev),
                 "windows": {label: rec for label, rec in info}}
    return out


__all__ = ["FWHM_MNKA_EV", "elemental_maps", "energy_axis_ev", "fwhm_ev"]
