"""Fourier-log deconvolution and log-ratio t/lambda against the 'eels-si-lowloss' truth.

The simulator builds each pixel's low-loss spectrum as ``J^ = I0 R^ exp(sum_k tau_k (S_k^ - 1))``
(Gaussian zero loss R, unit-area Drude single-scattering S_k of each phase, tau_k =
a_k t / lambda_k, energy drift per pixel). So the true SSD in counts per channel is
``I0 exp(-tau) sum_k tau_k S_k``, rebuilt here from the truth tables (plasmon energy,
width, mean free path) and maps (abundances, thickness), and t/lambda is the truth map.
"""

import dask.array as dka
import numpy as np
import pytest
import scipy.ndimage as ndi

import atomine.simulate as simulate
from atomine.errors import InputError
from atomine.simulate.eels_lowloss import drude_ssd
from atomine.spectra import deconvolve as dc


@pytest.fixture(scope="module")
def sim():
    return simulate.make("eels-si-lowloss", seed=0)


@pytest.fixture(scope="module")
def ssd(sim):
    return dc.single_scattering(sim.extra["EELS_LL"])


def _true_ssd(sim, energy):
    """Truth SSD (counts per channel) on ``energy``, convolved with the zero-loss-wide Gaussian."""
    t = sim.truth
    comp = t.tables["components"]
    step = energy[1] - energy[0]
    lags = np.arange(40000) * step  # long enough that the unit-area normalisation sees the whole tail
    s = np.stack([drude_ssd(lags, p, w) for p, w in zip(comp["plasmon_ev"], comp["plasmon_width_ev"])])
    s /= s.sum(axis=1, keepdims=True)
    tau_k = t.maps["abundances"].values * t.maps["thickness_nm"].values[..., None] / comp["mean_free_path_nm"].values
    i_zlp = t.parameters["lowloss_counts"] * np.exp(-t.maps["t_over_lambda"].values)
    i0 = int(round(-energy[0] / step))  # channel of 0 eV
    lag_part = np.tensordot(tau_k, s[:, :energy.size - i0], axes=(2, 0))
    on_axis = np.concatenate([np.zeros(lag_part.shape[:2] + (i0,)), lag_part], axis=-1) * i_zlp[..., None]
    sigma = t.parameters["zlp_fwhm_ev"] / (2 * np.sqrt(2 * np.log(2))) / step
    return ndi.gaussian_filter1d(on_axis, sigma, axis=-1, mode="constant")


def test_t_over_lambda_map(sim):
    ll = sim.extra["EELS_LL"]
    truth = sim.truth.maps["t_over_lambda"].values  # 0.375 .. 0.82 over the wedge
    err = dc.t_over_lambda(ll).values - truth
    assert abs(err.mean()) < 0.015 and np.sqrt((err**2).mean()) < 0.015 and np.abs(err).max() < 0.04
    # measured: mean -0.012, rms 0.013, max 0.032
    # summing the 50 eV window only misses the plural scattering beyond it: biased low
    err_w = dc.t_over_lambda(ll, method="window").values - truth
    assert -0.12 < err_w.mean() < -0.08  # measured -0.104
    # the wedge: t/lambda grows along x as the thickness does
    assert np.corrcoef(dc.t_over_lambda(ll).values.mean(axis=0), truth.mean(axis=0))[0, 1] > 0.99


def test_zero_loss_peak_centre_and_integral(sim):
    ll = sim.extra["EELS_LL"]
    z, centre = dc.zero_loss_peak(ll.values, ll["energy"].values)
    shift = sim.truth.maps["energy_shift_ev"].values  # 0..0.5 eV drift plus 0.05 eV jitter
    assert np.abs(centre - shift).max() < 0.01  # measured rms 0.0018, max 0.0063 eV
    i_zlp = sim.truth.parameters["lowloss_counts"] * np.exp(-sim.truth.maps["t_over_lambda"].values)
    rel = z.sum(axis=-1) / i_zlp - 1
    assert np.sqrt((rel**2).mean()) < 0.01 and np.abs(rel).max() < 0.03  # measured rms 0.0036, max 0.013


