"""CITS grids: ohmic metal, gap edges and resonances in dI/dV, set point, linear truth, noise, bad inputs."""

import numpy as np
import pytest

from atomine.data import signal_kind
from atomine.errors import CalibrationError, InputError
from atomine.simulate import cits, fields
from atomine.simulate.cits_dos import GappedDOS, MetallicDOS, ResonanceDOS, tunnelling_currents
from atomine.simulate.cits_presets import BIAS_V, DOS


@pytest.fixture(scope="module")
def grid():
    return cits.PRESETS["cits-grid"][1](0)


def _pure(sim, name):
    return sim.truth.maps.abundances.sel(component=name).values > 0.9999


def test_data_are_a_calibrated_float32_cits_grid(grid):
    d = grid.data
    assert signal_kind(d) == "cits" and d.dtype == np.float32 and d.shape == (40, 40, 201)
    assert d.bias.attrs["units"] == "V" and d.attrs["units"] == "A" and d.x.attrs["units"] == "nm"
    assert d.attrs["metadata"]["setpoint_a"] == 1e-10 and d.attrs["metadata"]["bias_v"] == 1.0
    topo = grid.extra["topography"]
    assert topo.dims == ("y", "x") and topo.attrs["signal"] == "STM" and topo.attrs["units"] == "nm"


def test_set_point_normalisation_holds_at_every_pixel(grid):
    iv = grid.truth.maps.iv_noiseless.sel(bias=1.0, method="nearest").values
    np.testing.assert_allclose(iv, 1e-10, rtol=1e-12)
    np.testing.assert_allclose(grid.truth.maps.endmember_iv.sel(bias=1.0, method="nearest"), 1e-10, rtol=1e-12)
    ab = fields.domain_phases((4, 4), 1.0, [(0, 0), (3, 3)], 1.0, names=["metal", "semiconductor"])
    neg = cits.simulate_cits(DOS[:2], ab, BIAS_V, setpoint_a=2e-11, setpoint_v=-0.8, noise_a=0.0)
    np.testing.assert_allclose(neg.truth.maps.iv_noiseless.sel(bias=-0.8, method="nearest"), -2e-11, rtol=1e-9)
    default = cits.simulate_cits(DOS[:2], ab, BIAS_V, noise_a=0.0)  # symmetric sweep: stabilise at +1 V
    assert default.truth.parameters["setpoint_v"] == 1.0 and default.data.attrs["metadata"]["bias_v"] == 1.0


def test_noiseless_curves_are_the_current_weighted_mixture(grid):
    m = grid.truth.maps
    w = m.current_weights.values
    assert w.min() >= 0
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(m.iv_noiseless.values, np.einsum("yxk,kb->yxb", w, m.endmember_iv.values), rtol=1e-12)
    np.testing.assert_allclose(m.didv_noiseless.values, np.einsum("yxk,kb->yxb", w, m.endmember_didv.values),
                               rtol=1e-12)
    # the weights follow from the DOS abundances and each component's current at the set point
    a = m.abundances.values
    raw_sp = 1e-10 / m.setpoint_scale.values
    pure_metal = _pure(grid, "metal")
    assert np.allclose(w[pure_metal, 0], 1.0, atol=5e-4)
    ratio = w[..., 1] / w[..., 0] * a[..., 0] / a[..., 1]  # = I_semi(Vs) / I_metal(Vs), the same everywhere
    mixed = (a[..., 0] > 0.1) & (a[..., 1] > 0.1)
    assert mixed.sum() > 5 and np.ptp(ratio[mixed]) < 1e-9 * ratio[mixed].mean()
    assert raw_sp.min() > 0


def test_numerical_didv_matches_the_truth_didv(grid):
    m = grid.truth.maps
    v = m.bias.values
    numeric = np.gradient(m.endmember_iv.values, v, axis=1)
    truth = m.endmember_didv.values
    scale = np.abs(truth).max(axis=1, keepdims=True)
    assert (np.abs(numeric - truth)[:, 2:-2] / scale).max() < 0.02  # central-difference error of 0.01 V steps


def test_metal_is_ohmic_near_zero_bias(grid):
    m = grid.truth.maps
    v = m.bias.values
    near = (np.abs(v) < 0.1) & (v != 0)
    g = m.endmember_iv.sel(component="metal").values[near] / v[near]
    assert np.ptp(g) < 0.01 * g.mean()
    slope, intercept = np.polyfit(v[near], m.endmember_iv.sel(component="metal").values[near], 1)
    assert abs(intercept) < 1e-4 * slope * 0.1
    data = grid.data.values[_pure(grid, "metal")][:, near].mean(0)
    assert np.corrcoef(v[near], data)[0, 1] > 0.999


