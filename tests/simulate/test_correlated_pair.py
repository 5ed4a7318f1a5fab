"""The simulated HAADF + coarse EELS SI pair: geometry, drivers, coefficients, null, determinism, CLI."""

import os

import numpy as np
import pytest
from scipy import ndimage

from atomine.correlate.transform import AffineTransform
from atomine.errors import InputError
from atomine.simulate import make, presets
from atomine.simulate.correlated_pair import COEFFICIENTS, DRIVERS, INTERCEPT, simulate_pair, simulate_pair_maps

SHIFT, ROT = (1.37, 2.41), 3.0


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
    assert si.dims == ("y", "x", "energy") and si.shape[:2] == (48, 48) and adf.shape == (48, 48)
    for da, step in ((si, 0.4), (adf, 0.4), (haadf, 0.1)):
        for d in ("y", "x"):
            c = da.coords[d]
            assert c.attrs["units"] == "nm" and c.values[0] == 0.0
            np.testing.assert_allclose(np.diff(c.values), step, rtol=1e-9)
    assert si.coords["energy"].attrs["units"] == "eV"
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    assert T.allclose(AffineTransform.from_params(shift_nm=SHIFT, rotation_deg=ROT), atol=1e-12)
    # the rotated spectral field of view lies inside the image with the 1 nm margin
    cx, cy = T(np.array([-0.2, 19.0, -0.2, 19.0]), np.array([-0.2, -0.2, 19.0, 19.0]))
    fov_y, fov_x = haadf.shape[0] * 0.1, haadf.shape[1] * 0.1
    assert cx.min() >= 1.0 and cy.min() >= 1.0 and cx.max() <= fov_x - 0.95 and cy.max() <= fov_y - 0.95
    assert sim.truth.parameters["drivers"] == list(DRIVERS) and sim.truth.parameters["coefficients"] == COEFFICIENTS


def test_simultaneous_adf_is_the_haadf_averaged_over_the_transformed_footprints(sim):
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    expected = sim.truth.maps["haadf_expected"].values
    clean = _footprint_mean(expected, T, 48, 48, 0.4, 0.1)
    k = sim.truth.maps["adf_noiseless"].values.mean() / clean.mean()
    np.testing.assert_allclose(sim.truth.maps["adf_noiseless"].values, k * clean, rtol=0.02)
    # the noisy ADF matches the noisy HAADF's footprint means within Poisson noise at the true transform,
    # and clearly worse after moving it by 0.2 spectral pixels or turning it by 0.5 degree
    adf = sim.extra["ADF"].values.astype(float)
    haadf = sim.extra["HAADF"].values

    def residual_var(t, img=haadf):
        m = _footprint_mean(img, t, 48, 48, 0.4, 0.1, s=8)
        fit = np.polyval(np.polyfit(m.ravel(), adf.ravel(), 1), m)
        return float(np.var(adf - fit))

    poisson = adf.mean()
    assert residual_var(T, expected) < 1.1 * poisson  # only the ADF's own Poisson noise is left
    right = residual_var(T)
    assert right < 1.5 * poisson  # plus the HAADF's noise averaged over 16 pixels
    for dx, dy, dr in ((0.08, 0.0, 0.0), (0.0, 0.08, 0.0), (0.0, 0.0, 0.5)):
        wrong = AffineTransform.from_params(shift_nm=(SHIFT[0] + dx, SHIFT[1] + dy), rotation_deg=ROT + dr)
        assert residual_var(wrong) > 1.6 * right


def test_drivers_follow_from_the_truth_atoms_and_fields(sim):
    maps, atoms = sim.truth.maps, sim.truth.tables["atoms"]
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    # strain trace = d(ux)/dx + d(uy)/dy of the displacement field the columns were moved by
    ux, uy = maps["ux_image"].values.astype(float), maps["uy_image"].values.astype(float)
    trace = np.gradient(ux, 0.1, axis=1) + np.gradient(uy, 0.1, axis=0)
    inner = (slice(5, -5), slice(5, -5))
    err = trace[inner] - maps["strain_trace_image"].values[inner]
    assert np.sqrt(np.mean(err**2)) < 0.02 * maps["strain_trace_image"].values.std()
    np.testing.assert_allclose(_footprint_mean(maps["strain_trace_image"].values, T, 48, 48, 0.4, 0.1),
                               maps["strain_trace"].values, atol=2e-4)
    assert maps["strain_trace"].std() > 0.015  # RMS 0.02 at the fine scale, little lost to the footprint mean
    # the columns sit at their ideal positions plus that displacement
    np.testing.assert_allclose(atoms.x - atoms.x0, atoms.ux, atol=1e-12)
    assert np.hypot(atoms.ux, atoms.uy).max() < 0.08
    # dopant fraction: the A columns binned by footprint (point membership) agree with the area definition
    a = atoms[atoms.site == "A"]
    u, v = T.inverse()(a.x.values, a.y.values)
    i, j = np.floor(v / 0.4 + 0.5).astype(int), np.floor(u / 0.4 + 0.5).astype(int)
    ok = (i >= 0) & (i < 48) & (j >= 0) & (j < 48)
    n = np.bincount(i[ok] * 48 + j[ok], minlength=48 * 48)
    d = np.bincount(i[ok] * 48 + j[ok], weights=(a.cls.values[ok] == "dopant"), minlength=48 * 48)
    has = n > 0
    assert has.mean() > 0.98
    assert _r((d[has] / n[has]), maps["dopant_fraction"].values.ravel()[has]) > 0.8
    assert set(a.cls) == {"host", "dopant", "vacancy"}
    assert 0.15 < (a.cls == "dopant").mean() < 0.35  # mean dopant probability 0.25
    assert _r(maps["dopant_fraction"], maps["dopant_density"]) > 0.4


def test_driven_abundance_has_the_set_coefficients_and_shows_in_the_spectra(sim):
    maps = sim.truth.maps
    X = np.c_[np.ones(48 * 48), maps["strain_trace"].values.ravel(), maps["dopant_fraction"].values.ravel()]
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


def test_null_response_is_independent_of_the_drivers_but_as_autocorrelated():
    rs, lags = [], []
    for seed in range(40):
        m = simulate_pair_maps(seed, driven=False)
        a = m.abundance.values
        rs.append([_r(m[k], a) for k in DRIVERS])
        lags.append([_lag_corr(a), _lag_corr(simulate_pair_maps(seed).abundance.values)])
        assert abs(a.mean() - simulate_pair_maps(seed).abundance.mean()) < 0.02
    rs, lags = np.array(rs), np.array(lags)
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
