"""The simulated HAADF + coarse EELS SI pair: geometry, drivers, coefficients, null, determinism, CLI."""

import os

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from atomine.correlate.transform import AffineTransform
from atomine.errors import InputError
from atomine.simulate import make, presets
from atomine.simulate.correlated_pair import COEFFICIENTS, DRIVERS, INTERCEPT, simulate_pair, simulate_pair_maps

SHIFT, ROT = (1.37, 2.41), 3.0
N, PS, PX = 64, 0.2, 0.05  # default spectral pixels per side, spectral and HAADF pixel sizes (nm)


@pytest.fixture(scope="module")
def sim():
    return simulate_pair(seed=3)


def _r(a, b):
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _footprint_mean(img, T, ny, nx, ps, px, s=16):
    """Footprint mean, independently coded: s x s sub-areas per spectral pixel, bilinear sampling of the image."""
    off = ((np.arange(s) + 0.5) / s - 0.5) * ps
    xs = (np.arange(nx) * ps)[None, :, None, None] + off[None, None, None, :]
    ys = (np.arange(ny) * ps)[:, None, None, None] + off[None, None, :, None]
    xs, ys = np.broadcast_arrays(xs, ys)
    x, y = T(xs, ys)
    v = ndimage.map_coordinates(np.asarray(img, float), [y.ravel() / px, x.ravel() / px], order=1, mode="nearest")
    return v.reshape(ny, nx, -1).mean(axis=2)


def test_shapes_units_coords_and_truth_transform(sim):
    si, adf, haadf = sim.data, sim.extra["ADF"], sim.extra["HAADF"]
    assert si.dims == ("y", "x", "energy") and si.shape[:2] == (N, N) and adf.shape == (N, N)
    for da, step in ((si, PS), (adf, PS), (haadf, PX)):
        for d in ("y", "x"):
            c = da.coords[d]
            assert c.attrs["units"] == "nm" and c.values[0] == 0.0
            np.testing.assert_allclose(np.diff(c.values), step, rtol=1e-9)
    assert si.coords["energy"].attrs["units"] == "eV"
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    assert T.allclose(AffineTransform.from_params(shift_nm=SHIFT, rotation_deg=ROT), atol=1e-12)
    # the rotated spectral field of view lies inside the image with the 1 nm margin
    lo, hi = -0.5 * PS, (N - 0.5) * PS
    cx, cy = T(np.array([lo, hi, lo, hi]), np.array([lo, lo, hi, hi]))
    fov_y, fov_x = haadf.shape[0] * PX, haadf.shape[1] * PX
    assert cx.min() >= 1.0 and cy.min() >= 1.0 and cx.max() <= fov_x - 0.95 and cy.max() <= fov_y - 0.95
    assert sim.truth.parameters["drivers"] == list(DRIVERS) and sim.truth.parameters["coefficients"] == COEFFICIENTS


def test_simultaneous_adf_is_the_haadf_averaged_over_the_transformed_footprints(sim):
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    expected = sim.truth.maps["haadf_expected"].values
    # at the simulator's 8 x 8 sub-areas the footprint means agree to rounding; at 16 x 16 within the
    # sampling error of columns ~1 HAADF px wide inside a 4 x 4 px footprint
    for s, rtol in ((8, 1e-6), (16, 0.03)):
        clean = _footprint_mean(expected, T, N, N, PS, PX, s=s)
        k = sim.truth.maps["adf_noiseless"].values.mean() / clean.mean()
        np.testing.assert_allclose(sim.truth.maps["adf_noiseless"].values, k * clean, rtol=rtol)
    # the noisy ADF matches the noisy HAADF's footprint means within Poisson noise at the true transform,
    # and clearly worse after moving it by 0.2 spectral pixels or turning it by 0.25 degree
    adf = sim.extra["ADF"].values.astype(float)
    haadf = sim.extra["HAADF"].values

    def residual_var(t, img=haadf):
        m = _footprint_mean(img, t, N, N, PS, PX, s=8)
        slope, icept = np.polyfit(m.ravel(), adf.ravel(), 1)
        return float(np.var(adf - slope * m - icept)), slope

    poisson = adf.mean()
    clean_var, slope = residual_var(T, expected)
    assert clean_var < 1.1 * poisson  # only the ADF's own Poisson noise is left
    right, _ = residual_var(T)
    # plus the HAADF's own noise averaged over each footprint (16 px of ~5000 e- at 0.05 nm/px), scaled to ADF counts
    haadf_noise = slope**2 * np.var(_footprint_mean(haadf, T, N, N, PS, PX, s=8)
                                    - _footprint_mean(expected, T, N, N, PS, PX, s=8))
    assert right == pytest.approx(poisson + haadf_noise, rel=0.1)
    for dx, dy, dr in ((0.04, 0.0, 0.0), (0.0, 0.04, 0.0), (0.0, 0.0, 0.25)):
        wrong = AffineTransform.from_params(shift_nm=(SHIFT[0] + dx, SHIFT[1] + dy), rotation_deg=ROT + dr)
        assert residual_var(wrong)[0] > 5 * right  # columns ~1 spectral px apart: the ADF resolves the lattice


