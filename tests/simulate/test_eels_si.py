"""EELS spectrum images: linear mixing truth, Poisson noise, drift, ADF, presets, bad inputs."""

import numpy as np
import pytest
import xarray as xr

from atomine.data import signal_kind
from atomine.errors import CalibrationError, InputError
from atomine.simulate import eels, fields
from atomine.simulate.eels_presets import ENERGY, PHASES
from atomine.simulate.eels_spectra import Phase, PhaseModel, edge_sigma_ev


@pytest.fixture(scope="module")
def si():
    return eels.PRESETS["eels-si"][1](0)


@pytest.fixture(scope="module")
def mixed():
    return eels.PRESETS["eels-si-mixed"][1](0)


def test_data_are_a_calibrated_float32_spectrum_image(si):
    d = si.data
    assert signal_kind(d) == "spectrum_image" and d.dtype == np.float32 and d.shape == (48, 48, 500)
    assert d.energy.attrs["units"] == "eV" and d.x.attrs["units"] == "nm"
    assert d.attrs["signal"] == "EELS" and d.attrs["units"] == "counts"
    md = d.attrs["metadata"]
    assert md["beam_energy_kv"] == 200 and md["convergence_angle_mrad"] == 25 and md["collection_angle_mrad"] == 50
    assert md["elements"] == ["La", "Mn", "O", "Sr", "Ti"] and md["extra"]["dispersion_ev"] == 1.0
    assert np.array_equal(d.values, np.round(d.values)) and d.values.min() >= 0  # counts
    adf = si.extra["ADF"]
    assert adf.dims == ("y", "x") and np.allclose(adf.x.values, d.x.values) and adf.attrs["signal"] == "ADF"


@pytest.mark.parametrize("fixture", ["si", "mixed"])
def test_noiseless_si_is_exactly_the_linear_mixture(fixture, request):
    sim = request.getfixturevalue(fixture)
    m = sim.truth.maps
    a = m.abundances.transpose("y", "x", "component").values
    rebuilt = np.einsum("yxk,ke->yxe", a, m.endmembers.values)
    np.testing.assert_allclose(m.noiseless.values, rebuilt, rtol=2e-7)
    assert not np.any(m.energy_shift_ev.values)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-12)


def test_random_field_abundances_stay_strictly_inside_the_simplex(mixed):
    from atomine.simulate.eels_presets import MIXED_FLOOR
    a = mixed.truth.maps.abundances.values
    assert a.min() >= MIXED_FLOOR - 1e-12 and a.max() < 1.0
    # every phase has nearly pure pixels (what makes the pure spectra identifiable) and real mixtures
    assert np.all(a.reshape(-1, 3).max(axis=0) > 0.99) and ((a > 0.2) & (a < 0.8)).mean() > 0.1


def test_layer_interfaces_sit_where_designed(si):
    sto = si.truth.maps.abundances.sel(component="SrTiO3").isel(x=0).values
    y = si.truth.maps.y.values
    assert np.interp(0.5, 1 - sto, y) == pytest.approx(5.0, abs=0.02)
    assert (si.truth.maps.phase.values[:, 0] == np.digitize(y, [5.0, 7.0])).mean() > 0.95


def test_poisson_noise_variance_equals_the_mean(si):
    lam = si.truth.maps.noiseless.values.astype(np.float64).ravel()
    k = si.data.values.astype(np.float64).ravel()
    z = (k - lam) / np.sqrt(lam)
    assert abs(z.mean()) < 0.005 and z.var() == pytest.approx(1.0, abs=0.01)
    bins = np.quantile(lam, np.linspace(0, 1, 6))
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (lam >= lo) & (lam < hi)
        assert np.var(k[sel] - lam[sel]) / lam[sel].mean() == pytest.approx(1.0, abs=0.03)


