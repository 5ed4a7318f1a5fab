"""Low-loss EELS: zero-loss peak plus bulk plasmons with Poisson multiple scattering.

For a pixel whose column holds phase k over a fraction ``a_k`` of the thickness t,
inelastic events of phase k occur with mean ``tau_k = a_k t / lambda_k``; events are
independent, so the number of scatterings is Poisson in ``tau = sum_k tau_k`` and the
recorded spectrum is (Fourier transforms along energy, ``^``)

    J^ = I0 R^ exp( sum_k tau_k (S_k^ - 1) )

with R the zero-loss peak (Gaussian of the given FWHM, unit area) and S_k the unit-area
single-scattering distribution of phase k, a Drude energy-loss function
``Im(-1/eps) = E G Ep^2 / ((E^2 - Ep^2)^2 + (E G)^2)`` (plasmon energy Ep, width G).
Expanding the exponential gives the n-fold scattering terms with weights
``exp(-tau) tau^n / n!``; in particular the zero-loss intensity is ``I0 exp(-tau)``,
the relation behind the log-ratio thickness measurement. The angular (collection
aperture) factor of the single-scattering distribution is left out.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..errors import InputError

# Multiple scattering runs past the recorded window; the FFT grid is extended by this
# much (and by several plasmon orders) so the circular convolution does not wrap.
_EXTRA_EV = 300.0
_PIXEL_CHUNK = 256


def drude_ssd(energy: np.ndarray, plasmon_ev: float, width_ev: float) -> np.ndarray:
    """Drude energy-loss function at ``energy`` (eV), zero for E <= 0 (unnormalised)."""
    e = np.asarray(energy, dtype=np.float64)
    ep2 = plasmon_ev**2
    with np.errstate(invalid="ignore", divide="ignore"):
        elf = e * width_ev * ep2 / ((e**2 - ep2) ** 2 + (e * width_ev) ** 2)
    return np.where(e > 0, elf, 0.0)


def check_uniform_axis(energy: np.ndarray, what: str) -> tuple[float, float]:
    """(start, step) of a uniform, increasing axis, else InputError."""
    e = np.asarray(energy, dtype=np.float64)
    if e.size < 8:
        raise InputError(f"{what} needs at least 8 channels, got {e.size}")
    step = (e[-1] - e[0]) / (e.size - 1)
    if step <= 0 or not np.allclose(np.diff(e), step, rtol=1e-6, atol=0):
        raise InputError(f"{what} must be uniform and increasing (a linear dispersion) for the multiple-scattering "
                         "convolution")
    return float(e[0]), float(step)


def lowloss_spectra(energy: np.ndarray, tau: np.ndarray, plasmon_ev, plasmon_width_ev, *, zlp_fwhm_ev: float,
                    incident_counts: np.ndarray, shift_ev: np.ndarray | None = None) -> np.ndarray:
    """Expected low-loss counts per channel for each pixel.

    Parameters
    ----------
    energy : ndarray, shape (n_e,)
        Uniform, increasing energy-loss axis (eV), normally spanning the zero loss (e.g. -5..50).
    tau : ndarray, shape (n_pix, k)
        ``a_k t / lambda_k`` of each pixel and phase.
    plasmon_ev, plasmon_width_ev : sequence of float, length k
        Each phase's plasmon energy and Drude width (eV).
    zlp_fwhm_ev : float
        FWHM of the Gaussian zero-loss peak (eV).
    incident_counts : ndarray, shape (n_pix,)
        Total electrons per pixel I0 (all losses, including those beyond the window).
    shift_ev : ndarray, shape (n_pix,), optional
        Energy shift of each pixel's whole spectrum (drift), applied exactly as a Fourier phase.

    Returns
    -------
    ndarray, shape (n_pix, n_e)
        Expected counts per channel (float64).
    """
    e0, de = check_uniform_axis(energy, "the low-loss energy axis")
    n_e = len(energy)
    ep = np.asarray(plasmon_ev, dtype=np.float64)
    span = (n_e - 1) * de + _EXTRA_EV + 8.0 * float(ep.max()) + max(0.0, -e0)
    n_fft = scipy.fft.next_fast_len(int(np.ceil(span / de)) + 1, real=True)
    grid = e0 + np.arange(n_fft) * de
    lags = np.arange(n_fft) * de
    sigma = zlp_fwhm_ev / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    zlp = np.exp(-0.5 * (grid / sigma) ** 2)
    zlp_hat = scipy.fft.rfft(zlp / zlp.sum())
    ssd_hat = []
    for p, w in zip(ep, np.asarray(plasmon_width_ev, dtype=np.float64)):
        s = drude_ssd(lags, p, w)
        ssd_hat.append(scipy.fft.rfft(s / s.sum()))
    ssd_hat = np.stack(ssd_hat) - 1.0  # (k, n_freq)
    nu = scipy.fft.rfftfreq(n_fft, de)
    out = np.empty((tau.shape[0], n_e))
    for lo in range(0, tau.shape[0], _PIXEL_CHUNK):
        sl = slice(lo, lo + _PIXEL_CHUNK)
        spec = zlp_hat[None, :] * np.exp(tau[sl] @ ssd_hat)
        if shift_ev is not None:
            spec = spec * np.exp(-2j * np.pi * nu[None, :] * shift_ev[sl, None])
        j = scipy.fft.irfft(spec, n=n_fft, axis=1)[:, :n_e]
        out[sl] = incident_counts[sl, None] * j
    # the FFT leaves ~1e-16 ripples of either sign where there is no signal
    return np.clip(out, 0.0, None)


__all__ = ["check_uniform_axis", "drude_ssd", "lowloss_spectra"]
