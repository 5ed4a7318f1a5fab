"""Fourier-ratio deconvolution of core-loss EELS against plural scattering built from the truth.

The plural-scattering core loss is made here, independently of the code under test: the
single-scattering SrTiO3 edges (Ti L2,3, O K, ... of :class:`PhaseModel`, background
excluded, resolution-broadened) on a 0.1 eV grid are convolved with each pixel's unit-area
low-loss spectrum computed by the simulator's own model out to 395 eV (zero loss plus
every order of plasmon scattering at the pixel's true t/lambda), integrated into the
1 eV core-loss channels and drawn as Poisson counts. The deconvolution only sees the
*measured* low loss of 'eels-si-lowloss' (noisy, -5..50 eV, drifting). Rows 0..20 of
that preset are pure SrTiO3 on a thickness wedge along x (t/lambda 0.375..0.75), so the
21 pixels of a column share one thickness and their mean beats the counting noise.
The expected result is the single-scattering spectrum convolved with a 1 eV FWHM
Gaussian (the zero-loss width), evaluated at the channel centres.
"""

import dask.array as dka
import numpy as np
import pytest
import scipy.signal
import scipy.special
import xarray as xr

import atomine.simulate as simulate
from atomine.errors import InputError
from atomine.simulate.eels_lowloss import lowloss_spectra
from atomine.simulate.eels_presets import ENERGY, PHASES
from atomine.simulate.eels_spectra import PhaseModel, edge_sigma_ev
from atomine.spectra.fourier_ratio import fourier_ratio, fourier_ratio_arrays

ROWS = slice(0, 21)  # pure SrTiO3 in 'eels-si-lowloss'
FINE = 0.1  # eV: the grid the physics is built on before integration into 1 eV channels
LAGS = -5.0 + np.arange(4000) * FINE  # low-loss lags of the plural-scattering kernel, -5..395 eV
E_FINE = 295.0 + np.arange(6300) * FINE  # 295..924.9 eV: below the window so its start is physical too
OFFSET = int(round(-LAGS[0] / FINE))  # index of lag 0


def _fwhm_gauss(x_ev, fwhm_ev):
    g = np.exp(-0.5 * (x_ev / (fwhm_ev / (2 * np.sqrt(2 * np.log(2))))) ** 2)
    return g / g.sum()


def _bin(fine):
    """Fine samples (on E_FINE) integrated into the 1 eV channels of ENERGY (mean over 10 samples)."""
    i0 = int(round((ENERGY[0] - 0.5 - E_FINE[0]) / FINE))
    return fine[..., i0:i0 + 10 * ENERGY.size].reshape(*fine.shape[:-1], ENERGY.size, 10).mean(-1)


def _plural(spectrum_fine, kernels):
    j = scipy.signal.fftconvolve(np.broadcast_to(spectrum_fine, (kernels.shape[0], spectrum_fine.size)), kernels,
                                 axes=1)
    # the FFT leaves round-off of either sign where there is no signal
    return np.clip(_bin(j[:, OFFSET:OFFSET + spectrum_fine.size]), 0.0, None)


@pytest.fixture(scope="module")
def data():
    sim = simulate.make("eels-si-lowloss", seed=0)
    t, ll = sim.truth, sim.extra["EELS_LL"]
    comp = t.tables["components"]
    tau = t.maps["abundances"].values[0] * t.maps["thickness_nm"].values[0][:, None] / comp["mean_free_path_nm"].values
    kernels = lowloss_spectra(LAGS, tau, comp["plasmon_ev"], comp["plasmon_width_ev"], zlp_fwhm_ev=1.0,
                              incident_counts=np.ones(tau.shape[0]))
    kernels /= kernels.sum(axis=1, keepdims=True)  # one column's unit-area low loss (48 thicknesses)
    model = PhaseModel(PHASES[0], ENERGY, edge_sigma_ev(1.0), 400.0)
    edges = model(E_FINE) - model.background(E_FINE)
    single = _bin(edges)
    truth = np.convolve(single, _fwhm_gauss(np.arange(-10.0, 11.0), 1.0), mode="same")
    plural = _plural(edges, kernels)  # (48, n_e): one spectrum per thickness
    with_bg = _plural(model(E_FINE), kernels)
    rng = np.random.default_rng(7)
    ny = ROWS.stop - ROWS.start
    noisy = rng.poisson(np.broadcast_to(plural, (ny, *plural.shape))).astype(np.float64)
    noisy_bg = rng.poisson(np.broadcast_to(with_bg, (ny, *with_bg.shape))).astype(np.float64)
    low = ll.isel(y=ROWS)
    return {"sim": sim, "low": low, "tau": tau.sum(axis=1), "truth": truth, "plural": plural, "noisy": noisy,
            "noisy_bg": noisy_bg, "out": fourier_ratio_arrays(noisy, ENERGY, low.values, low.energy.values),
            # the expected core loss (no counting noise) with the measured low loss of row 0
            "clean": fourier_ratio_arrays(plural, ENERGY, low.values[0], low.energy.values)}