def test_adf_follows_mean_z_of_the_phases(si):
    adf, clean = si.extra["ADF"].values, si.truth.maps.adf_noiseless.values
    phase = si.truth.maps.phase.values
    assert clean.mean() == pytest.approx(2000.0)
    assert adf[phase == 2].mean() > adf[phase == 1].mean() > adf[phase == 0].mean()  # LaMnO3 > mix > SrTiO3
    z = si.truth.tables["components"]["adf_weight"].values
    a = si.truth.maps.abundances.values
    assert clean[a[..., 2] > 0.9999].mean() / clean[a[..., 0] > 0.9999].mean() == pytest.approx(z[2] / z[0], rel=1e-3)
    assert np.var(adf - clean) / clean.mean() == pytest.approx(1.0, abs=0.06)


def test_edges_table_is_complete(si):
    t = si.truth.tables["edges"]
    for col in ("component", "element", "edge", "onset_ev", "tabulated_onset_ev", "jump_counts",
                "white_line_area_counts_ev", "branching_ratio", "peak_ev", "crystal_field_ev"):
        assert col in t.columns
    assert set(t["component"]) == {"SrTiO3", "interface", "LaMnO3"}
    assert set(t.query("component == 'SrTiO3'")["element"]) == {"Ti", "O"}  # Sr has no edge in 400-899 eV


def test_energy_drift_shifts_each_pixel_by_the_truth_map():
    ab = fields.layered_phases((6, 5), 0.5, [1.2], 0.5, names=[p.name for p in PHASES[:2]])
    sim = eels.simulate_eels(PHASES[:2], ab, ENERGY, counts_per_channel=300.0, energy_drift_ev=1.5,
                             energy_jitter_ev=0.1, seed=2)
    m = sim.truth.maps
    shift = m.energy_shift_ev.values
    order = np.arange(30).reshape(6, 5) / 29 * 1.5
    assert np.std(shift - order) == pytest.approx(0.1, abs=0.04)
    models = [PhaseModel(p, ENERGY, edge_sigma_ev(1.0), 300.0) for p in PHASES[:2]]
    a = m.abundances.values
    for iy, ix in [(0, 0), (3, 2), (5, 4)]:
        expected = sum(a[iy, ix, k] * models[k](ENERGY - shift[iy, ix]) for k in range(2))
        np.testing.assert_allclose(m.noiseless.values[iy, ix], expected, rtol=1e-6)
    np.testing.assert_allclose(m.noiseless_aligned.values, np.einsum("yxk,ke->yxe", a, m.endmembers.values), rtol=2e-7)


def test_raw_endmember_spectra_mix_and_shift_by_whole_channels():
    e = np.arange(100.0, 140.0)
    spectra = np.stack([np.linspace(50, 10, 40), np.where(e > 120, 80.0, 20.0)])
    ab = np.stack([np.full((3, 4), 0.25), np.full((3, 4), 0.75)], -1)
    sim = eels.simulate_eels(spectra, ab, e, pixel_size_nm=0.3, energy_drift_ev=11.0, seed=0)
    m = sim.truth.maps
    shift = m.energy_shift_ev.values
    assert shift[-1, -1] == pytest.approx(11.0) and shift[0, 0] == 0
    mix = 0.25 * spectra[0] + 0.75 * spectra[1]
    np.testing.assert_allclose(m.noiseless.values[0, 0], mix, rtol=1e-6)
    np.testing.assert_allclose(m.noiseless.values[-1, -1, 11:], mix[:-11], rtol=1e-6)  # 11 eV = 11 channels
    assert list(m.component.values) == ["component 0", "component 1"]
    assert sim.truth.tables["edges"].empty


def _ll_sim(plasmon_ev, width_ev, thickness, energy, shape=(2, 3)):
    phase = Phase("slab", {"O": 1, "Ti": 1}, plasmon_ev=plasmon_ev, plasmon_width_ev=width_ev, mean_free_path_nm=100.0)
    ab = np.ones(shape + (1,))
    return eels.simulate_eels([phase], ab, ENERGY, pixel_size_nm=0.5, lowloss_energy=energy, thickness_nm=thickness,
                              lowloss_counts=1e6, energy_resolution_ev=0.5, seed=1)


