"""Low-loss EELS: zero-loss peak, log-ratio t/lambda and Fourier-log deconvolution.

With independent inelastic events (Poisson statistics in t/lambda), a low-loss spectrum
is ``J^ = Z^ exp(S^ / I_z)`` in Fourier space (``^`` along energy), Z the zero-loss
peak with integral ``I_z`` and S the single-scattering distribution (SSD) in counts with
integral ``I_z t/lambda`` (R. F. Egerton, *Electron Energy-Loss Spectroscopy in the
Electron Microscope*, 3rd ed., Sec. 4.2). Hence

* t/lambda = ln(I_total / I_z) (log-ratio), and
* ``S^ = I_z ln(J^ / Z^)``, which is reconvolved with a unit-area function R (a Gaussian
  as wide as the zero-loss peak, or the zero-loss peak itself) so that noise at
  frequencies the spectrometer never passed is not amplified: ``S_R^ = R^ I_z ln(J^/Z^)``.

The measured window ends long before multiple scattering does. The spectrum is extended
by a power law ``A E^-r`` fitted to its last part and tapered smoothly to zero, so the
Fourier transform sees no step at the end and the total intensity includes the tail.
Per-pixel energy drift cancels in ``J^/Z^``, so the SSD comes out aligned at zero loss.
The principal complex logarithm is used, which is exact for t/lambda < pi.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr

from ..data import require_dims, uniform_axis
from ..data.provenance import with_step
from ..errors import InputError
from ._checks import is_dask

_DIMS = ("y", "x", "energy")
_FWHM_PER_AREA_OVER_HEIGHT = 2.0 * np.sqrt(np.log(2.0) / np.pi)  # Gaussian: FWHM = this * area / height
_PIXEL_CHUNK = 512  # pixels per FFT batch: bounds the memory of the padded transforms


# --------------------------------------------------------------------------- checks
def _energy_axis(energy) -> tuple[np.ndarray, float]:
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 16:
        raise InputError(f"the energy axis must be 1-D with at least 16 channels, got shape {e.shape}")
    axis = uniform_axis(e, rtol=1e-3)
    if axis is None or axis[1] <= 0:
        raise InputError("the energy axis must be finite, increasing and evenly spaced (a linear dispersion) for "
                         "Fourier deconvolution; rebin the spectra onto a uniform axis first")
    if not e[0] < 0 < e[-1]:
        raise InputError(f"a low-loss spectrum must include the zero-loss peak: the axis runs {e[0]:g}..{e[-1]:g} eV "
                         "and must span 0 eV")
    return e, axis[1]


def _spectra(spectra, energy: np.ndarray) -> np.ndarray:
    s = np.asarray(spectra, dtype=np.float64)
    if s.ndim < 1 or s.shape[-1] != energy.size:
        raise InputError(f"the spectra have {s.shape[-1] if s.ndim else 0} channels but the energy axis has "
                         f"{energy.size}")
    if not np.isfinite(s).all():
        raise InputError("the low-loss spectra hold NaN or inf channels; mask or interpolate them first")
    return s


# --------------------------------------------------------------------------- zero-loss peak
def _peak_centre(s: np.ndarray, energy: np.ndarray, step: float) -> np.ndarray:
    """Sub-channel centre (eV) of the zero-loss peak of each spectrum.

    A parabola is fitted by weighted least squares to the log counts of the channels above
    30 % of the maximum (a Gaussian is a parabola in log space; Poisson weights = counts).
    The mirror zero-loss integral moves by twice the peak height per eV of centre error,
    so the centre needs the precision of a fit to the whole peak top, not of three channels.
    """
    n = energy.size
    # the zero-loss peak is the maximum within the central half of the axis around 0 eV
    near = np.abs(energy) <= 0.25 * (energy[-1] - energy[0])
    imax = np.argmax(np.where(near, s, -np.inf), axis=1)
    rows = np.arange(s.shape[0])
    top = s[rows, imax]
    idx = np.arange(n)[None, :]
    x = (idx - imax[:, None]).astype(np.float64)
    half_width = max(2, n // 16)
    w = np.where((s > 0.3 * top[:, None]) & (np.abs(x) <= half_width), s, 0.0)
    y = np.log(np.where(w > 0, s, 1.0))
    m = [np.sum(w * x**p, axis=1) for p in range(5)]
    a = np.stack([np.stack([m[4], m[3], m[2]], -1), np.stack([m[3], m[2], m[1]], -1),
                  np.stack([m[2], m[1], m[0]], -1)], -2)
    b = np.stack([np.sum(w * x**2 * y, 1), np.sum(w * x * y, 1), np.sum(w * y, 1)], -1)
    ok = np.abs(np.linalg.det(a)) > 0
    coef = np.linalg.solve(np.where(ok[:, None, None], a, np.eye(3)), np.where(ok[:, None], b, 0.0)[..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(ok & (coef[:, 0] < 0), -0.5 * coef[:, 1] / coef[:, 0], 0.0)
    # on a flat, noisy top the vertex may lie a few channels from the highest one, but never
    # outside the channels that were fitted
    fitted = w > 0
    off = np.clip(off, np.where(fitted, x, np.inf).min(axis=1), np.where(fitted, x, -np.inf).max(axis=1))
    return energy[0] + (imax + off) * step


def _mirror_zlp(s: np.ndarray, energy: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-loss peak by reflecting each spectrum's gain side about its centre (Egerton's reflected tail)."""
    centre = _peak_centre(s, energy, step)
    n = energy.size
    pos = (centre - energy[0]) / step  # centre in fractional channels
    idx = np.arange(n, dtype=np.float64)[None, :]
    mirror = 2.0 * pos[:, None] - idx  # channel whose intensity is reflected onto channel idx
    lo = np.floor(mirror).astype(np.int64)
    f = mirror - lo
    valid = (lo >= 0) & (lo + 1 < n)
    # cubic (Catmull-Rom) interpolation: a linear one flattens the sampled peak top and leaves
    # a zero-loss residue of ~1 % of its height in the SSD
    taps = [np.take_along_axis(s, np.clip(lo + k, 0, n - 1), 1) for k in (-1, 0, 1, 2)]
    w = (((-f + 2.0) * f - 1.0) * f / 2.0, ((3.0 * f - 5.0) * f * f + 2.0) / 2.0,
         ((-3.0 * f + 4.0) * f + 1.0) * f / 2.0, (f - 1.0) * f * f / 2.0)
    reflected = np.where(valid, sum(wk * tk for wk, tk in zip(w, taps)), 0.0)
    # below the centre the spectrum is all zero loss (no energy gain); above it the reflection.
    # No min(reflection, recorded): the minimum of two noisy counts is biased low and would
    # leave a zero-loss residue in the SSD just above 0 eV
    z = np.where(idx <= pos[:, None], s, reflected)
    return np.clip(z, 0.0, None), centre