def test_gap_gives_no_current_inside_and_didv_edges_at_plus_minus_delta(grid):
    gap = DOS[1]
    v = grid.data.bias.values
    inside = np.abs(v) < gap.delta_ev - 4 * gap.broadening_ev
    curves = grid.data.values[_pure(grid, "semiconductor")].astype(np.float64)
    noise_rms = np.hypot(5e-13, 3e-13)
    assert np.abs(grid.truth.maps.endmember_iv.sel(component="semiconductor").values[inside]).max() < 1e-15
    assert np.abs(curves[:, inside].mean(0)).max() < 4 * noise_rms / np.sqrt(len(curves)) + 1e-14
    assert np.abs(curves[:, inside]).max() < 6 * noise_rms
    assert np.abs(curves[:, np.abs(v) > 0.6]).mean() > 50 * noise_rms
    didv = np.gradient(curves.mean(0), v)
    curvature = np.gradient(np.convolve(didv, np.ones(5) / 5, mode="same"), v)
    pos, neg = v > 0.1, v < -0.1
    rise = v[pos][np.argmax(curvature[pos])], v[neg][np.argmin(curvature[neg])]
    assert rise[0] == pytest.approx(gap.delta_ev, abs=gap.broadening_ev)
    assert rise[1] == pytest.approx(-gap.delta_ev, abs=gap.broadening_ev)


def test_didv_recovers_the_dos_shape_without_barrier_or_temperature():
    dos = [GappedDOS("bcs", delta_ev=0.25, broadening_ev=0.01, model="bcs"), MetallicDOS("flat", curvature_per_ev2=0.0)]
    ab = np.stack([np.ones((2, 2)), np.zeros((2, 2))], -1)
    v = np.linspace(-0.8, 0.8, 321)
    sim = cits.simulate_cits(dos, ab, v, pixel_size_nm=1.0, noise_a=0.0)
    didv = np.gradient(sim.truth.maps.iv_noiseless.values[0, 0], v)
    rho = dos[0].density(v)
    inner = slice(2, -2)
    assert np.corrcoef(didv[inner], rho[inner])[0, 1] > 0.995
    peaks = v[v > 0][np.argmax(didv[v > 0])], v[v < 0][np.argmax(didv[v < 0])]
    assert peaks[0] == pytest.approx(0.25, abs=0.01) and peaks[1] == pytest.approx(-0.25, abs=0.01)


def test_resonances_appear_as_didv_peaks_at_their_energies(grid):
    res = grid.truth.tables["resonances"]
    v = grid.data.bias.values
    curves = grid.data.values[_pure(grid, "molecular")].astype(np.float64).mean(0)
    didv = np.gradient(curves, v)
    for e0, hwhm in zip(res["energy_ev"], res["hwhm_ev"]):
        near = np.abs(v - e0) < 4 * hwhm
        assert v[near][np.argmax(didv[near])] == pytest.approx(e0, abs=0.0101)  # one bias step


def test_constant_dos_current_is_linear_at_any_temperature():
    flat = [MetallicDOS("flat", curvature_per_ev2=0.0)]
    v = np.linspace(-0.5, 0.5, 11)
    for t in (0.0, 300.0):
        i = tunnelling_currents(flat, v, temperature_k=t)[0]
        np.testing.assert_allclose(i, v, atol=1e-6)
    gap = [GappedDOS(delta_ev=0.2, broadening_ev=0.005)]
    cold, hot = (tunnelling_currents(gap, np.array([0.15]), temperature_k=t)[0, 0] for t in (0.0, 300.0))
    assert hot > 100 * cold  # thermal smearing lets current in below the gap edge


def test_noise_levels_are_as_set(grid):
    r = (grid.data.values - grid.truth.maps.iv_noiseless.values).astype(np.float64)
    assert r.std() == pytest.approx(np.hypot(5e-13, 3e-13), rel=0.03)
    ab = np.ones((20, 20, 1))
    white = cits.simulate_cits([DOS[0]], ab, BIAS_V, pixel_size_nm=0.5, noise_a=2e-12, seed=3)
    w = (white.data.values - white.truth.maps.iv_noiseless.values).astype(np.float64)
    assert w.std() == pytest.approx(2e-12, rel=0.02)
    assert abs(np.mean(w[..., 1:] * w[..., :-1])) / w.var() < 0.02  # white: uncorrelated along the sweep
    pink = cits.simulate_cits([DOS[0]], ab, BIAS_V, pixel_size_nm=0.5, noise_a=0.0, flicker_noise_a=2e-12, seed=3)
    p = (pink.data.values - pink.truth.maps.iv_noiseless.values).astype(np.float64)
    assert p.std() == pytest.approx(2e-12, rel=0.02)
    assert np.mean(p[..., 1:] * p[..., :-1]) / p.var() > 0.5  # 1/f: correlated along the sweep
    # ... but not periodic over it: the sweep's end is no closer to its start than to any far sample
    assert abs(np.mean(p[..., 0] * p[..., -1])) / p.var() < 0.2


