"""Polarisation (B-site displacement from the A-site cage) against the haadf-polar ground truth."""

import numpy as np
import pandas as pd
import pytest

from atomine.atoms.polarisation import polarisation, polarisation_map
from atomine.errors import InputError
from atomine.simulate import make
from atomine.simulate.stem_presets import POLAR_DISPLACEMENT_PM


@pytest.fixture(scope="module")
def polar():
    """haadf-polar: image and the truth atom table restricted to the field of view."""
    sim = make("haadf-polar", seed=0)
    t = sim.truth.tables["atoms"]
    x, y = sim.data.coords["x"].values, sim.data.coords["y"].values
    inside = (t["x"] >= x[0]) & (t["x"] <= x[-1]) & (t["y"] >= y[0]) & (t["y"] <= y[-1])
    return sim, t[inside].copy()


def _noisy(truth, seed, sigma_a_pm=(2.0, 5.0), sigma_b_pm=(3.0, 7.0)):
    """Truth positions plus Gaussian noise with per-atom sigmas, reported as x_err/y_err (what a fit gives)."""
    rng = np.random.default_rng(seed)
    t = truth.copy()
    lo_hi = np.where(t["sublattice"].to_numpy()[:, None] == 0, sigma_a_pm, sigma_b_pm) * 1e-3
    for c in ("x", "y"):
        err = rng.uniform(lo_hi[:, 0], lo_hi[:, 1])
        t[c] = t[c] + err * rng.standard_normal(len(t))
        t[c + "_err"] = err
    return t


def test_truth_positions_give_the_truth_displacement_and_signs(polar):
    _, t = polar
    t = t.assign(x_err=1e-3, y_err=1e-3)
    p = polarisation(t)
    assert p.attrs["b_site"] == 1 and p.attrs["a_site"] == 0  # Ti-O sits at the A-cell centre; O columns do not
    np.testing.assert_allclose(p.attrs["cage_offset"][0], 0.5, atol=0.05)
    truth = t.loc[p["atom"]]
    assert set(truth["site"]) == {"B"}
    ok = p["ok"].to_numpy()
    assert ok.sum() >= 0.9 * len(p)  # only the edge rows of the field lack a full cage
    np.testing.assert_allclose(p["dx_pm"][ok], truth["dx_pm"][ok], atol=1e-6)
    np.testing.assert_allclose(p["dy_pm"][ok], truth["dy_pm"][ok], atol=1e-6)
    # left domain: B up as displayed (dy = -15 pm), i.e. 90 degrees counter-clockwise from +x
    left = ok & (p["x"].to_numpy() < 5.0)
    assert POLAR_DISPLACEMENT_PM[0] == (0.0, -15.0)
    np.testing.assert_allclose(p["angle_deg"][left], 90.0, atol=1e-6)
    np.testing.assert_allclose(p["p_pm"][ok], 15.0, atol=1e-6)
    # errors of a full cage: sqrt(s_B^2 + 4 s_A^2 / 16)
    np.testing.assert_allclose(p["dx_err_pm"][ok], np.sqrt(1 + 4 / 16), rtol=1e-9)
    # edge B sites miss corners: NaN and flagged, never a silent value
    assert np.all(np.isnan(p["dx_pm"][~ok])) and np.all(p["n_cage"][~ok] < 4)


def test_noisy_positions_domain_means_and_error_calibration(polar):
    _, truth = polar
    z = {"dx": [], "dy": []}
    for seed in range(4):
        t = _noisy(truth, seed)
        p = polarisation(t)
        ok = p["ok"].to_numpy()
        true = truth.loc[p["atom"]]
        for comp in ("dx", "dy"):
            err = p[comp + "_pm"].to_numpy() - true[comp + "_pm"].to_numpy()
            z[comp].append((err / p[comp + "_err_pm"].to_numpy())[ok])
        for (dx_true, dy_true), side in zip(POLAR_DISPLACEMENT_PM, (p["x"] < 5.0, p["x"] > 5.24)):
            dom = ok & side.to_numpy()
            n = dom.sum()
            # the domain mean's 1-sigma, bounded above (each A atom enters several cages)
            sem = np.sqrt(np.mean(p["dy_err_pm"][dom] ** 2) / n) * 2
            assert abs(p["dy_pm"][dom].mean() - dy_true) < 4 * sem
            assert abs(p["dx_pm"][dom].mean() - dx_true) < 4 * sem
    for comp in ("dx", "dy"):
        ratio = np.std(np.concatenate(z[comp]))  # empirical scatter / reported 1-sigma
        assert 0.8 <= ratio <= 1.25, (comp, ratio)
        assert 0.9 <= ratio <= 1.1  # the propagation is exact for independent positions