def zero_loss_peak(spectra, energy, *, method: str = "mirror") -> tuple[np.ndarray, np.ndarray]:
    """Zero-loss peak of each low-loss spectrum and its centre.

    Parameters
    ----------
    spectra : ndarray, shape (..., n_e)
        Low-loss counts per channel.
    energy : array_like, shape (n_e,)
        Energy loss (eV), uniform, spanning 0 eV.
    method : {"mirror"}
        "mirror": the energy-gain side (below the peak centre, where no loss can occur) is
        taken as measured and reflected about the centre, found to sub-channel precision
        by a Gaussian (log-parabola) fit to the three highest channels.

    Returns
    -------
    zlp : ndarray, shape (..., n_e)
        Zero-loss counts per channel.
    centre_ev : ndarray, shape (...)
        Peak centre (eV): the energy offset (drift) of each spectrum.
    """
    if method != "mirror":
        raise InputError(f"method must be 'mirror', got {method!r}")
    energy, step = _energy_axis(energy)
    s = _spectra(spectra, energy)
    shape = s.shape[:-1]
    z, centre = _mirror_zlp(s.reshape(-1, energy.size), energy, step)
    return z.reshape(s.shape), centre.reshape(shape)


# --------------------------------------------------------------------------- tail extension
def _extend(s: np.ndarray, energy: np.ndarray, step: float, tail_fraction: float, extend_factor: float):
    """Spectra continued past the window by a fitted power law, tapered to zero (cos^2)."""
    n = energy.size
    n_fit = max(8, int(round(tail_fraction * n)))
    e_fit = energy[-n_fit:]
    if e_fit[0] <= 0:
        raise InputError("tail_fraction reaches below 0 eV; the power-law tail needs positive energies")
    # floor per spectrum, so a pixel's result never depends on which others share its block
    floor = 1e-12 * np.maximum(s.max(axis=1, keepdims=True), 1e-300)
    y = np.log(np.maximum(s[:, -n_fit:], floor))
    x = np.log(e_fit)
    xm, ym = x.mean(), y.mean(axis=1)
    slope = ((x - xm)[None, :] * (y - ym[:, None])).sum(axis=1) / ((x - xm) ** 2).sum()
    # a tail that does not fall off (noise, a cut-off plasmon) is continued as a slow E^-1 decay
    r = np.clip(-slope, 1.0, 8.0)
    log_a = ym + r * xm
    n_ext = int(np.ceil((extend_factor - 1.0) * energy[-1] / step))
    if n_ext < 1:
        return s
    e_ext = energy[-1] + step * np.arange(1, n_ext + 1)
    tail = np.exp(log_a[:, None] - r[:, None] * np.log(e_ext)[None, :])
    taper = np.cos(0.5 * np.pi * np.arange(1, n_ext + 1) / (n_ext + 1)) ** 2
    return np.concatenate([s, tail * taper[None, :]], axis=1)


