"""Zero-loss alignment against the per-pixel energy shifts recorded by 'eels-si-lowloss'."""

import numpy as np
import pytest
import xarray as xr

from atomine.data import spectrum_image
from atomine.errors import InputError
from atomine.simulate import make
from atomine.spectra.zero_loss import align_zero_loss, calibrate_offset, shift_spectra, zero_loss_shifts, zlp_position


@pytest.fixture(scope="module")
def sim():
    return make("eels-si-lowloss", seed=0)


@pytest.fixture(scope="module")
def aligned(sim):
    return align_zero_loss(sim.extra["EELS_LL"], sim.data)


def test_zlp_positions_match_the_simulated_shifts(sim, aligned):
    # the simulator moves each pixel's whole spectrum by energy_shift_ev, so its ZLP sits there
    truth = sim.truth.maps["energy_shift_ev"].values  # 0 -> 0.5 eV over the raster plus 0.05 eV jitter
    err = aligned.shifts.values - truth
    assert abs(err.mean()) < 0.002  # eV; measured 2e-5
    assert err.std() < 0.01  # a tenth of a 0.1 eV channel; measured 0.003
    assert aligned.offset_ev == pytest.approx(truth.mean(), abs=0.002)
    # the classic three-point parabola is several times worse (not exact for a Gaussian peak)
    parabola = zero_loss_shifts(sim.extra["EELS_LL"], method="parabola").values - truth
    assert parabola.std() > 2 * err.std()


def test_aligned_lowloss_has_every_zlp_at_zero(aligned):
    again = zero_loss_shifts(aligned.lowloss).values
    assert np.abs(again).max() < 0.02  # eV: linear interpolation moved every peak to 0
    assert aligned.lowloss.attrs["provenance"][-1]["name"] == "spectra.shift_spectra"


def test_coreloss_moves_with_the_lowloss(sim, aligned):
    """The same shifts take the drifting core loss onto the simulator's drift-free truth."""
    na = sim.truth.maps["noiseless_aligned"]
    drifting = spectrum_image(sim.truth.maps["noiseless"].values, 0.25, energy=na.energy.values)
    moved = shift_spectra(drifting, aligned.shifts)
    ref = na.sel(energy=moved.energy).values
    err = np.sqrt(np.mean((moved.values - ref) ** 2))
    raw = np.sqrt(np.mean((drifting.sel(energy=moved.energy).values - ref) ** 2))
    best = np.sqrt(np.mean((shift_spectra(drifting, sim.truth.maps["energy_shift_ev"].values).values - ref) ** 2))
    assert err < 0.5 * raw  # measured 2.99 vs 7.45 counts: the drift is gone
    assert err < 1.02 * best  # as good as knowing the true shifts (what remains is interpolation smoothing)
    assert aligned.coreloss.shape[-1] == sim.data.sizes["energy"] - 2  # cropped by ceil(-min) + ceil(max) channels


def test_linear_shift_is_exact_on_a_straight_line_and_keeps_counts():
    e = np.arange(0.0, 20.0, 0.5)
    line = spectrum_image(np.broadcast_to(3.0 * e + 1.0, (2, 3, e.size)).copy(), 1.0, energy=e)
    shifts = np.array([[0.1, -0.3, 0.25], [0.0, 0.74, -0.6]])
    out = shift_spectra(line, shifts)
    expected = 3.0 * (out.energy.values[None, None, :] + shifts[..., None]) + 1.0
    np.testing.assert_allclose(out.values, expected, rtol=1e-6)
    nan_kept = shift_spectra(line, shifts, crop=False)
    assert nan_kept.shape == line.shape and np.isnan(nan_kept.values[1, 1, -1])


def test_gaussian_peak_position_is_unbiased_without_noise():
    e = np.arange(-3.0, 5.0, 0.1)
    centres = np.linspace(-0.37, 0.42, 25)
    peaks = 1e4 * np.exp(-0.5 * ((e[None, :] - centres[:, None]) / 0.4) ** 2)
    np.testing.assert_allclose(zlp_position(peaks, e), centres, atol=1e-9)


def test_dask_lowloss_gives_the_same_shifts(sim, aligned):
    lazy = sim.extra["EELS_LL"].chunk({"y": 16, "x": 24})
    np.testing.assert_allclose(zero_loss_shifts(lazy).values, aligned.shifts.values, atol=1e-12)
    core = align_zero_loss(lazy, sim.data.chunk({"y": 16})).coreloss
    assert hasattr(core.data, "dask")
    np.testing.assert_allclose(core.values, aligned.coreloss.values, rtol=1e-6)


def test_calibrate_offset_relabels_only(sim):
    ll = sim.extra["EELS_LL"]
    out = calibrate_offset(ll, 0.25)
    np.testing.assert_allclose(out.energy.values, ll.energy.values - 0.25)
    assert out.data is ll.data and out.energy.attrs["units"] == "eV"


def test_bad_inputs(sim):
    ll = sim.extra["EELS_LL"]
    with pytest.raises(InputError, match="method"):
        zero_loss_shifts(ll, method="fourier")
    with pytest.raises(InputError, match="half_width"):
        zero_loss_shifts(ll, half_width=0)
    with pytest.raises(InputError, match="outside the axis"):
        zero_loss_shifts(ll, search_ev=(-10.0, 2.0))
    with pytest.raises(InputError, match="pixels"):
        shift_spectra(ll, np.zeros((3, 3)))
    with pytest.raises(InputError, match="NaN"):
        shift_spectra(ll, np.full(ll.shape[:-1], np.nan))
    with pytest.raises(InputError, match="pixels"):
        align_zero_loss(ll, sim.data.isel(y=slice(0, 10)))
    bad = ll.values[:2, :2].copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        zero_loss_shifts(xr.DataArray(bad, dims=("y", "x", "energy"), coords={"energy": ll.energy.values}))
    with pytest.raises(InputError, match="fewer than 2 channels"):
        shift_spectra(ll, np.full(ll.shape[:-1], 60.0))
