"""Power-law background removal against the 'eels-si' truth (per-pixel exponents, edge signal)."""

import numpy as np
import pytest
import xarray as xr
from dask_watch import LargestResult

from atomine.data import spectrum_image
from atomine.errors import InputError
from atomine.simulate import make
from atomine.spectra.background import fit_power_law, pre_edge_window, remove_background


@pytest.fixture(scope="module")
def sim():
    return make("eels-si", seed=0)


@pytest.fixture(scope="module")
def removed(sim):
    return remove_background(sim.data)


def _true_background(sim):
    """Sum over phases of abundance x B_k (E / E_first)^-r_k: the simulator's background, exactly."""
    comp = sim.truth.tables["components"]
    e = sim.data.energy.values
    b = comp["background_counts_at_start"].to_numpy()[:, None] * (e[None, :] / e[0]) ** -comp[
        "background_exponent"].to_numpy()[:, None]
    return np.einsum("yxk,ke->yxe", sim.truth.maps["abundances"].values, b)


def test_window_ends_before_the_first_edge(sim, removed):
    lo, hi = removed.attrs["window_ev"]
    first = sim.truth.tables["edges"]["onset_ev"].min()  # Ti L3, 456 eV
    assert removed.attrs["first_edge"] == "Ti L3"
    assert lo == pytest.approx(400.0) and first - 8.0 < hi < first - 3.0


def test_exponent_per_pixel_matches_truth(sim, removed):
    # the truth background of a mixed pixel is a sum of power laws: its effective r is the
    # exact (noise-free) fit of that sum over the same window
    true_r = fit_power_law(_true_background(sim), sim.data.energy.values, removed.attrs["window_ev"])[..., 1]
    r, r_err = removed["r"].values, removed["r_err"].values
    diff = r - true_r
    assert abs(diff.mean()) < 0.03  # 2304 pixels with r_err ~ 0.2: the mean is known to 0.004
    z = diff / r_err
    assert 0.9 < z.std() < 1.1  # the stated standard errors are honest
    assert abs(removed["chi2_red"].mean() - 1.0) < 0.05  # Poisson counts on a true power law
    ab = sim.truth.maps["abundances"].values
    comp = sim.truth.tables["components"]
    for k in (0, 2):  # the pure layers, SrTiO3 (r 3.2) and LaMnO3 (r 2.8)
        pure = ab[..., k] > 0.99
        assert pure.sum() > 500
        assert r[pure].mean() == pytest.approx(comp["background_exponent"][k], abs=0.04)


def test_residual_background_after_the_edge(sim, removed):
    """Between Ti L2,3 and O K (470-525 eV) the subtracted counts equal the true edge signal."""
    e = sim.data.energy.values
    window = (e >= 470) & (e <= 525)
    edge_signal = sim.truth.maps["noiseless"].values - _true_background(sim)
    residual = (removed["signal"].values - edge_signal)[..., window].mean(-1)  # per pixel
    signal_level = edge_signal[..., window].mean()
    assert abs(residual.mean()) < 0.02 * signal_level  # measured 0.4 %
    # per pixel: the extrapolation error is a few % of the background it removes (~260 counts there)
    assert residual.std() < 0.06 * _true_background(sim)[..., window].mean()
    np.testing.assert_allclose(removed["signal"] + removed["background"], sim.data, rtol=1e-5, atol=1e-2)


def test_exact_power_law_is_recovered_exactly():
    e = np.linspace(300.0, 400.0, 101)
    A, r = np.array([[2.0e9], [5.0e12]]), np.array([[2.5], [4.1]])
    counts = A[..., None] * e ** -r[..., None]
    p = fit_power_law(counts, e, (300.0, 350.0))
    np.testing.assert_allclose(p[..., 0], A, rtol=1e-8)
    np.testing.assert_allclose(p[..., 1], r, rtol=1e-10)
    np.testing.assert_allclose(p[..., 4], 1.0, atol=1e-10)  # R^2