def _check_extension(extrapolate: bool, tail_fraction: float, extend_factor: float) -> None:
    if not isinstance(extrapolate, (bool, np.bool_)):
        raise InputError(f"extrapolate must be True or False, got {extrapolate!r}")
    if not (np.isfinite(tail_fraction) and 0.02 <= tail_fraction <= 0.5):
        raise InputError(f"tail_fraction must be between 0.02 and 0.5 of the window, got {tail_fraction!r}")
    if not (np.isfinite(extend_factor) and 1.0 < extend_factor <= 20.0):
        raise InputError(f"extend_factor must be between 1 and 20 (times the last energy), got {extend_factor!r}")


# --------------------------------------------------------------------------- numpy cores
def _ssd_tail(ssd: np.ndarray, energy: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Integral of the SSD beyond 90 % of the window: a power law fitted over 70..90 %, integrated to infinity.

    The deconvolved SSD is least reliable in the last channels of the window (the edge of
    the tapered continuation), so the window is cut at 90 % and the single-scattering tail,
    a clean power law unlike the multiple-scattering one, carries it to infinity.
    """
    lo, hi = 0.7 * energy[-1], 0.9 * energy[-1]
    m = (energy >= lo) & (energy <= hi)
    x = np.log(energy[m])
    floor = 1e-12 * np.maximum(np.abs(ssd).max(axis=1, keepdims=True), 1e-300)  # per spectrum: block-independent
    y = np.log(np.maximum(ssd[:, m], floor))
    xm, ym = x.mean(), y.mean(axis=1)
    r = -((x - xm)[None, :] * (y - ym[:, None])).sum(axis=1) / ((x - xm) ** 2).sum()
    r = np.clip(r, 1.5, None)  # a slower fall-off than E^-1.5 is noise, not a tail with a finite area
    log_a = ym + r * xm
    e_cut = energy[m][-1] + 0.5 * step
    return np.exp(log_a) * e_cut ** (1.0 - r) / (r - 1.0) / step, float(energy[m][-1])


def log_ratio_thickness(spectra, energy, *, method: str = "ssd") -> np.ndarray:
    """t/lambda = ln(I_total / I_zlp) of each low-loss spectrum.

    Parameters
    ----------
    spectra : ndarray, shape (..., n_e)
        Low-loss counts per channel.
    energy : array_like, shape (n_e,)
        Energy loss (eV), uniform, spanning 0 eV.
    method : {"ssd", "window"}
        "window": I_total is the sum over the recorded window; biased low by the multiple
        scattering beyond it (about 0.1 at t/lambda ~ 0.6 for a 50 eV window).
        "ssd": ln(I_total / I_zlp) equals the SSD integral over I_zlp, so the SSD from
        :func:`fourier_log` is integrated over the window and continued by a power law to
        infinity; single scattering has a clean power-law tail where the recorded spectrum
        (plural scattering) does not.

    Returns
    -------
    ndarray, shape (...)
        t/lambda (dimensionless), the mean number of inelastic events.
    """
    if method not in ("ssd", "window"):
        raise InputError(f"method must be 'ssd' or 'window', got {method!r}")
    energy, step = _energy_axis(energy)
    s = _spectra(spectra, energy)
    flat = s.reshape(-1, energy.size)
    z, _ = _mirror_zlp(flat, energy, step)
    iz = z.sum(axis=1)
    if np.any(iz <= 0):
        raise InputError("a spectrum has no zero-loss intensity; low-loss spectra must include the zero-loss peak")
    if method == "window":
        return np.log(flat.sum(axis=1) / iz).reshape(s.shape[:-1])
    ssd = fourier_log(flat, energy)
    tail, e_cut = _ssd_tail(ssd, energy, step)
    inside = ssd[:, (energy > 0) & (energy <= e_cut)].sum(axis=1)
    return ((inside + tail) / iz).reshape(s.shape[:-1])


def fourier_log(spectra, energy, *, reconvolution: str = "gaussian", fwhm_ev: float | None = None,
                extrapolate: bool = True, tail_fraction: float = 0.2, extend_factor: float = 4.0,
                progress=None) -> np.ndarray:
    """Single-scattering distribution of each low-loss spectrum by Fourier-log deconvolution.

    Parameters
    ----------
    spectra : ndarray, shape (..., n_e)
        Low-loss counts per channel (zero-loss peak included).
    energy : array_like, shape (n_e,)
        Energy loss (eV), uniform, spanning 0 eV.
    reconvolution : {"gaussian", "zlp"}
        Unit-area function R the SSD is left convolved with: a Gaussian centred on 0 eV of
        FWHM ``fwhm_ev`` (default each pixel's zero-loss width, from its area/height), or the
        pixel's own zero-loss peak moved to 0 eV.
    fwhm_ev : float, optional
        FWHM (eV) of the Gaussian R; must exceed the channel width.
    extrapolate : bool
        Continue the spectrum past the window by a power law ``A E^-r`` before the
        transform (recommended: it removes the step at the window's end).
    tail_fraction : float
        Fraction of the window (its high-energy end) the power law is fitted to.
    extend_factor : float
        The continuation runs to ``extend_factor`` times the last energy, tapered to zero.
    progress : callable, optional
        Called as ``progress(done, total)`` (pixels) after each batch.

    Returns
    -------
    ndarray, shape (..., n_e)
        The SSD convolved with R, counts per channel on the input axis (zero loss at 0 eV,
        drift removed); its integral is ``I_zlp t/lambda``.
    """
    energy, step = _energy_axis(energy)
    _check_extension(extrapolate, tail_fraction, extend_factor)
    if reconvolution not in ("gaussian", "zlp"):
        raise InputError(f"reconvolution must be 'gaussian' or 'zlp', got {reconvolution!r}")
    if fwhm_ev is not None and not (np.isfinite(fwhm_ev) and fwhm_ev > step):
        raise InputError(f"fwhm_ev must be a number of eV above the channel width {step:g}, got {fwhm_ev!r}")
    s = _spectra(spectra, energy)
    flat = s.reshape(-1, energy.size)
    out = np.empty_like(flat)
    for lo in range(0, flat.shape[0], _PIXEL_CHUNK):
        sl = slice(lo, lo + _PIXEL_CHUNK)
        out[sl] = _fourier_log_block(flat[sl], energy, step, reconvolution, fwhm_ev, extrapolate, tail_fraction,
                                     extend_factor)
        if progress is not None:
            progress(min(lo + _PIXEL_CHUNK, flat.shape[0]), flat.shape[0])
    return out.reshape(s.shape)


def _fourier_log_block(s, energy, step, reconvolution, fwhm_ev, extrapolate, tail_fraction, extend_factor):
    n = energy.size
    z, centre = _mirror_zlp(s, energy, step)
    iz = z.sum(axis=1)
    if np.any(iz <= 0):
        raise InputError("a spectrum has no zero-loss intensity; low-loss spectra must include the zero-loss peak")
    j = _extend(s, energy, step, tail_fraction, extend_factor) if extrapolate else s
    # padding to twice the length keeps the multiple-scattering tail from wrapping onto low losses
    n_fft = scipy.fft.next_fast_len(2 * j.shape[1], real=True)
    nu = scipy.fft.rfftfreq(n_fft, step)  # 1/eV
    j_hat = scipy.fft.rfft(j, n=n_fft, axis=1, workers=-1)
    z_hat = scipy.fft.rfft(z, n=n_fft, axis=1, workers=-1)
    # ln(J^/Z^) as a difference of logs: the ratio itself overflows where Z^ has died away
    tiny = np.finfo(np.float64).tiny
    log_ratio = np.log(np.abs(j_hat) + tiny) - np.log(np.abs(z_hat) + tiny) + 1j * np.angle(j_hat * np.conj(z_hat))
    if reconvolution == "gaussian":
        heights = z.max(axis=1)
        fwhm = np.full(s.shape[0], float(fwhm_ev)) if fwhm_ev is not None else \
            _FWHM_PER_AREA_OVER_HEIGHT * iz * step / heights
        sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        r_hat = np.exp(-2.0 * (np.pi * sigma[:, None] * nu[None, :]) ** 2)
    else:
        # the pixel's own zero-loss peak, moved from its centre to lag 0 (the frame of ln(J/Z))
        lag0 = centre - energy[0]
        r_hat = z_hat / iz[:, None] * np.exp(2j * np.pi * nu[None, :] * lag0[:, None])
    # frequencies the reconvolution function has suppressed carry only amplified noise
    ssd_hat = np.where(np.abs(r_hat) > 1e-12, iz[:, None] * log_ratio * r_hat, 0.0)
    # ln(J/Z) is in the lag frame (index 0 = zero loss); move lag 0 to the input axis's 0 eV
    ssd_hat *= np.exp(2j * np.pi * nu * energy[0])[None, :]
    return scipy.fft.irfft(ssd_hat, n=n_fft, axis=1, workers=-1)[:, :n]


# --------------------------------------------------------------------------- xarray wrappers
def _lowloss(da) -> np.ndarray:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"the low-loss spectrum image must be an xarray.DataArray with dims {_DIMS} "
                         "(see atomine.data.spectrum_image)")
    require_dims(da, _DIMS, "the low-loss spectrum image")
    if "energy" not in da.coords or da.coords["energy"].attrs.get("units", "eV") != "eV":
        raise InputError("the low-loss spectrum image needs an energy coordinate in eV")
    energy, _ = _energy_axis(da.coords["energy"].values)
    return energy


def t_over_lambda(lowloss: xr.DataArray, *, method: str = "ssd") -> xr.DataArray:
    """t/lambda map of a low-loss spectrum image by the log-ratio method (:func:`log_ratio_thickness`).

    Parameters
    ----------
    lowloss : xarray.DataArray, dims ("y", "x", "energy")
        Low-loss counts (energy in eV, spanning 0); may be dask-backed.
    method : {"ssd", "window"}
        How the intensity beyond the window is accounted for.

    Returns
    -------
    xarray.DataArray, dims ("y", "x")
        t/lambda (dimensionless).
    """
    energy = _lowloss(lowloss)
    if method not in ("ssd", "window"):
        raise InputError(f"method must be 'ssd' or 'window', got {method!r}")
    data = lowloss.data
    if is_dask(data):
        import dask.array as dka

        data = dka.map_blocks(lambda b: log_ratio_thickness(b, energy, method=method), data.rechunk({2: -1}),
                              drop_axis=2, dtype=np.float64)
    else:
        data = log_ratio_thickness(data, energy, method=method)
    out = xr.DataArray(data, dims=("y", "x"), coords={d: lowloss.coords[d] for d in ("y", "x")},
                       name="t_over_lambda", attrs=dict(lowloss.attrs))
    out.attrs.update(signal="t/lambda", units="")
    return with_step(out, "spectra.t_over_lambda", {"method": method})


def single_scattering(lowloss: xr.DataArray, *, reconvolution: str = "gaussian", fwhm_ev: float | None = None,
                      extrapolate: bool = True, tail_fraction: float = 0.2, extend_factor: float = 4.0,
                      progress=None) -> xr.DataArray:
    """Single-scattering distribution of a low-loss spectrum image (:func:`fourier_log`).

    Parameters
    ----------
    lowloss : xarray.DataArray, dims ("y", "x", "energy")
        Low-loss counts (energy in eV, spanning 0); may be dask-backed (mapped block by
        block; ``progress`` is then not called).

    Returns
    -------
    xarray.DataArray, dims ("y", "x", "energy")
        The SSD (counts per channel) on the input axis, zero loss at 0 eV.
    """
    energy = _lowloss(lowloss)
    kw = {"reconvolution": reconvolution, "fwhm_ev": fwhm_ev, "extrapolate": extrapolate,
          "tail_fraction": tail_fraction, "extend_factor": extend_factor}
    fourier_log(np.exp(-0.5 * energy**2)[None, :] + 1e-3, energy, **kw)  # checks the parameters before any work
    data = lowloss.data
    if is_dask(data):
        import dask.array as dka

        data = dka.map_blocks(lambda b: fourier_log(b, energy, **kw), data.rechunk({2: -1}), dtype=np.float64)
    else:
        data = fourier_log(data, energy, progress=progress, **kw)
    out = xr.DataArray(data, dims=_DIMS, coords=lowloss.coords, name="SSD", attrs=dict(lowloss.attrs))
    out.attrs.update(units=lowloss.attrs.get("units", "counts"))
    return with_step(out, "spectra.single_scattering", kw)


__all__ = ["fourier_log", "log_ratio_thickness", "single_scattering", "t_over_lambda", "zero_loss_peak"]