def test_drivers_follow_from_the_truth_atoms_and_fields(sim):
    maps, atoms = sim.truth.maps, sim.truth.tables["atoms"]
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    # strain trace = d(ux)/dx + d(uy)/dy of the displacement field the columns were moved by
    ux, uy = maps["ux_image"].values.astype(float), maps["uy_image"].values.astype(float)
    trace = np.gradient(ux, PX, axis=1) + np.gradient(uy, PX, axis=0)
    inner = (slice(5, -5), slice(5, -5))
    err = trace[inner] - maps["strain_trace_image"].values[inner]
    assert np.sqrt(np.mean(err**2)) < 0.02 * maps["strain_trace_image"].values.std()
    np.testing.assert_allclose(_footprint_mean(maps["strain_trace_image"].values, T, N, N, PS, PX),
                               maps["strain_trace"].values, atol=2e-4)
    assert maps["strain_trace"].std() > 0.015  # RMS 0.02 at the fine scale, little lost to the footprint mean
    # the columns sit at their ideal positions plus that displacement
    np.testing.assert_allclose(atoms.x - atoms.x0, atoms.ux, atol=1e-12)
    assert np.hypot(atoms.ux, atoms.uy).max() < 0.08
    # dopant fraction: the footprint's area share in A-column Voronoi cells holding a dopant, recomputed
    # independently (nearest true A column of 16 x 16 sub-area centres; the simulator samples 8 x 8)
    a = atoms[atoms.site == "A"]
    off = ((np.arange(16) + 0.5) / 16 - 0.5) * PS
    u = (np.arange(N) * PS)[None, :, None, None] + off[None, None, None, :]
    v = (np.arange(N) * PS)[:, None, None, None] + off[None, None, :, None]
    qx, qy = T(*np.broadcast_arrays(u, v))
    _, k = cKDTree(np.c_[a.x, a.y]).query(np.c_[qx.ravel(), qy.ravel()])
    frac = (a.cls.values[k] == "dopant").reshape(N, N, -1).mean(axis=2)
    # cell edges cross ~1/3 of the 0.2-nm pixels; sampling them at 8 vs 16 points differs by <= 1/8 there
    assert np.abs(frac - maps["dopant_fraction"].values).max() <= 0.13
    assert np.abs(frac - maps["dopant_fraction"].values).mean() < 0.02
    assert _r(frac, maps["dopant_fraction"]) > 0.99
    assert set(a.cls) == {"host", "dopant", "vacancy"}
    assert 0.15 < (a.cls == "dopant").mean() < 0.35  # mean dopant probability 0.25
    assert _r(maps["dopant_fraction"], maps["dopant_density"]) > 0.4


def test_driven_abundance_has_the_set_coefficients_and_shows_in_the_spectra(sim):
    maps = sim.truth.maps
    X = np.c_[np.ones(N * N), maps["strain_trace"].values.ravel(), maps["dopant_fraction"].values.ravel()]
    coef = np.linalg.lstsq(X, maps["abundance_unclipped"].values.ravel(), rcond=None)[0]
    np.testing.assert_allclose(coef, [INTERCEPT, COEFFICIENTS["strain_trace"], COEFFICIENTS["dopant_fraction"]],
                               atol=1e-10)
    a = maps["abundance"].values
    assert np.array_equal(a, np.clip(maps["abundance_unclipped"].values, 0, 1))
    assert sim.truth.parameters["fraction_clipped"] < 0.02
    np.testing.assert_allclose(maps["abundances"].values[..., 1], a)
    # both drivers matter comparably
    r = [_r(maps[k], a) for k in DRIVERS]
    assert min(r) > 0.55 and max(r) < 0.85
    # the noisy spectra carry the abundance: least squares on the two true endmembers recovers it
    s0, s1 = maps["endmembers"].values
    d = sim.data.values.reshape(-1, s0.size) - s0
    est = (d @ (s1 - s0)) / ((s1 - s0) @ (s1 - s0))
    assert _r(est, a) > 0.95 and np.abs(est - a.ravel()).mean() < 0.05