def test_missing_corner_is_nan_and_flagged_partial_cage_uses_the_diagonal(polar):
    _, t = polar
    t = t.assign(x_err=2e-3, y_err=2e-3, fit_ok=True, cls="host")
    a = t.index[(t["sublattice"] == 0) & (t["site_i"] == 0) & (t["site_j"] == 0)][0]
    t.loc[a, "fit_ok"] = False  # a failed fit is a missing corner
    p = polarisation(t)
    around = (p["site_i"].isin([-1, 0])) & (p["site_j"].isin([-1, 0]))
    assert around.sum() == 4
    assert not p.loc[around, "ok"].any() and (p.loc[around, "n_cage"] == 3).all()
    assert p.loc[around, "dx_pm"].isna().all()
    q = polarisation(t, allow_partial_cage=True)
    assert q.loc[around, "ok"].all()
    truth = t.loc[q.loc[around, "atom"]]
    np.testing.assert_allclose(q.loc[around, "dy_pm"], truth["dy_pm"], atol=1e-6)
    np.testing.assert_allclose(q.loc[around, "dy_err_pm"], np.sqrt(4 + 2 * 4 / 4), rtol=1e-9)  # one diagonal
    # a vacancy row counts as missing too
    t2 = t.assign(fit_ok=True)
    t2.loc[a, "cls"] = "vacancy"
    assert not polarisation(t2).loc[around, "ok"].any()


def _square(n=8, a=0.4, shift_pm=(10.0, -5.0), b_index_shift=0):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    a_rows = pd.DataFrame({"x": j * a, "y": i * a, "sublattice": 0, "site_i": i, "site_j": j})
    b_rows = pd.DataFrame({"x": (j + 0.5) * a + shift_pm[0] * 1e-3, "y": (i + 0.5) * a + shift_pm[1] * 1e-3,
                           "sublattice": 1, "site_i": i + b_index_shift, "site_j": j + b_index_shift})
    return pd.concat([a_rows, b_rows], ignore_index=True).assign(x_err=1e-3, y_err=1e-3)


@pytest.mark.parametrize("b_index_shift", [0, 1, -3])
def test_sign_convention_and_any_index_origin_of_b(b_index_shift):
    t = _square(b_index_shift=b_index_shift)
    before = t.copy()
    p = polarisation(t)
    pd.testing.assert_frame_equal(t, before)  # input untouched
    ok = p["ok"].to_numpy()
    assert ok.sum() == 7 * 7
    np.testing.assert_allclose(p["dx_pm"][ok], 10.0, atol=1e-9)
    np.testing.assert_allclose(p["dy_pm"][ok], -5.0, atol=1e-9)  # B moved up as displayed
    np.testing.assert_allclose(p["angle_deg"][ok], np.degrees(np.arctan2(5.0, 10.0)), atol=1e-9)
    np.testing.assert_allclose(p["p_pm"][ok], np.hypot(10, 5), atol=1e-9)


def test_maps_on_site_grid_and_on_the_image_grid(polar):
    sim, t = polar
    p = polarisation(t.assign(x_err=1e-3, y_err=1e-3))
    ds = polarisation_map(p)
    assert ds["dy_pm"].dims == ("site_i", "site_j") and ds.coords["x"].attrs["units"] == "nm"
    row = p[p["ok"]].iloc[10]
    cell = ds.sel(site_i=row["site_i"], site_j=row["site_j"])
    assert float(cell["dy_pm"]) == pytest.approx(row["dy_pm"]) and float(cell["x"]) == pytest.approx(row["x"])
    img = polarisation_map(p, grid=sim.data)
    assert img["dy_pm"].shape == sim.data.shape and img["dy_pm"].attrs["units"] == "pm"
    inner_left = img["dy_pm"].sel(x=slice(1.0, 4.0), y=slice(1.0, 9.0))
    inner_right = img["dy_pm"].sel(x=slice(6.2, 9.2), y=slice(1.0, 9.0))
    np.testing.assert_allclose(inner_left, -15.0, atol=1e-6)
    np.testing.assert_allclose(inner_right, 15.0, atol=1e-6)
    np.testing.assert_allclose(img["angle_deg"].sel(x=slice(6.2, 9.2), y=slice(1.0, 9.0)), -90.0, atol=1e-6)
    coarse = polarisation_map(p, grid=0.25)
    assert coarse.coords["x"].attrs["units"] == "nm" and np.nanmax(np.abs(coarse["dy_pm"])) <= 15.0 + 1e-6


def test_without_errors_the_displacement_is_still_exact(polar):
    _, t = polar
    p = polarisation(t)  # truth table: no x_err / y_err columns
    ok = p["ok"].to_numpy()
    np.testing.assert_allclose(p["dy_pm"][ok], t.loc[p["atom"][ok], "dy_pm"], atol=1e-6)
    assert p["dy_err_pm"].isna().all()


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.iloc[:0], "empty"),
    (lambda t: t.drop(columns="site_i"), "site_i"),
    (lambda t: t.assign(x=np.where(np.arange(len(t)) == 3, np.nan, t["x"])), "NaN"),
    (lambda t: t.assign(x_err=0.0), "positive"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "share"),
])
def test_bad_tables_raise_input_error(mutate, message):
    with pytest.raises(InputError, match=message):
        polarisation(mutate(_square()))


def test_bad_site_choices_raise_input_error(polar):
    _, t = polar
    with pytest.raises(InputError, match="a_site"):
        polarisation(t, a_site=7)
    with pytest.raises(InputError, match="centre"):
        polarisation(t, b_site=2)  # an oxygen column at (1/2, 0) is not a B site
    with pytest.raises(InputError, match="b_site"):
        polarisation(t, b_site=0)
    with pytest.raises(InputError):
        polarisation(np.zeros((3, 3)))