def test_topography_follows_the_set_point_ldos(grid):
    m = grid.truth.maps
    z = m.topography_noiseless.values
    kappa = 5.1231 * np.sqrt(4.0)
    np.testing.assert_allclose(z - z.mean(), np.log(1 / m.setpoint_scale.values) / (2 * kappa)
                               - (np.log(1 / m.setpoint_scale.values) / (2 * kappa)).mean(), atol=1e-12)
    topo = grid.extra["topography"].values
    assert topo[_pure(grid, "metal")].mean() > topo[_pure(grid, "semiconductor")].mean()
    assert np.std(topo - z) == pytest.approx(0.003, rel=0.1)


def test_truth_tables_and_presets(grid):
    t = grid.truth.tables["dos"].set_index("component")
    assert t.loc["semiconductor", "delta_ev"] == 0.3 and t.loc["semiconductor", "broadening_ev"] == 0.03
    assert list(grid.truth.tables["resonances"]["energy_ev"]) == [-0.45, 0.55]
    np.testing.assert_allclose(grid.truth.maps.dos.sel(component="semiconductor"), DOS[1].density(BIAS_V))
    mixed = cits.PRESETS["cits-grid-mixed"][1](0)
    from atomine.simulate.cits_presets import MIXED_FLOOR
    a = mixed.truth.maps.abundances.values
    assert a.min() >= MIXED_FLOOR - 1e-12 and np.all(a.reshape(-1, 3).max(axis=0) > 0.99)
    again = cits.PRESETS["cits-grid"][1](0)
    assert np.array_equal(again.data.values, grid.data.values)
    assert not np.array_equal(cits.PRESETS["cits-grid"][1](1).data.values, grid.data.values)


def test_bad_inputs_are_refused_and_inputs_kept():
    ab = np.full((3, 3, 3), 1 / 3)
    keep = ab.copy()
    cits.simulate_cits(DOS, ab, BIAS_V, pixel_size_nm=0.5)
    np.testing.assert_array_equal(ab, keep)
    run = lambda **kw: cits.simulate_cits(**{"dos": DOS, "abundances": ab, "bias": BIAS_V, "pixel_size_nm": 0.5, **kw})
    with pytest.raises(CalibrationError, match="monotonic"):
        run(bias=np.r_[BIAS_V[:50], BIAS_V[40:]])
    with pytest.raises(CalibrationError, match="NaN"):
        run(bias=np.r_[BIAS_V[:-1], np.nan])
    with pytest.raises(InputError, match="sum to one"):
        run(abundances=np.full((3, 3, 3), 0.5))
    with pytest.raises(InputError, match="NaN"):
        run(abundances=np.where(np.eye(3)[..., None] > 0, np.nan, ab))
    with pytest.raises(InputError, match="2 components but 3"):
        run(abundances=np.full((3, 3, 2), 0.5))
    with pytest.raises(InputError, match="noise_a must be non-negative"):
        run(noise_a=-1e-12)
    with pytest.raises(InputError, match="setpoint_v must be non-zero"):
        run(setpoint_v=0.0)
    with pytest.raises(InputError, match="inside its gap"):
        run(setpoint_v=0.1)
    with pytest.raises(InputError, match="setpoint_a must be positive"):
        run(setpoint_a=0.0)
    with pytest.raises(InputError, match="barrier_ev"):
        run(barrier_ev=0.3)
    with pytest.raises(InputError, match="pixel_size_nm"):
        run(pixel_size_nm=None)
    with pytest.raises(InputError, match="distinct"):
        run(dos=[DOS[0], DOS[0], DOS[1]])
    with pytest.raises(InputError, match="MetallicDOS"):
        run(dos=["metal", "gap", "res"])
    with pytest.raises(InputError, match="at least 3"):
        run(bias=[0.1, 0.2])
    with pytest.raises(InputError, match="do not match"):
        run(abundances=fields.abundance_array(ab, 0.5, ["a", "b", "c"]), pixel_size_nm=None)
    with pytest.raises(InputError, match="delta_ev"):
        GappedDOS(delta_ev=-0.1)
    with pytest.raises(InputError, match="model"):
        GappedDOS(model="mott")
    with pytest.raises(InputError, match="same non-zero length"):
        ResonanceDOS(energies_ev=(0.1, 0.2), widths_ev=(0.05,), amplitudes=(1.0, 1.0))
    with pytest.raises(InputError, match="positive"):
        ResonanceDOS(energies_ev=(0.1,), widths_ev=(0.0,), amplitudes=(1.0,))
