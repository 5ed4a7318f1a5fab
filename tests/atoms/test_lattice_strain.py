"""Local lattice, rotation and strain from atom positions: applied fields recovered, errors checked by Monte Carlo."""

import numpy as np
import pandas as pd
import pytest

from atomine.atoms.lattice_strain import lattice_strain, strain_map
from atomine.errors import InputError
from atomine.simulate.stem_presets import dislocation_structure

A = 0.3905  # nm, SrTiO3


def _lattice(n=20, a=A, f=None, rotation_deg=0.0, origin=(4.0, 4.0)):
    """A sites of a square lattice (site_j along x), deformed homogeneously about ``origin``.

    ``f`` is the stretch (symmetric) and the rotation is counter-clockwise as displayed, so
    positions map as r' = R U (r - origin) + origin with R = [[c, s], [-s, c]].
    """
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    r = np.stack([j.ravel() * a, i.ravel() * a], 1) - np.asarray(origin)
    u = np.eye(2) if f is None else np.asarray(f)
    t = np.radians(rotation_deg)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    r = r @ (rot @ u).T + np.asarray(origin)
    return pd.DataFrame({"x": r[:, 0], "y": r[:, 1], "sublattice": 0, "site_i": i.ravel(), "site_j": j.ravel(),
                         "x_err": 2e-3, "y_err": 2e-3})


NOMINAL = [[A, 0.0], [0.0, A]]


def test_rigid_rotation_is_counter_clockwise_as_displayed_and_strain_free():
    t = _lattice(rotation_deg=2.0)
    # a vector along +x turns toward -y (up on screen) for a positive rotation
    first = t[(t.site_i == 0) & (t.site_j.isin([0, 1]))]
    assert np.diff(first["y"].to_numpy())[0] < 0
    s = lattice_strain(t, reference_vectors=NOMINAL)
    assert s["ok"].all()
    np.testing.assert_allclose(s["rotation"], 2.0, atol=1e-9)
    for e in ("exx", "eyy", "exy"):
        np.testing.assert_allclose(s[e], 0.0, atol=1e-12)
    # against its own median lattice the same crystal is unrotated
    np.testing.assert_allclose(lattice_strain(t)["rotation"], 0.0, atol=1e-9)


@pytest.mark.parametrize("neighbours", [8, 4])
def test_homogeneous_strain_and_rotation_recovered(neighbours):
    u = [[1.012, 0.004], [0.004, 0.985]]  # exx = +1.2 %, eyy = -1.5 %, exy = 0.4 %
    t = _lattice(f=u, rotation_deg=-3.0)
    s = lattice_strain(t, reference_vectors=[[0.0, A], [A, 0.0]], neighbours=neighbours,  # any basis order
                       min_neighbours=2)  # corners of the 4-neighbour stencil have two
    assert s["ok"].all()
    np.testing.assert_allclose(s["rotation"], -3.0, atol=1e-9)
    np.testing.assert_allclose(s["exx"], 0.012, atol=1e-12)
    np.testing.assert_allclose(s["eyy"], -0.015, atol=1e-12)
    np.testing.assert_allclose(s["exy"], 0.004, atol=1e-12)
    np.testing.assert_allclose(s.attrs["reference_a_nm"], NOMINAL, atol=1e-12)


def test_reference_box_and_mask():
    t = _lattice(n=24)
    # stretch x by 2 % right of x = 4.5 nm: the left part is the reference
    t["x"] = t["x"] + 0.02 * np.maximum(t["x"] - 4.5, 0.0)
    s = lattice_strain(t, reference=(0.0, 4.0, 0.0, 100.0))
    left, right = s["x"] < 4.0, s["x"] > 5.3
    np.testing.assert_allclose(s.loc[left, "exx"], 0.0, atol=1e-12)
    np.testing.assert_allclose(s.loc[right, "exx"], 0.02, atol=1e-12)
    np.testing.assert_allclose(s.loc[right, "eyy"], 0.0, atol=1e-12)
    mask = (t["x"] > 6.0).to_numpy()
    s2 = lattice_strain(t, reference=mask)
    np.testing.assert_allclose(s2.loc[right, "exx"], 0.0, atol=1e-12)
    np.testing.assert_allclose(s2.loc[left, "exx"], 1 / 1.02 - 1, atol=1e-12)