def test_poisson_reweighting_removes_the_low_count_bias():
    """At 3 counts per channel the weighted log-log fit underestimates r badly; the Poisson fit does not."""
    e = np.arange(200.0, 300.0)
    rng = np.random.default_rng(1)
    counts = rng.poisson(3.0 * (e / 200.0) ** -3.0, (2000, e.size)).astype(float)
    loglog = fit_power_law(counts, e, (200.0, 299.0), n_iter=0)[:, 1].mean()
    poisson = fit_power_law(counts, e, (200.0, 299.0))
    assert loglog < 2.5  # measured 2.27
    sem = poisson[:, 1].std() / np.sqrt(len(poisson))
    assert abs(poisson[:, 1].mean() - 3.0) < 4 * sem
    assert abs(poisson[:, 3].mean() - 1.0) < 0.03  # chi2_red


def test_explicit_window_and_single_spectrum(sim, removed):
    one = sim.data.isel(y=5, x=7)
    out = remove_background(one, window=removed.attrs["window_ev"])
    assert out["r"].ndim == 0
    assert float(out["r"]) == pytest.approx(float(removed["r"].isel(y=5, x=7)), rel=1e-9)
    assert out.signal.attrs["provenance"][-1]["name"] == "spectra.remove_background"


def test_dask_input_stays_lazy_and_matches(sim, removed):
    lazy = sim.data.chunk({"y": 16, "x": 16, "energy": 125})
    out = remove_background(lazy, window=removed.attrs["window_ev"])
    assert hasattr(out["signal"].data, "dask")
    with LargestResult() as watch:
        total = float(out["signal"].sum().compute())
    assert watch.largest < sim.data.nbytes / 4  # one block at a time, never the whole cube
    assert total == pytest.approx(float(removed["signal"].sum()), rel=1e-6)
    np.testing.assert_allclose(out["r"].values, removed["r"].values, rtol=1e-12)


def test_input_is_not_modified(sim):
    before = sim.data.values.copy()
    remove_background(sim.data, window=(400.0, 450.0))
    np.testing.assert_array_equal(sim.data.values, before)


def _cube(values, energy):
    return xr.DataArray(values, dims=("y", "x", "energy"), coords={"energy": energy})


@pytest.mark.parametrize("window, match", [((300.0, 350.0), "outside the axis"), ((450.0, 400.0), "start < end"),
                                           ((400.0, 402.0), "at least 5"), ("abc", "pair of numbers")])
def test_bad_windows(sim, window, match):
    with pytest.raises(InputError, match=match):
        remove_background(sim.data, window=window)


def test_bad_inputs():
    e = np.arange(100.0, 164.0)
    good = np.full((2, 2, e.size), 100.0)
    nan = good.copy()
    nan[0, 1, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        remove_background(_cube(nan, e), window=(100.0, 120.0))
    uneven = e.copy()
    uneven[10:] += 0.5
    with pytest.raises(InputError, match="evenly spaced"):
        remove_background(_cube(good, uneven), window=(100.0, 120.0))
    with pytest.raises(InputError, match="not increasing"):
        remove_background(_cube(good, e[::-1].copy()), window=(100.0, 120.0))
    with pytest.raises(InputError, match="above 0 eV"):
        remove_background(_cube(good, e - 110.0), window=(-5.0, 10.0))
    with pytest.raises(InputError, match="no edge"):
        remove_background(spectrum_image(np.full((2, 2, e.size), 50.0), 0.1, energy=e))
    with pytest.raises(InputError, match="last"):
        remove_background(_cube(good, e).transpose("energy", "y", "x"), window=(100.0, 120.0))
    with pytest.raises(InputError, match="channels lie before"):
        pre_edge_window(e, 103.0)
    with pytest.raises(InputError, match="n_iter"):
        fit_power_law(good, e, (100.0, 120.0), n_iter=-1)
