"""Name the X-ray lines each unmixed EDS component contains.

An unmixed EDS component is not a measured spectrum: it is a pure phase's expected counts
per pixel, estimated from many pixels, so its channel values are fractions of a count and
their scatter is neither that of one pixel nor Poisson. Peak significance is therefore
judged on the component scaled to the counts it is worth, ``counts_scale`` times its
per-pixel spectrum, before :func:`~atomine.spectra.eds_identify.identify_lines` tests it:

* at most ``n_pixels``, the number of pixels the component represents (the sum of its
  abundance over the image): a component cannot hold more counts than its pixels gave;
* at most what its own channel scatter says (:func:`noise_scale`: mean level over channel
  variance, which is 1 for a measured spectrum and N for the mean of N): a component found
  as a denoised vertex pixel or by a least-squares fit is noisier than the mean of its
  pixels (on a simulated two-phase image 140 against 290 pixels), and judging it on all
  its pixels would call its noise lines.

A line is reported when it would be significant (Poisson ``snr >= min_snr``) in a spectrum
measured with that many counts; a component that represents almost no pixels has none.
Unassigned peaks next to a strong line of *another* component usually mark its imprint
(the unmixing over- or under-subtracted it), not a missing element.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data.units import energy_factor_to_ev
from ..errors import InputError
from .annotate import _components
from .eds import FWHM_MNKA_EV
from .eds_identify import LOW_KEV, identify_lines

EDS_COLUMNS = ["component", "element", "line", "lines", "energy_keV", "measured_keV", "strength", "snr", "origin",
               "blend", "shared_with", "note", "n_pixels", "counts_scale"]


def _n_pixels(n_pixels, k: int) -> np.ndarray:
    """(k,) pixels each component represents; unbounded when not given."""
    if n_pixels is None:
        return np.full(k, np.inf)
    n = np.asarray(n_pixels, dtype=np.float64)
    n = np.full(k, float(n)) if n.ndim == 0 else n
    if n.shape != (k,) or not np.all(np.isfinite(n)) or np.any(n < 0):
        raise InputError(f"n_pixels must be one finite non-negative number or one per component ({k}), got "
                         f"{np.asarray(n_pixels).shape} values")
    return n


def noise_scale(spectrum: np.ndarray) -> float:
    """The factor that makes ``spectrum`` look like Poisson counts: mean counts over channel variance.

    The channel variance comes from second differences (white noise of variance s^2 gives
    differences of variance 6 s^2; lines and continuum, many channels wide, barely contribute),
    robustly: the median over channels of d2^2 / level (level: the spectrum smoothed over 3
    channels; channels below 5 % of the median level are left out), where d2^2 / (6 s^2),
    chi-square with one degree of freedom, has median 0.455. A measured spectrum gives ~1
    (0.87 for one pixel of a simulated image), the mean of N measured spectra ~N (97 for
    100). Infinite for a noiseless spectrum.
    """
    from scipy.ndimage import gaussian_filter1d

    level = gaussian_filter1d(spectrum, 3.0, mode="nearest")[1:-1]
    d2 = spectrum[:-2] - 2.0 * spectrum[1:-1] + spectrum[2:]
    ok = level > 0.05 * np.median(level[level > 0]) if np.any(level > 0) else level > 0
    if ok.sum() < 8:
        return np.inf
    ratio = float(np.median(d2[ok] ** 2 / level[ok]))
    return 0.455 * 6.0 / ratio if ratio > 0 else np.inf


def _label(row) -> str:
    """A short display name: 'Ni Ka', 'Nb La+Lb1', 'Ni Ka escape', or the energy of an unassigned peak."""
    if row.origin == "unassigned":
        return f"{row.measured_keV:.2f} keV ?"
    blend = f"+{row.blend}" if isinstance(row.blend, str) and row.blend else ""
    return f"{row.element} {row.line}{blend}"


def annotate_eds(endmembers, energy=None, *, n_pixels=None, min_snr: float = 5.0,
                 fwhm_mnka_ev: float = FWHM_MNKA_EV, candidates=None, artefact_elements=("Cu",),
                 low_kev: float = LOW_KEV) -> pd.DataFrame:
    """The X-ray lines (and so the elements) each EDS component contains.

    Parameters
    ----------
    endmembers : xarray.DataArray (component, "energy") or array_like (k, n_e)
        Component spectra in counts per channel per pixel (e.g. the ``endmember`` of
        :func:`atomine.workflows.unmix.unmix_spectra`). A DataArray's energy coordinate
        needs ``attrs["units"]`` (eV or keV); negative values (noise around zero) are clipped.
    energy : array_like (n_e,), optional
        Energy axis (eV) of a plain array; increasing.
    n_pixels : float or array_like (k,), optional
        Pixels each component represents (the sum of its abundance map): the most counts
        its spectrum can be worth (see the module docstring). Default: no bound, the scale
        comes from each spectrum's own channel scatter.
    min_snr : float
        Poisson significance a peak needs in the scaled spectrum.
    fwhm_mnka_ev : float
        Detector resolution at Mn Ka (eV).
    candidates : sequence of str, optional
        Elements to consider (default: Be to U, as :func:`identify_lines`); give the
        elements found in the summed spectrum to keep noise on a faint component from
        being named after an element the specimen lacks.
    artefact_elements : sequence of str
        Reported with origin ``"grid/holder"`` (default Cu).
    low_kev : float
        Lower end (keV) of the search: the detector's zero-energy noise peak lies below it.

    Returns
    -------
    pandas.DataFrame
        One row per component and peak, by component then energy: ``component``,
        ``element``, ``line`` (the strongest line of the peak), ``lines`` (display name,
        e.g. "Nb La+Lb1"), ``energy_keV`` (tabulated), ``measured_keV`` (peak centroid),
        ``strength`` (net line counts per pixel of the pure component, over +-0.6 FWHM),
        ``snr`` (in the scaled spectrum), ``origin`` (``specimen``, ``grid/holder``,
        ``escape``, ``sum``, ``unassigned``), ``blend``, ``shared_with``, ``note`` (as
        :func:`identify_lines`), ``n_pixels`` (as given, inf when not) and ``counts_scale``
        (the factor the spectrum was scaled by for the test).
    """
    if isinstance(endmembers, xr.DataArray):
        dim = endmembers.dims[-1]
        units = endmembers.coords[dim].attrs.get("units") if dim in endmembers.coords else None
        if not units:
            raise InputError("the EDS components: the energy axis has no units; set .energy.attrs['units'] to 'eV' "
                             "or 'keV'")
        data, axis, names = _components(endmembers, energy, "energy", "the EDS components")
        axis = axis * energy_factor_to_ev(units)
    else:
        data, axis, names = _components(endmembers, energy, "energy", "the EDS components")
    n = _n_pixels(n_pixels, data.shape[0])
    rows = []
    for name, spec, n_k in zip(names, data, n):
        spec = np.maximum(spec, 0.0)
        # the fewer of the pixels it stands for and the counts its own scatter is worth
        scale = min(n_k, noise_scale(spec))
        scale = scale if np.isfinite(scale) else 1.0  # noiseless and unbounded: take the values as counts
        counts = xr.DataArray(spec * scale, dims=("energy",),
                              coords={"energy": ("energy", axis, {"units": "eV"})})
        table, _ = identify_lines(counts, min_snr=min_snr, fwhm_mnka_ev=fwhm_mnka_ev, candidates=candidates,
                                  artefact_elements=artefact_elements, low_kev=low_kev)
        for row in table.itertuples(index=False):
            rows.append({"component": name, "element": row.element, "line": row.line, "lines": _label(row),
                         "energy_keV": row.energy_keV, "measured_keV": row.measured_keV,
                         "strength": row.counts / scale if scale > 0 else np.nan, "snr": row.snr,
                         "origin": row.origin, "blend": row.blend, "shared_with": row.shared_with,
                         "note": row.note, "n_pixels": float(n_k), "counts_scale": float(scale)})
    return pd.DataFrame(rows, columns=EDS_COLUMNS)


__all__ = ["EDS_COLUMNS", "annotate_eds", "noise_scale"]