def test_fast_maps_equal_the_full_simulation_and_everything_is_deterministic(sim):
    fast = simulate_pair_maps(3)
    for k in fast.data_vars:
        np.testing.assert_array_equal(fast[k].values, sim.truth.maps[k].values)
    again = simulate_pair(seed=3)
    np.testing.assert_array_equal(again.data.values, sim.data.values)
    np.testing.assert_array_equal(again.extra["HAADF"].values, sim.extra["HAADF"].values)
    np.testing.assert_array_equal(again.extra["ADF"].values, sim.extra["ADF"].values)
    assert not np.array_equal(simulate_pair_maps(4).abundance.values, fast.abundance.values)
    # switching the driving off keeps the structure of the seed: same drivers, other response
    null = simulate_pair_maps(3, driven=False)
    np.testing.assert_array_equal(null.dopant_fraction.values, fast.dopant_fraction.values)
    assert null.attrs["drivers"] == [] and null.attrs["coefficients"] == {}


def _lag_corr(m, lag=3):
    m = np.asarray(m, float) - np.mean(m)
    return 0.5 * (_r(m[lag:], m[:-lag]) + _r(m[:, lag:], m[:, :-lag]))


@pytest.mark.slow  # 40 seeds x two specimens on a 322 x 322 px grid: ~15-20 s
def test_null_response_is_independent_of_the_drivers_but_as_autocorrelated():
    rs, lags, dmean = [], [], []
    for seed in range(40):
        m = simulate_pair_maps(seed, driven=False)
        a = m.abundance.values
        rs.append([_r(m[k], a) for k in DRIVERS])
        driven = simulate_pair_maps(seed).abundance.values
        lags.append([_lag_corr(a), _lag_corr(driven)])
        dmean.append(float(a.mean() - driven.mean()))
    rs, lags, dmean = np.array(rs), np.array(lags), np.array(dmean)
    # same law on an independent specimen: the field means differ only by sampling (12.8 nm field, 1 nm fields)
    assert np.abs(dmean).max() < 0.05 and abs(dmean.mean()) < 3 * dmean.std() / np.sqrt(40)
    # independent smooth fields: r centred on 0 with the spread of ~100-1000 effective samples
    assert np.all(np.abs(rs.mean(axis=0)) < 3 * rs.std(axis=0) / np.sqrt(40))
    assert np.abs(rs).max() < 0.35 and 0.03 < rs.std() < 0.12
    # the null maps are as autocorrelated as the driven ones (same law, independent specimen)
    assert abs(lags[:, 0].mean() - lags[:, 1].mean()) < 0.03 and lags[:, 0].mean() > 0.1


def test_preset_is_registered_and_the_cli_writes_all_three_signals(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from atomine.cli.main import app
    from atomine.io import load_all, load_truth

    assert "pair-haadf-eels" in presets()
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "pair.zarr"
    r = CliRunner().invoke(app, ["simulate", "pair-haadf-eels", "--out", os.fspath(out), "--seed", "2"])
    assert r.exit_code == 0, r.stderr
    got = {str(s.name): s for s in load_all(out)}
    want = make("pair-haadf-eels", 2)
    assert set(got) == {"EELS", "ADF", "HAADF"}
    for w in want.signals():
        g = got[str(w.name)]
        assert g.dims == w.dims and g.shape == w.shape
        np.testing.assert_array_equal(np.asarray(g.values), w.values)
        np.testing.assert_allclose(g.coords["x"].values, w.coords["x"].values)
    truth = load_truth(tmp_path / "pair.truth")
    assert truth.parameters["transform"] == want.truth.parameters["transform"]
    np.testing.assert_array_equal(truth.maps["dopant_fraction"].values, want.truth.maps["dopant_fraction"].values)


@pytest.mark.parametrize("kwargs, words", [
    ({"shift_nm": (0.2, 2.4)}, "shift_nm"),
    ({"shape_si": (4, 48)}, "shape_si"),
    ({"rotation_deg": 60}, "rotation_deg"),
    ({"coarsening": 2.5}, "coarsening"),
    ({"strain_amplitude": 0.2}, "strain_amplitude"),
    ({"seed": -1}, "seed"),
])
def test_bad_input_is_a_clear_error(kwargs, words):
    with pytest.raises(InputError, match=words):
        simulate_pair_maps(**kwargs) if "seed" not in kwargs else simulate_pair_maps(kwargs["seed"])