def _angle(a, b):
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


WINDOW = (ENERGY >= 450) & (ENERGY <= 890)  # from the Ti L2,3 edge to 10 channels before the end


def test_recovers_single_scattering(data):
    truth = data["truth"]
    # systematic error: the expected plural-scattering core loss, deconvolved with the measured low loss
    ang_clean = _angle(data["clean"][:, WINDOW], truth[WINDOW])
    ang_plural = _angle(data["plural"][:, WINDOW], truth[WINDOW])
    assert ang_clean.max() < 1.4  # measured 0.73..1.24 deg: the double plasmon past the 50 eV low-loss window
    assert ang_plural.min() > 5.0  # measured 5.7..10.0 deg before
    # past the Ti L2,3 edge, before the O K edge: relative error
    post = (ENERGY >= 470) & (ENERGY <= 525)
    rel = np.abs(data["clean"][:, post] - truth[post]).sum(1) / truth[post].sum()
    rel_plural = np.abs(data["plural"][:, post] - truth[post]).sum(1) / truth[post].sum()
    assert rel.max() < 0.04 and rel_plural.min() > 0.05  # measured 0.022..0.032, before 0.096..0.21
    # counting noise: the mean of the 21 pixels of each thickness, and single pixels
    ang_noisy = _angle(data["out"].mean(axis=0)[:, WINDOW], truth[WINDOW])
    assert ang_noisy.max() < 2.5 and np.all(ang_noisy < 0.35 * ang_plural)  # measured 1.26..2.11 deg, ratio <= 0.24
    single_px = _angle(data["out"][:, :, WINDOW], truth[WINDOW])
    noisy_px = _angle(data["noisy"][:, :, WINDOW], truth[WINDOW])
    assert np.median(single_px) < np.median(noisy_px)  # measured 6.2 vs 8.7 deg


def test_plasmon_satellite_removed(data):
    """The Ti L2,3 white lines reappear one plasmon (28 eV) higher; the deconvolution removes that replica."""
    ep = float(data["sim"].truth.tables["components"]["plasmon_ev"][0])
    peak = (ENERGY >= 455) & (ENERGY <= 466)
    sat = np.abs(ENERGY - (460.5 + ep)) <= 4

    def ratio(s):
        return s[..., sat].mean(-1) / s[..., peak].max(-1)

    r_truth = ratio(data["truth"])
    r_plural = ratio(data["plural"])
    r_out = ratio(data["out"].mean(axis=0))
    excess_before = r_plural - r_truth
    excess_after = r_out - r_truth
    assert excess_before.min() > 0.2  # measured 0.25..0.49 (truth ratio 0.646)
    assert np.abs(excess_after).max() < 0.25 * excess_before.min()  # measured |excess| <= 0.034


def test_thicker_pixels_get_more_correction(data):
    out = data["clean"]
    correction = np.abs(data["plural"] - out)[:, WINDOW].sum(1) / out[:, WINDOW].sum(1)
    tau = data["tau"]
    assert np.corrcoef(correction, tau)[0, 1] > 0.98  # measured 0.998; correction 6.4 % .. 10.8 %
    assert correction[tau.argmax()] > 1.6 * correction[tau.argmin()]
    # the result no longer depends on the thickness: the thick end is as good as the thin end
    ang = _angle(out[:, WINDOW], data["truth"][WINDOW])
    ang_plural = _angle(data["plural"][:, WINDOW], data["truth"][WINDOW])
    assert ang_plural[-1] - ang_plural[0] > 4.0  # measured 4.3 deg
    assert abs(ang[-1] - ang[0]) < 0.15 * (ang_plural[-1] - ang_plural[0])  # measured 0.5 deg


def test_integral_conserved(data):
    """S^(0) = J^(0) I_L / L^(0) with unit-area R: intensity is moved, never made or lost."""
    low = data["low"]
    # white lines plus a continuum that dies away before the window's end (so nothing leaves it)
    sigma = edge_sigma_ev(1.0)
    step = 0.5 * (1 + scipy.special.erf((E_FINE - 456) / (np.sqrt(2) * sigma)))
    spec = 300.0 * step * np.exp(-np.maximum(E_FINE - 456, 0) / 25.0)
    for c, a in ((458.0, 800.0), (463.0, 600.0)):
        spec += a * np.exp(-0.5 * ((E_FINE - c) / sigma) ** 2)
    sim = data["sim"]
    comp = sim.truth.tables["components"]
    tau = sim.truth.maps["t_over_lambda"].values[0]
    k = lowloss_spectra(LAGS, tau[:, None], [comp["plasmon_ev"][0]], [comp["plasmon_width_ev"][0]], zlp_fwhm_ev=1.0,
                        incident_counts=np.ones(tau.size))
    plural = _plural(spec, k / k.sum(axis=1, keepdims=True))
    assert plural[:, -20:].max() < 1e-3 * plural.max()  # the spectrum is over before the window is
    out = fourier_ratio_arrays(plural, ENERGY, low.values[0], low.energy.values)
    np.testing.assert_allclose(out.sum(1), plural.sum(1), rtol=5e-5)  # measured 1e-5
    noisy = np.random.default_rng(3).poisson(plural).astype(float)
    out_n = fourier_ratio_arrays(noisy, ENERGY, low.values[0], low.energy.values)
    np.testing.assert_allclose(out_n.sum(1), noisy.sum(1), rtol=2e-3)
    # the realistic edges run on past the window: what plural scattering pushed out comes back
    truth_sum = data["truth"][WINDOW].sum()
    got = data["clean"][:, WINDOW].sum(1)
    lost = data["plural"][:, WINDOW].sum(1) / truth_sum - 1
    assert np.abs(got / truth_sum - 1).max() < 0.01 and lost.min() < -0.03  # measured +0.3..0.5 %, lost 1.9..3.9 %


