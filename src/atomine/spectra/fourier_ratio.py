"""Fourier-ratio deconvolution: core-loss EELS freed of plural scattering with the low loss.

A fast electron that excites a core level may also lose energy to plasmons (and other
valence excitations) on its way through the specimen. Those events are independent, so
the recorded core loss J_c is the single-scattering core loss S_c convolved with the
low-loss spectrum L of the same pixel normalised to unit area, ``J_c = S_c * L / I_L``
(R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Sec. 4.3). In Fourier space (``^`` along energy) the plural scattering is a division::

    S_R^ = R^ J_c^ I_L / L^

where the unit-area reconvolution function R (a Gaussian as wide as the zero-loss peak,
or that peak itself) keeps the noise at frequencies the spectrometer never passed from
being amplified. At zero frequency ``L^ = I_L`` and ``R^ = 1``, so the deconvolution
moves intensity but neither creates nor destroys it: the integral of the result equals
that of the core loss (over the padded axis; inside the window, intensity that plural
scattering had pushed past the window's end comes back).

How the two energy axes are brought together
--------------------------------------------
* The low loss is optionally continued past its window by a power law (plural scattering
  goes on past 50 eV; see :func:`~atomine.spectra.fourier_log`), then **rebinned onto the
  core-loss channel width** by linear interpolation of its cumulative counts (counts are
  conserved; a low-loss channel is spread evenly over its width). The bins are centred
  on each pixel's zero-loss centre, found to a fraction of a channel, so lag 0 of the
  kernel is the zero-loss position: the result stays on the core-loss axis as recorded
  (drift between pixels is the job of :func:`~atomine.spectra.align_zero_loss`).
  Rebinning integrates the low loss over a core-loss channel exactly as the detector
  integrated the core loss, so the box of one channel cancels in the ratio.
* The core loss is extended on both sides before the transform: below its first channel
  by a cos^2 ramp rising from 0 to the mean of its first channels, above its last channel
  by a power law through the mean of its last channels, tapered to 0 by cos^2. Each
  extension is as long as the kernel, and the array is padded by the kernel's length
  again, so the circular convolution of the FFT never wraps plural scattering (or the
  negative lags of the zero-loss peak) onto the spectrum. Only the recorded channels are
  returned.
* The core loss should have its background removed (``background=`` in :func:`fourier_ratio`
  does it with :func:`~atomine.spectra.remove_background`): the deconvolution at energy E
  needs the spectrum below E, and below the window only a smooth continuation is known.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr

from ..data import array_hash, with_step
from ..errors import InputError
from ._checks import finite, is_dask, spectral_data, uniform_axis
from .background import remove_background
from .deconvolve import _FWHM_PER_AREA_OVER_HEIGHT, _check_extension, _energy_axis, _extend, _mirror_zlp

RECONVOLVE = ("gaussian", "zlp")
_PIXEL_CHUNK = 256  # pixels per FFT batch: bounds the memory of the padded transforms
_MIN_KERNEL_BINS = 8  # a low loss narrower than this many core-loss channels holds no plasmon to remove


# --------------------------------------------------------------------------- low loss -> kernel
def _check_zero_loss(ll: np.ndarray, z: np.ndarray) -> None:
    """InputError unless every low-loss spectrum holds a zero-loss peak near 0 eV.

    A zero-loss peak is the narrow maximum of the spectrum with (almost) nothing on its
    energy-gain side: the first channels hold under 10 % of the peak and the peak stands
    at least 3 times above the window's mean.
    """
    iz = z.sum(axis=1)
    height = z.max(axis=1)
    gain = ll[:, :3].mean(axis=1)
    bad = (iz <= 0) | (gain >= 0.1 * height) | (height < 3.0 * ll.mean(axis=1))
    if bad.any():
        raise InputError(f"{int(bad.sum())} low-loss spectra have no zero-loss peak (a narrow maximum near 0 eV with "
                         "an empty energy-gain side); give the low-loss spectra recorded with the core loss")


def _fwhm(z: np.ndarray, step_ll: float) -> np.ndarray:
    """Zero-loss FWHM (eV) from its area over its height (exact for a Gaussian)."""
    return _FWHM_PER_AREA_OVER_HEIGHT * z.sum(axis=1) * step_ll / z.max(axis=1)


def _rebin(s: np.ndarray, e_first: float, step_ll: float, centre: np.ndarray, step: float, n_bins: int):
    """Counts of ``s`` in bins of width ``step`` whose bin ``j`` is centred at lag ``k_lo + j`` channels.

    The lag is measured from each row's zero-loss ``centre`` (eV). Returns (bins (n, n_bins),
    k_lo (n,)). The cumulative counts are interpolated linearly between the low-loss
    channel boundaries and are flat outside the window (no counts there).
    """
    n_ch = s.shape[1]
    cum = np.concatenate([np.zeros((s.shape[0], 1)), np.cumsum(s, axis=1)], axis=1)
    lo_edge = e_first - 0.5 * step_ll  # lower boundary of the first low-loss channel
    k_lo = np.floor((lo_edge - centre) / step + 0.5).astype(np.int64)  # first bin reaching into the window
    bounds = centre[:, None] + (k_lo[:, None] + np.arange(n_bins + 1)[None, :] - 0.5) * step
    pos = np.clip((bounds - lo_edge) / step_ll, 0.0, float(n_ch))
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_ch - 1)
    f = pos - i0
    c = np.take_along_axis(cum, i0, axis=1) * (1.0 - f) + np.take_along_axis(cum, i0 + 1, axis=1) * f
    return np.diff(c, axis=1), k_lo


def _circular(bins: np.ndarray, k_lo: np.ndarray, n_fft: int) -> np.ndarray:
    """Bins placed at lags k_lo.. of a length-n_fft circular axis (negative lags wrap to the end)."""
    out = np.zeros((bins.shape[0], n_fft))
    idx = (k_lo[:, None] + np.arange(bins.shape[1])[None, :]) % n_fft
    np.put_along_axis(out, idx, bins, axis=1)
    return out


def _n_bins(lowloss_energy: np.ndarray, step_ll: float, step: float, extrapolate: bool, extend_factor: float) -> int:
    """Kernel length in core-loss channels: the (extended) low-loss window plus one bin of slack."""
    n_ll = lowloss_energy.size
    if extrapolate:
        n_ll += int(np.ceil((extend_factor - 1.0) * lowloss_energy[-1] / step_ll))
    return int(np.ceil(n_ll * step_ll / step)) + 2


# --------------------------------------------------------------------------- core loss extension
def _extend_core(s: np.ndarray, energy: np.ndarray, n_pad: int, n_fit: int) -> np.ndarray:
    """Core loss with a cos^2 ramp of n_pad channels before it and a tapered power law after it.

    Means over n_fit channels, not per-channel logs: a background-subtracted spectrum is
    noisy about small values and may dip below zero.
    """
    ramp = np.sin(0.5 * np.pi * np.arange(1, n_pad + 1) / (n_pad + 1)) ** 2
    head = s[:, :n_fit].mean(axis=1)
    half = n_fit // 2
    m1, m2 = s[:, -n_fit:-half].mean(axis=1), s[:, -half:].mean(axis=1)
    e1, e2 = energy[-n_fit:-half].mean(), energy[-half:].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((m1 > 0) & (m2 > 0), np.log(m1 / m2) / np.log(e2 / e1), 0.0)
    r = np.clip(np.nan_to_num(r), 0.0, 8.0)  # a rising or noisy end continues flat, then the taper ends it
    level = s[:, -n_fit:].mean(axis=1)
    e_fit = energy[-n_fit:].mean()
    step = energy[1] - energy[0]
    e_ext = energy[-1] + step * np.arange(1, n_pad + 1)
    tail = level[:, None] * (e_ext[None, :] / e_fit) ** -r[:, None]
    return np.concatenate([head[:, None] * ramp[None, :], s, tail * ramp[::-1][None, :]], axis=1)


# --------------------------------------------------------------------------- numpy core
def _block(core, low, energy, step, e_ll, step_ll, reconvolve, fwhm_ev, extrapolate, tail_fraction, extend_factor):
    n = energy.size
    z, centre = _mirror_zlp(low, e_ll, step_ll)
    _check_zero_loss(low, z)
    ll = _extend(low, e_ll, step_ll, tail_fraction, extend_factor) if extrapolate else low
    n_bins = _n_bins(e_ll, step_ll, step, extrapolate, extend_factor)
    if n_bins - 2 < _MIN_KERNEL_BINS:
        raise InputError(f"the low-loss window spans only {n_bins - 2} core-loss channels of {step:g} eV; it must "
                         f"reach at least {_MIN_KERNEL_BINS} channels past the zero loss")
    n_pad = n_bins
    n_fft = scipy.fft.next_fast_len(n + 3 * n_pad, real=True)
    kern_bins, k_lo = _rebin(ll, e_ll[0], step_ll, centre, step, n_bins)
    kern = _circular(kern_bins / kern_bins.sum(axis=1, keepdims=True), k_lo, n_fft)  # unit area: L / I_L
    n_fit = max(8, n // 20)
    j = _extend_core(core, energy, n_pad, n_fit)
    j_hat = scipy.fft.rfft(j, n=n_fft, axis=1, workers=-1)
    k_hat = scipy.fft.rfft(kern, axis=1, workers=-1)
    nu = scipy.fft.rfftfreq(n_fft, step)  # 1/eV
    if reconvolve == "gaussian":
        fwhm = np.full(core.shape[0], float(fwhm_ev)) if fwhm_ev is not None else _fwhm(z, step_ll)
        sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        r_hat = np.exp(-2.0 * (np.pi * sigma[:, None] * nu[None, :]) ** 2)
    else:
        # the pixel's own zero-loss peak, binned on the same lags as the kernel: R^ / L^ is then
        # the plural scattering alone, free of the resolution
        z_bins, z_lo = _rebin(z, e_ll[0], step_ll, centre, step, int(np.ceil(e_ll.size * step_ll / step)) + 2)
        r_hat = scipy.fft.rfft(_circular(z_bins / z_bins.sum(axis=1, keepdims=True), z_lo, n_fft), axis=1,
                               workers=-1)
    # frequencies at which the low loss has no power carry only amplified noise
    ok = np.abs(k_hat) > 1e-10
    s_hat = np.where(ok, j_hat * r_hat / np.where(ok, k_hat, 1.0), 0.0)
    return scipy.fft.irfft(s_hat, n=n_fft, axis=1, workers=-1)[:, n_pad:n_pad + n]


def _params(reconvolve, fwhm_ev, extrapolate, tail_fraction, extend_factor) -> None:
    if reconvolve not in RECONVOLVE:
        raise InputError(f"reconvolve must be 'gaussian' or 'zlp', got {reconvolve!r}")
    _check_extension(extrapolate, tail_fraction, extend_factor)
    if fwhm_ev is not None:
        try:
            f = float(fwhm_ev)
        except (TypeError, ValueError):
            f = np.nan
        if not (np.isfinite(f) and f > 0):
            raise InputError(f"fwhm_ev must be a positive number of eV, got {fwhm_ev!r}")


def fourier_ratio_arrays(coreloss, energy, lowloss, lowloss_energy, *, reconvolve: str = "gaussian",
                         fwhm_ev: float | None = None, extrapolate_lowloss: bool = True, tail_fraction: float = 0.2,
                         extend_factor: float = 4.0, progress=None):
    """Fourier-ratio deconvolution of core-loss spectra by their low-loss spectra (arrays).

    Parameters
    ----------
    coreloss : ndarray or dask array, shape (..., n_e)
        Core-loss counts per channel, background removed.
    energy : array_like, shape (n_e,)
        Core-loss energy axis (eV), uniform and increasing.
    lowloss : ndarray or dask array, shape (..., n_ll)
        Low-loss counts of the same pixels (zero-loss peak included).
    lowloss_energy : array_like, shape (n_ll,)
        Low-loss energy axis (eV), uniform, spanning 0 eV; its channel width may differ
        from the core loss's (it is rebinned; best no wider than a core-loss channel).
    reconvolve : {"gaussian", "zlp"}
        Unit-area function R the result stays convolved with: a Gaussian of FWHM
        ``fwhm_ev`` (default each pixel's zero-loss FWHM, from its area over its height),
        or the pixel's zero-loss peak cut from its low loss (the mirrored energy-gain side,
        see :func:`~atomine.spectra.zero_loss_peak`).
    fwhm_ev : float, optional
        FWHM (eV) of the Gaussian R.
    extrapolate_lowloss : bool
        Continue the low loss past its window by a fitted power law, tapered to zero,
        so plural scattering beyond the window is removed too.
    tail_fraction, extend_factor : float
        The power law is fitted to this fraction of the low-loss window (its end) and runs
        to ``extend_factor`` times its last energy.
    progress : callable, optional
        ``progress(done, total)`` (pixels) after each batch (numpy input only).

    Returns
    -------
    ndarray or dask array, shape (..., n_e)
        Single-scattering core loss convolved with R, counts per channel on the core-loss
        axis (float64); its integral over the padded axis equals that of the input.
    """
    e, step = _core_axis(energy)
    e_ll, step_ll = _energy_axis(lowloss_energy)
    _params(reconvolve, fwhm_ev, extrapolate_lowloss, tail_fraction, extend_factor)
    shape_c, shape_l = np.shape(coreloss), np.shape(lowloss)
    if shape_c[-1] != e.size or shape_l[-1] != e_ll.size:
        raise InputError(f"the core loss has {shape_c[-1]} channels for a {e.size}-channel axis and the low loss "
                         f"{shape_l[-1]} for a {e_ll.size}-channel axis; they must match")
    if shape_c[:-1] != shape_l[:-1]:
        raise InputError(f"the core loss has pixels {shape_c[:-1]} but the low loss {shape_l[:-1]}; give the "
                         "low-loss spectra recorded with each core-loss spectrum")
    kw = dict(energy=e, step=step, e_ll=e_ll, step_ll=step_ll, reconvolve=reconvolve, fwhm_ev=fwhm_ev,
              extrapolate=bool(extrapolate_lowloss), tail_fraction=float(tail_fraction),
              extend_factor=float(extend_factor))
    if is_dask(coreloss) or is_dask(lowloss):
        import dask.array as da

        core = da.asarray(coreloss)
        core = core.rechunk({core.ndim - 1: -1})
        low = da.asarray(lowloss).rechunk((*core.chunks[:-1], -1))  # the same pixel blocks, whole spectra

        def _one(cb, lb):
            c = finite(cb, "the core-loss spectra").reshape(-1, e.size)
            lo = finite(lb, "the low-loss spectra").reshape(-1, e_ll.size)
            return _block(c, lo, **kw).reshape(cb.shape)

        return da.map_blocks(_one, core, low, chunks=core.chunks, dtype=np.float64)
    core = finite(coreloss, "the core-loss spectra").reshape(-1, e.size)
    low = finite(lowloss, "the low-loss spectra").reshape(-1, e_ll.size)
    out = np.empty_like(core)
    for lo in range(0, core.shape[0], _PIXEL_CHUNK):
        sl = slice(lo, lo + _PIXEL_CHUNK)
        out[sl] = _block(core[sl], low[sl], **kw)
        if progress is not None:
            progress(min(lo + _PIXEL_CHUNK, core.shape[0]), core.shape[0])
    return out.reshape(shape_c)


def _core_axis(energy) -> tuple[np.ndarray, float]:
    e = np.asarray(energy, dtype=np.float64)
    _, step = uniform_axis(e, "the core-loss energy axis", min_channels=16)
    return e, step


# --------------------------------------------------------------------------- xarray wrapper
def _units(da: xr.DataArray) -> str:
    return str(da.coords["energy"].attrs.get("units", "eV"))


def fourier_ratio(coreloss: xr.DataArray, lowloss: xr.DataArray, *, reconvolve: str = "gaussian",
                  fwhm_ev: float | None = None, background=None, extrapolate_lowloss: bool = True,
                  tail_fraction: float = 0.2, extend_factor: float = 4.0, progress=None) -> xr.DataArray:
    """Single-scattering core loss of a spectrum image by Fourier-ratio deconvolution with its low loss.

    Parameters
    ----------
    coreloss : xarray.DataArray, dims (..., "energy")
        Core-loss counts (e.g. ``("y", "x", "energy")``, energy in eV), numpy or dask backed
        (then processed one block of pixels at a time, lazily).
    lowloss : xarray.DataArray, dims (..., "energy")
        Low-loss counts of the same pixels, recorded with the core loss (dual EELS); its
        energy axis (eV) spans the zero-loss peak.
    reconvolve : {"gaussian", "zlp"}
        See :func:`fourier_ratio_arrays`.
    fwhm_ev : float, optional
        FWHM (eV) of the Gaussian reconvolution; default each pixel's zero-loss FWHM.
    background : None, "auto" or (float, float)
        None: the core loss has its background removed already. A window (eV) or
        "auto" (before the first edge found): a power law is fitted per pixel there and
        subtracted first (:func:`~atomine.spectra.remove_background`).
    extrapolate_lowloss, tail_fraction, extend_factor, progress
        See :func:`fourier_ratio_arrays`.

    Returns
    -------
    xarray.DataArray
        Float32 single-scattering core loss (counts per channel, convolved with the
        reconvolution function) on the core-loss coords, with a provenance step.

    Raises
    ------
    InputError
        Not DataArrays, energy axes in different units, uneven axes, a low loss without a
        zero-loss peak, different pixel grids, or NaN/inf values.
    """
    core, energy = spectral_data(coreloss, "energy", "the core-loss spectra")
    low, e_ll = spectral_data(lowloss, "energy", "the low-loss spectra")
    uc, ul = _units(coreloss), _units(lowloss)
    if uc != ul:
        raise InputError(f"the core-loss energy axis is in {uc!r} but the low-loss one in {ul!r}; convert both to eV")
    if uc != "eV":
        raise InputError(f"the energy axes are in {uc!r}; Fourier-ratio deconvolution needs them in eV")
    if coreloss.shape[:-1] != lowloss.shape[:-1]:
        raise InputError(f"the core loss has pixels {coreloss.shape[:-1]} but the low loss {lowloss.shape[:-1]}; "
                         "give the low-loss spectrum image recorded with the core loss")
    _params(reconvolve, fwhm_ev, extrapolate_lowloss, tail_fraction, extend_factor)
    kw = {"reconvolve": reconvolve, "fwhm_ev": None if fwhm_ev is None else float(fwhm_ev),
          "extrapolate_lowloss": bool(extrapolate_lowloss), "tail_fraction": float(tail_fraction),
          "extend_factor": float(extend_factor)}
    params = dict(kw)
    if background is not None:
        if isinstance(background, str) and background != "auto":
            raise InputError(f"background must be None, 'auto' or a (start, end) window in eV, got {background!r}")
        removed = remove_background(coreloss, None if isinstance(background, str) else background)
        params["background_window_ev"] = removed.attrs["window_ev"]
        core = removed["signal"].data
    out = fourier_ratio_arrays(core, energy, low, e_ll, progress=progress, **kw).astype(np.float32)
    res = xr.DataArray(out, dims=coreloss.dims, coords=coreloss.coords, name="single_scattering",
                       attrs=dict(coreloss.attrs))
    res.attrs["units"] = coreloss.attrs.get("units", "counts")
    params["method"] = "Fourier ratio: S^ = R^ J^ I_L / L^, low loss rebinned to the core-loss channel width"
    hashed = None if (is_dask(core) or is_dask(low)) else array_hash(coreloss)
    return with_step(res, "spectra.fourier_ratio", params, hashed)


__all__ = ["RECONVOLVE", "fourier_ratio", "fourier_ratio_arrays"]