def test_log_ratio_of_the_low_loss_gives_t_over_lambda():
    e = np.arange(-5.0, 400.0, 0.05)
    thickness = np.array([[20.0, 60.0, 120.0], [150.0, 40.0, 90.0]])
    sim = _ll_sim(25.0, 6.0, thickness, e)
    m = sim.truth.maps
    ll = m.lowloss_noiseless.values.astype(np.float64)
    zlp = (e > -5) & (e < 3.0)
    tau = np.log(ll.sum(-1) / ll[..., zlp].sum(-1))
    np.testing.assert_allclose(m.t_over_lambda.values, thickness / 100.0)
    np.testing.assert_allclose(tau, thickness / 100.0, rtol=0.02)
    z = ll[0, 0]
    half = z[zlp] > z[zlp].max() / 2
    assert (e[zlp][half][-1] - e[zlp][half][0] + 0.05) == pytest.approx(0.5, abs=0.06)  # ZLP FWHM = resolution


def test_plasmon_orders_carry_poisson_weights():
    """The spectrum is I0 sum_n exp(-tau) tau^n / n! (ZLP * SSD^(*n)), summed here by direct convolution."""
    from math import factorial

    from atomine.simulate.eels_lowloss import drude_ssd

    de = 0.05
    e = np.arange(-5.0, 200.0, de)
    sim = _ll_sim(20.0, 1.0, np.full((2, 3), 130.0), e)
    ll = sim.truth.maps.lowloss_noiseless.values[0, 0].astype(np.float64)
    tau, total = 1.3, 1e6
    sigma = 0.5 / 2.3548
    zlp = np.exp(-0.5 * (e / sigma) ** 2)
    zlp /= zlp.sum()
    ssd = drude_ssd(np.arange(e.size) * de, 20.0, 1.0)
    ssd /= ssd.sum()
    term, direct = zlp, np.zeros_like(e)
    for n in range(12):
        direct += np.exp(-tau) * tau**n / factorial(n) * term
        term = np.convolve(term, ssd)[:e.size]
    np.testing.assert_allclose(ll, total * direct, rtol=2e-3, atol=1e-3 * ll.max())
    for n, rel in [(0, 0.002), (1, 0.03)]:
        win = (e > n * 20.0 - 3 - 5 * n) & (e < n * 20.0 + 3 + 5 * n)
        assert ll[win].sum() / total == pytest.approx(np.exp(-tau) * tau**n / factorial(n), rel=rel)


def test_low_loss_preset_drifts_with_the_core_loss():
    sim = eels.PRESETS["eels-si-lowloss"][1](0)
    ll = sim.extra["EELS_LL"]
    assert ll.dims == ("y", "x", "energy") and ll.energy.values[0] == -5.0 and ll.attrs["signal"] == "EELS"
    m = sim.truth.maps
    clean = m.lowloss_noiseless.values.astype(np.float64)
    e = m.energy_lowloss.values
    zlp = (e > -3) & (e < 3)
    centroid = (clean[..., zlp] * e[zlp]).sum(-1) / clean[..., zlp].sum(-1)
    np.testing.assert_allclose(centroid, m.energy_shift_ev.values, atol=0.02)
    t = m.t_over_lambda.values
    assert t[:, -1].mean() > t[:, 0].mean() * 1.8  # thickness wedge 45 -> 90 nm
    assert m.thickness_nm.values[0, -1] == pytest.approx(90.0)


def test_presets_are_registered_deterministic_and_seeded():
    for name in ("eels-si", "eels-si-mixed", "eels-si-lowloss", "eels-si-structure"):
        assert name in eels.PRESETS
    make = eels.PRESETS["eels-si-mixed"][1]
    a, b, c = make(5), make(5), make(6)
    assert np.array_equal(a.data.values, b.data.values) and not np.array_equal(a.data.values, c.data.values)