def test_zlp_reconvolution_matches_gaussian(data):
    low = data["low"]
    z = fourier_ratio_arrays(data["plural"], ENERGY, low.values[0], low.energy.values, reconvolve="zlp")
    ang = _angle(z[:, WINDOW], data["truth"][WINDOW])
    assert ang.max() < 1.4  # measured 0.73..1.24 deg
    # the simulated zero loss is a 1 eV Gaussian: both reconvolutions give the same spectrum
    g = data["clean"]
    assert np.abs(z - g)[:, WINDOW].sum() / g[:, WINDOW].sum() < 0.01  # measured 0.0002


def _as_xr(counts, low):
    return xr.DataArray(counts.astype(np.float32), dims=("y", "x", "energy"),
                        coords={"y": low.coords["y"], "x": low.coords["x"],
                                "energy": ("energy", ENERGY, {"units": "eV"})}, attrs={"signal": "EELS",
                                                                                       "units": "counts"})


def test_xarray_dask_and_provenance(data):
    low = data["low"].isel(y=slice(0, 4))
    core = _as_xr(data["noisy"][:4], low)
    before = core.values.copy()
    res = fourier_ratio(core, low)
    assert res.dims == core.dims and res.dtype == np.float32
    np.testing.assert_array_equal(res.energy.values, ENERGY)
    assert res.attrs["provenance"][-1]["name"] == "spectra.fourier_ratio"
    np.testing.assert_array_equal(core.values, before)  # the input is not modified
    np.testing.assert_allclose(res.values, data["out"][:4], rtol=1e-5, atol=1e-3)
    lazy = fourier_ratio(core.chunk({"y": 2, "x": 16}), low.chunk({"y": 1, "x": 24}))
    assert isinstance(lazy.data, dka.Array)
    np.testing.assert_allclose(lazy.values, res.values, rtol=1e-6, atol=1e-3)
    calls = []
    fourier_ratio(core, low, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4 * 48, 4 * 48)


def test_background_removed_inside(data):
    """With the power-law background left in, background= fits and removes it before deconvolving."""
    low = data["low"]
    core = _as_xr(data["noisy_bg"], low)
    res = fourier_ratio(core, low, background=(410.0, 450.0))
    assert res.attrs["provenance"][-1]["parameters"]["background_window_ev"] == [410.0, 450.0]
    ang = _angle(res.values.mean(axis=0)[:, WINDOW], data["truth"][WINDOW])
    assert ang.max() < 3.0  # measured 1.6..2.6 deg (noisy 21-pixel means; 1.3..2.1 without background)


def test_bad_input(data):
    low = data["low"].isel(y=slice(0, 2))
    core = _as_xr(data["noisy"][:2], low)
    mev = low.assign_coords(energy=("energy", low.energy.values * 1000, {"units": "meV"}))
    with pytest.raises(InputError, match="meV"):
        fourier_ratio(core, mev)
    # a low loss cut above the zero loss, or one with no zero-loss peak in it
    with pytest.raises(InputError, match="zero-loss"):
        fourier_ratio(core, low.isel(energy=slice(100, None)))
    flat = low.copy(data=np.full(low.shape, 50.0, dtype=np.float32))
    with pytest.raises(InputError, match="zero-loss peak"):
        fourier_ratio(core, flat)
    bad = core.copy(data=core.values.copy())
    bad.values[0, 3, 100] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fourier_ratio(bad, low)
    bad_low = low.copy(data=low.values.copy())
    bad_low.values[1, 1, 10] = np.inf
    with pytest.raises(InputError, match="NaN"):
        fourier_ratio(core, bad_low)
    with pytest.raises(InputError, match="pixels"):
        fourier_ratio(core, low.isel(x=slice(0, 10)))
    with pytest.raises(InputError, match="reconvolve"):
        fourier_ratio(core, low, reconvolve="box")
    with pytest.raises(InputError, match="NaN"):
        fourier_ratio(bad.chunk({"y": 1}), low).compute()