def test_missing_neighbours_keep_the_fit_unbiased_and_are_counted():
    t = _lattice(f=[[1.01, 0.0], [0.0, 1.0]])
    rng = np.random.default_rng(1)
    drop = rng.choice(len(t), size=len(t) // 5, replace=False)
    t = t.assign(fit_ok=True)
    t.loc[drop, "fit_ok"] = False  # failed fits are ignored, never used
    s = lattice_strain(t, reference_vectors=NOMINAL, min_neighbours=3)
    ok = s["ok"].to_numpy()
    assert ok.sum() > 0.9 * len(s) and len(s) == len(t) - len(drop)
    np.testing.assert_allclose(s.loc[ok, "exx"], 0.01, atol=1e-12)
    assert s["n_neighbours"].min() < 8
    strict = lattice_strain(t, reference_vectors=NOMINAL, min_neighbours=8)
    assert (strict["ok"] == (strict["n_neighbours"] == 8)).all()
    assert strict.loc[~strict["ok"], "exx"].isna().all()


def _exact_field(dislocations, x, y, h=1e-4):
    """Rotation (deg) and strain of F = 1 + grad u from the analytic displacement, by scipy's polar decomposition."""
    from scipy.linalg import polar

    def u(xx, yy):
        out = np.zeros((2,) + xx.shape)
        for d in dislocations:
            out += np.asarray(d.displacement(xx, yy))
        return out

    grad = np.stack([(u(x + h, y) - u(x - h, y)) / (2 * h), (u(x, y + h) - u(x, y - h)) / (2 * h)], -1)  # (2, n, 2)
    fields = {"rotation": [], "exx": [], "eyy": [], "exy": []}
    for f in np.eye(2) + np.moveaxis(grad, 0, 1):  # a loop over ~600 sites in a test is fine
        r, p = polar(f)  # F = R P, R = [[c, s], [-s, c]] for a counter-clockwise (as displayed) rotation
        fields["rotation"].append(np.degrees(np.arctan2(r[0, 1], r[0, 0])))
        fields["exx"].append(p[0, 0] - 1)
        fields["eyy"].append(p[1, 1] - 1)
        fields["exy"].append(p[0, 1])
    return {k: np.array(v) for k, v in fields.items()}


def test_dislocation_strain_field_recovered():
    structure = dislocation_structure()  # haadf-dislocation: b = a[100] and a[010] in SrTiO3
    table = structure.table()
    t = table[table["site"] == "A"].assign(sublattice=0)
    s = lattice_strain(t, reference_vectors=NOMINAL)
    x0, y0 = t.loc[s["atom"], "x0"].to_numpy(), t.loc[s["atom"], "y0"].to_numpy()
    truth = _exact_field(structure.dislocations, x0, y0)
    far = s["ok"].to_numpy().copy()
    for d in structure.dislocations:
        bx, by = np.asarray(d.burgers_nm) / np.hypot(*d.burgers_nm)
        xp, yp = (x0 - d.x_nm) * bx + (y0 - d.y_nm) * by, -(x0 - d.x_nm) * by + (y0 - d.y_nm) * bx
        # 5 cells from the core (the 3x3 stencil's error falls as (a / r)^2), and the stencil off the
        # cut, which runs from the core along -b and where neighbour indices jump by b
        far &= (np.hypot(xp, yp) > 5 * A) & ~((xp < A) & (np.abs(yp) < 1.6 * A))
    assert far.sum() > 500
    assert np.max(np.abs(truth["exx"][far])) > 0.02 and np.max(np.abs(truth["rotation"][far])) > 2.0
    for k, tol in (("rotation", 0.05), ("exx", 1.5e-3), ("eyy", 1.5e-3), ("exy", 1.5e-3)):
        diff = s[k].to_numpy()[far] - truth[k][far]
        assert np.max(np.abs(diff)) < tol, (k, np.max(np.abs(diff)))
        assert np.sqrt(np.mean(diff**2)) < 0.05 * np.sqrt(np.mean(truth[k][far] ** 2)), k


def test_propagated_errors_match_monte_carlo():
    base = _lattice(n=12, f=[[1.01, 0.002], [0.002, 0.99]], rotation_deg=1.0)
    rng = np.random.default_rng(7)
    sig = rng.uniform(1e-3, 6e-3, size=(len(base), 2))  # heterogeneous per-atom 1-sigma, nm
    # drop a few atoms so some sites have incomplete, asymmetric neighbourhoods
    base = base.drop(index=rng.choice(len(base), 6, replace=False))
    sig = sig[base.index]
    runs = []
    for _ in range(300):
        t = base.assign(x=base["x"] + sig[:, 0] * rng.standard_normal(len(base)),
                        y=base["y"] + sig[:, 1] * rng.standard_normal(len(base)), x_err=sig[:, 0], y_err=sig[:, 1])
        runs.append(lattice_strain(t, reference_vectors=NOMINAL))
    ok = runs[0]["ok"].to_numpy()
    for q in ("rotation", "exx", "eyy", "exy", "a1x", "a2y"):
        values = np.stack([r[q].to_numpy() for r in runs])[:, ok]
        reported = runs[0][q + "_err"].to_numpy()[ok]  # depends on the errors only, not on the noise
        ratio = values.std(axis=0) / reported
        assert 0.8 <= np.median(ratio) <= 1.25, (q, np.median(ratio))
        assert np.all((ratio > 0.75) & (ratio < 1.3)), (q, ratio.min(), ratio.max())  # 300 draws: +-4 % sd
        truth = {"rotation": 1.0, "exx": 0.01, "eyy": -0.01, "exy": 0.002}.get(q)
        if truth is not None:  # unbiased to first order
            assert abs(values.mean() - truth) < 4 * np.mean(reported) / np.sqrt(values.size / 9)


def test_strain_map_on_site_grid_and_nm_grid():
    s = lattice_strain(_lattice(f=[[1.01, 0.0], [0.0, 1.0]]), reference_vectors=NOMINAL)
    m = strain_map(s)
    assert m["exx"].dims == ("site_i", "site_j") and m["exx"].attrs["units"] == "1"
    np.testing.assert_allclose(m["exx"].values, 0.01, atol=1e-12)
    g = strain_map(s, grid=0.1)
    assert g["rotation"].attrs["units"] == "deg" and g.coords["x"].attrs["units"] == "nm"
    inner = g["exx"].sel(x=slice(1.0, 6.0), y=slice(1.0, 6.0)).values
    np.testing.assert_allclose(inner, 0.01, atol=1e-12)


def test_input_not_modified_and_without_errors_the_errors_are_nan():
    t = _lattice().drop(columns=["x_err", "y_err"])
    before = t.copy()
    s = lattice_strain(t)
    pd.testing.assert_frame_equal(t, before)
    assert s["exx_err"].isna().all() and np.allclose(s["exx"], 0.0, atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"neighbours": 6}, "neighbours"),
    ({"min_neighbours": 1}, "min_neighbours"),
    ({"sublattice": 3}, "sublattice"),
    ({"reference": "mean"}, "reference"),
    ({"reference": np.ones(5, dtype=bool)}, "reference"),
    ({"reference": (100.0, 200.0, 100.0, 200.0)}, "reference region"),
    ({"reference_vectors": [[A, 0], [2 * A, 0]]}, "reference_vectors"),
    ({"reference_vectors": [[2 * A, 0], [0, A]]}, "basis"),
])
def test_bad_parameters_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        lattice_strain(_lattice(n=6), **kwargs)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.iloc[:0], "empty"),
    (lambda t: t.drop(columns="site_j"), "site_j"),
    (lambda t: t.assign(y=np.where(np.arange(len(t)) == 2, np.inf, t["y"])), "NaN"),
    (lambda t: t.assign(site_i=t["site_i"] + 0.5), "integers"),
    (lambda t: t.assign(y_err=-1e-3), "positive"),
])
def test_bad_tables_raise_input_error(mutate, message):
    with pytest.raises(InputError, match=message):
        lattice_strain(mutate(_lattice(n=6)))