def test_structure_preset_stores_the_resampled_map_its_abundances_follow():
    sim = eels.PRESETS["eels-si-structure"][1](0)
    m = sim.truth.maps
    frac = m.structural_map.values
    np.testing.assert_allclose(m.abundances.sel(component="La:SrTiO3").values, frac / 0.3, atol=1e-12)
    assert 0 < frac.min() and frac.max() < 0.3
    adf = sim.truth.maps.adf_noiseless.values
    assert np.corrcoef(adf.ravel(), frac.ravel())[0, 1] > 0.99  # La is heavier than Sr


def test_bad_inputs_are_refused_and_inputs_kept():
    ab = np.full((4, 4, 3), 1 / 3)
    keep = ab.copy()
    eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2)
    np.testing.assert_array_equal(ab, keep)
    with pytest.raises(InputError, match="sum to one"):
        eels.simulate_eels(PHASES, np.full((4, 4, 3), 0.3), ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="2 components but 3"):
        eels.simulate_eels(PHASES, np.full((4, 4, 2), 0.5), ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="NaN"):
        eels.simulate_eels(PHASES, np.where(np.eye(4)[..., None] > 0, np.nan, ab), ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="dose"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, counts_per_channel=-5)
    with pytest.raises(CalibrationError, match="monotonic"):
        eels.simulate_eels(PHASES, ab, np.r_[ENERGY[:10], ENERGY[5:20]], pixel_size_nm=0.2)
    with pytest.raises(CalibrationError, match="increase"):
        eels.simulate_eels(PHASES, ab, ENERGY[::-1], pixel_size_nm=0.2)
    with pytest.raises(CalibrationError, match="NaN"):
        eels.simulate_eels(PHASES, ab, np.r_[ENERGY[:-1], np.nan], pixel_size_nm=0.2)
    with pytest.raises(InputError, match="above 0 eV"):
        eels.simulate_eels(PHASES, ab, np.arange(-10.0, 100.0), pixel_size_nm=0.2)
    with pytest.raises(InputError, match="pixel_size_nm"):
        eels.simulate_eels(PHASES, ab, ENERGY)
    with pytest.raises(InputError, match="channels but the energy axis"):
        eels.simulate_eels(np.ones((3, 10)), ab, ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="non-negative"):
        eels.simulate_eels(-np.ones((3, 500)), ab, ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="unknown element"):
        eels.simulate_eels([Phase("x", {"Zz": 1})], ab[..., :1] * 3, ENERGY, pixel_size_nm=0.2)
    with pytest.raises(InputError, match="needs Phase components"):
        eels.simulate_eels(np.ones((3, 500)), ab, ENERGY, pixel_size_nm=0.2, lowloss_energy=np.arange(-5, 50, 0.1))
    with pytest.raises(InputError, match="uniform"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, lowloss_energy=np.r_[-5, -4, -2, 0, 1, 3, 7, 9, 20])
    with pytest.raises(InputError, match="thickness_nm"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, lowloss_energy=np.arange(-5, 50, 0.1),
                           thickness_nm=np.ones((2, 2)))
    with pytest.raises(InputError, match="do not match"):
        named = fields.abundance_array(ab, 0.2, ["a", "b", "c"])
        eels.simulate_eels(PHASES, named, ENERGY)
    with pytest.raises(CalibrationError, match="NaN"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, lowloss_energy=np.r_[np.arange(-5, 5.0), np.nan])
    with pytest.raises(InputError, match="energy_drift_ev must be finite"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, energy_drift_ev=np.inf)
    with pytest.raises(InputError, match="energy_jitter_ev"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2, energy_jitter_ev=-1)
    with pytest.raises(InputError, match="structural_map"):
        eels.simulate_eels(PHASES, ab, ENERGY, pixel_size_nm=0.2,
                           structural_map=xr.DataArray(np.ones((3, 3)), dims=("y", "x")))