def test_single_scattering_matches_truth(sim, ssd):
    energy = ssd["energy"].values
    truth = _true_ssd(sim, energy)
    band = (energy >= 1.0) & (energy <= 45.0)
    d = ssd.values[..., band] - truth[..., band]
    assert np.sqrt((d**2).mean() / (truth[..., band] ** 2).mean()) < 0.04  # measured 0.031
    # the plasmon peak of each pure layer sits at its Drude maximum (drift removed), +-0.2 eV
    ab = sim.truth.maps["abundances"]
    for name in ("SrTiO3", "LaMnO3"):
        pure = ab.sel(component=name).values > 0.99
        peak = energy[np.argmax(ssd.values[pure].mean(axis=0))]
        assert abs(peak - energy[np.argmax(truth[pure].mean(axis=0))]) <= 0.2
    # no zero loss left in the SSD: averaged over the pixels (the zero loss's shot noise
    # averages out) it follows the truth near 0 eV to a small fraction of the plasmon peak
    near0 = np.abs(energy) < 0.5
    resid = (ssd.values[..., near0] - truth[..., near0]).mean(axis=(0, 1))
    assert np.abs(resid).max() < 0.02 * truth.max(axis=-1).mean()  # measured 0.014
    assert ssd.dims == ("y", "x", "energy")
    assert ssd.attrs["provenance"][-1]["name"] == "spectra.single_scattering"


def test_zlp_reconvolution_agrees_with_gaussian(sim, ssd):
    # the simulated zero loss is a Gaussian, so reconvolving with it equals the Gaussian choice
    ll = sim.extra["EELS_LL"].isel(y=slice(0, 4))
    z = dc.single_scattering(ll, reconvolution="zlp").values
    band = (ll["energy"].values >= 1.0) & (ll["energy"].values <= 45.0)
    g = ssd.values[:4][..., band]
    # they differ by the shot noise the measured zero loss carries into the reconvolution
    assert np.sqrt(((z[..., band] - g) ** 2).mean() / (g**2).mean()) < 0.08  # measured 0.050


def test_dask_input_and_progress(sim, ssd):
    ll = sim.extra["EELS_LL"]
    lazy = ll.copy(data=dka.from_array(ll.values, chunks=(16, 24, 200)))
    out = dc.single_scattering(lazy)
    assert isinstance(out.data, dka.Array)
    np.testing.assert_allclose(out.values, ssd.values, rtol=1e-6, atol=1e-6 * float(np.abs(ssd.values).max()))
    np.testing.assert_allclose(dc.t_over_lambda(lazy).values, dc.t_over_lambda(ll).values, rtol=1e-9)
    calls = []
    dc.fourier_log(ll.values[:2], ll["energy"].values, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (96, 96)


def test_bad_input_is_refused_and_input_untouched(sim):
    ll = sim.extra["EELS_LL"]
    before = ll.values.copy()
    bad = ll.copy(deep=True)
    bad.values[1, 2, 30] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        dc.single_scattering(bad)
    with pytest.raises(InputError, match="span 0 eV"):
        dc.t_over_lambda(ll.isel(energy=slice(60, None)))
    with pytest.raises(InputError, match="evenly spaced"):
        dc.single_scattering(ll.assign_coords(energy=ll["energy"].values + 0.01 * ll["energy"].values ** 2 / 50))
    with pytest.raises(InputError, match="reconvolution"):
        dc.single_scattering(ll, reconvolution="lorentzian")
    with pytest.raises(InputError, match="fwhm_ev"):
        dc.single_scattering(ll, fwhm_ev=0.01)
    with pytest.raises(InputError, match="method"):
        dc.t_over_lambda(ll, method="guess")
    np.testing.assert_array_equal(ll.values, before)
