"""Area (Voronoi-cell) weighting in atoms_to_grid: exact cell areas, the count limit, the field edge, rotation."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.correlate.grid import atoms_to_grid
from atomine.correlate.transform import AffineTransform
from atomine.errors import InputError


def square_lattice(n, a, offset=0.0, seed=0):
    """n x n atoms at (offset + a*j, offset + a*i) with random values in [0, 1)."""
    j, i = np.meshgrid(np.arange(n), np.arange(n))
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": offset + a * j.ravel(), "y": offset + a * i.ravel(), "i": i.ravel(), "j": j.ravel(),
                         "v": rng.random(n * n)})


def grid(n, dx, x0=0.0, y0=0.0):
    return xr.DataArray(np.zeros((n, n)), dims=("y", "x"),
                        coords={"y": y0 + dx * np.arange(n), "x": x0 + dx * np.arange(n)})


def test_footprint_straddling_four_cells_gets_the_exact_area_weights():
    t = square_lattice(12, 1.0)
    v = t["v"].to_numpy().reshape(12, 12)  # v[i, j] at (x, y) = (j, i)
    # pixel (r, c) spans x in [c - 0.25, c + 0.75], y in [r - 0.125, r + 0.875]: the cell boundaries at
    # c + 0.5 and r + 0.5 split it 3/4 : 1/4 in x and 5/8 : 3/8 in y (exact at 8 sample points per side)
    ds = atoms_to_grid(t, {"v": "v"}, grid(10, 1.0, x0=0.25, y0=0.375), weighting="area")
    r, c = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    r, c = r[1:-1, 1:-1], c[1:-1, 1:-1]
    want = (0.75 * 0.625 * v[r, c] + 0.25 * 0.625 * v[r, c + 1]
            + 0.75 * 0.375 * v[r + 1, c] + 0.25 * 0.375 * v[r + 1, c + 1])
    np.testing.assert_allclose(ds["v"].values[1:-1, 1:-1], want, atol=1e-12)
    # the count rule sees one atom (or none) per pixel: it is not the same quantity
    count = atoms_to_grid(t, {"v": "v"}, grid(10, 1.0, x0=0.25, y0=0.375))
    assert np.array_equal(count["n_atoms"].values, ds["n_atoms"].values)
    np.testing.assert_allclose(count["v"].values[1:-1, 1:-1], v[r, c], atol=1e-12)


def test_footprints_of_many_whole_cells_give_the_count_mean():
    # 0.2 nm cells, 2 nm pixels: 100 whole cells per pixel
    t = square_lattice(80, 0.2, offset=0.1, seed=1)
    g = grid(6, 2.0, x0=1.0, y0=1.0)
    count = atoms_to_grid(t, {"v": "v"}, g)
    # sample points 0.05 nm apart: exactly four per cell, so the area mean IS the count mean
    exact = atoms_to_grid(t, {"v": "v"}, g, weighting="area", supersample=40)
    np.testing.assert_allclose(exact["v"].values, count["v"].values, atol=1e-12)
    # a smooth descriptor (a strain-like field plus 1 % noise) at the default sampling and a rotated,
    # shifted frame whose footprints cut cells: within 1e-2 of the count mean
    rng = np.random.default_rng(2)
    t["s"] = np.sin(t.x / 2.0) * np.cos(t.y / 3.0) + 0.01 * rng.standard_normal(len(t))
    T = AffineTransform.from_params(shift_nm=(3.5, 3.5), rotation_deg=17.0)
    g = grid(4, 2.0, x0=1.0, y0=1.0)
    count = atoms_to_grid(t, {"s": "s"}, g, T)
    area = atoms_to_grid(t, {"s": "s"}, g, T, weighting="area", supersample=16)
    assert np.all(count["n_atoms"].values >= 95)
    np.testing.assert_allclose(area["s"].values, count["s"].values, atol=1e-2)


def test_pixels_outside_the_atom_field_are_nan_and_nan_values_give_up_their_cells():
    t = square_lattice(6, 0.4, offset=2.0)  # atoms in [2, 4] nm
    g = grid(20, 0.3)  # 0 .. 5.7 nm
    ds = atoms_to_grid(t, {"v": "v"}, g, weighting="area")
    x, y = np.meshgrid(g.x.values, g.y.values)
    # default reach 0.75 x 0.4 nm = 0.3 nm from the nearest atom
    far = (x < 2.0 - 0.45) | (x > 4.0 + 0.45) | (y < 2.0 - 0.45) | (y > 4.0 + 0.45)
    near = (x > 2.0) & (x < 4.0) & (y > 2.0) & (y < 4.0)
    assert np.all(np.isnan(ds["v"].values[far])) and np.all(np.isfinite(ds["v"].values[near]))
    assert ds["v"].values[near].min() >= t.v.min() and ds["v"].values[near].max() <= t.v.max()
    # a reach shorter than the gaps between 0.3-nm footprints and the 0.4-nm-spaced atoms empties pixels
    tight = atoms_to_grid(t, {"v": "v"}, g, weighting="area", max_distance_nm=0.04)
    assert np.isnan(tight["v"].values).sum() > np.isnan(ds["v"].values).sum()
    # an atom whose value is NaN has no cell: its neighbours' cells take its area
    t2 = t.copy()
    t2.loc[(t2.i == 2) & (t2.j == 2), "v"] = np.nan
    t2.loc[(t2.i == 2) & (t2.j == 3), "v"] = 5.0
    one = atoms_to_grid(t2, {"v": "v"}, grid(2, 0.1, x0=2.8 + 0.12, y0=2.8), weighting="area")
    assert one["v"].values[0, 0] == 5.0  # 0.12 nm from the NaN atom at (2.8, 2.8), nearest finite (3.2, 2.8)


def test_rotated_transform_matches_an_independent_brute_force_assignment():
    t = square_lattice(20, 0.39, seed=4)
    T = AffineTransform.from_params(shift_nm=(3.1, 2.7), rotation_deg=23.0)
    g = grid(12, 0.2)
    s = 8
    ds = atoms_to_grid(t, {"v": "v"}, g, T, weighting="area", supersample=s)
    off = (np.arange(s) + 0.5) / s - 0.5
    u = g.x.values[None, :, None, None] + 0.2 * off[None, None, None, :]
    w = g.y.values[:, None, None, None] + 0.2 * off[None, None, :, None]
    qx, qy = T(*np.broadcast_arrays(u, w))
    d2 = (qx.ravel()[:, None] - t.x.values[None, :]) ** 2 + (qy.ravel()[:, None] - t.y.values[None, :]) ** 2
    want = t.v.values[np.argmin(d2, axis=1)].reshape(12, 12, -1).mean(axis=2)
    np.testing.assert_allclose(ds["v"].values, want, atol=1e-12)
    # the same footprints through the inverse frame: identity transform on pre-rotated atoms
    Ti = T.inverse()
    bx, by = Ti(t.x.values, t.y.values)
    same = atoms_to_grid(t.assign(x=bx, y=by), {"v": "v"}, g, weighting="area", supersample=s)
    np.testing.assert_allclose(same["v"].values, want, atol=1e-12)


def test_pair_preset_area_weighted_dopant_fraction_is_the_simulators_truth():
    from atomine.simulate.correlated_pair import simulate_pair

    sim = simulate_pair(seed=3)
    T = AffineTransform.from_dict(sim.truth.parameters["transform"])
    a = sim.truth.tables["atoms"]
    a = a[a.site == "A"]
    truth = sim.truth.maps["dopant_fraction"].values
    ds = atoms_to_grid(a, {"dopant_fraction": lambda t: t.cls == "dopant"}, sim.extra["ADF"], T, weighting="area")
    got = ds["dopant_fraction"].values
    # the same definition (nearest A column of 8 x 8 sub-area centres): equal, every pixel defined
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, truth, atol=1e-12)
    assert np.corrcoef(got.ravel(), truth.ravel())[0, 1] > 0.95
    # while counting atoms per 0.2-nm pixel leaves most pixels empty
    count = atoms_to_grid(a, {"dopant_fraction": lambda t: t.cls == "dopant"}, sim.extra["ADF"], T)
    assert np.isnan(count["dopant_fraction"].values).mean() > 0.6


@pytest.mark.parametrize("kwargs, words", [
    ({"weighting": "voronoi"}, "weighting"),
    ({"weighting": "area", "min_atoms": 3}, "min_atoms"),
    ({"weighting": "area", "supersample": 0}, "supersample"),
    ({"weighting": "area", "max_distance_nm": -1.0}, "max_distance_nm"),
])
def test_bad_area_options_are_clear_errors(kwargs, words):
    t = square_lattice(4, 1.0)
    before = t.copy()
    with pytest.raises(InputError, match=words):
        atoms_to_grid(t, {"v": "v"}, grid(3, 1.0), **kwargs)
    pd.testing.assert_frame_equal(t, before)


def test_sro_radius_pools_the_sites_near_each_pixel_centre_like_a_brute_force_loop():
    from atomine.correlate.grid import sro_to_grid

    n, a = 16, 0.39
    rng = np.random.default_rng(5)
    occ = rng.random((n, n)) < 0.3
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    t = pd.DataFrame({"x": a * j.ravel(), "y": a * i.ravel(), "site_i": i.ravel(), "site_j": j.ravel(),
                      "sublattice": 0, "cls": np.where(occ.ravel(), "dopant", "host")})
    T = AffineTransform.from_params(shift_nm=(1.0, 1.2), rotation_deg=11.0)
    g = grid(20, 0.2)
    r = 1.0
    got = sro_to_grid(t, g, T, radius_nm=r).values
    cls = dict(zip(zip(t.site_i, t.site_j), t.cls))
    want = np.full((20, 20), np.nan)
    for pi in range(20):
        for pj in range(20):
            cx, cy = T(np.array([g.x.values[pj]]), np.array([g.y.values[pi]]))
            sel = t[np.hypot(t.x - cx[0], t.y - cy[0]) <= r]
            c = (sel.cls == "dopant").mean() if len(sel) else np.nan
            pairs = dd = 0
            for si, sj, cl in zip(sel.site_i, sel.site_j, sel.cls):
                if cl == "dopant":
                    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                        if (si + di, sj + dj) in cls:
                            pairs += 1
                            dd += cls[(si + di, sj + dj)] == "dopant"
            if pairs and c < 1:
                want[pi, pj] = (dd / pairs - c) / (1 - c)
    np.testing.assert_allclose(got, want, atol=1e-12, equal_nan=True)
    assert np.isfinite(got).mean() > 0.9
    with pytest.raises(InputError, match="not both"):
        sro_to_grid(t, g, T, radius_nm=r, window_px=3)
    with pytest.raises(InputError, match="radius_nm"):
        sro_to_grid(t, g, T, radius_nm=0.0)
