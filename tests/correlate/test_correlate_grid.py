"""Descriptors on the spectral grid: footprint means against analytic values and brute force."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.correlate.grid import atoms_to_grid, map_to_grid, sro_to_grid
from atomine.correlate.transform import AffineTransform
from atomine.errors import InputError


def spectral_grid(n=8, dx=1.0, x0=0.5, y0=0.5):
    return xr.DataArray(np.zeros((n, n)), dims=("y", "x"),
                        coords={"y": y0 + dx * np.arange(n), "x": x0 + dx * np.arange(n)})


def lattice_table(extent, step, offset=0.0):
    g = offset + step * np.arange(int(round(extent / step)))
    x, y = np.meshgrid(g, g)
    return pd.DataFrame({"x": x.ravel(), "y": y.ravel()})


def ramp(x, y):
    return 1.0 + 2.0 * x - 3.0 * y


def test_identity_footprint_mean_is_exact_centre_value_of_a_ramp():
    # 5 x 5 atoms per 1-nm pixel, symmetric about the pixel centre: the mean of a linear
    # field over them is exactly its value at the centre
    t = lattice_table(6.0, 0.2, offset=0.1)
    t["v"] = ramp(t.x, t.y)
    t["cls"] = np.where(np.arange(len(t)) % 5 == 0, "dopant", "host")
    g = spectral_grid(8)
    out = atoms_to_grid(t, {"v": "v", "dopant_fraction": lambda tt: tt.cls == "dopant"}, g)
    cx, cy = np.meshgrid(g.x.values, g.y.values)
    inside = (cx < 6) & (cy < 6)
    np.testing.assert_allclose(out["v"].values[inside], ramp(cx, cy)[inside], atol=1e-12)
    assert np.all(out["n_atoms"].values[inside] == 25)
    # every 5th atom in row-major order on 30-wide rows: exactly one of each 5 x 5 block column
    np.testing.assert_allclose(out["dopant_fraction"].values[inside], 0.2)
    assert np.all(np.isnan(out["v"].values[~inside])) and np.all(out["n_atoms"].values[~inside] == 0)
    assert np.all(np.isnan(atoms_to_grid(t, {"v": "v"}, g, min_atoms=26)["v"].values))


def _in_parallelogram(px, py, corners):
    # a point is inside a convex polygon iff it is on the same side of every edge
    signs = []
    for k in range(4):
        (ax, ay), (bx, by) = corners[k], corners[(k + 1) % 4]
        signs.append((bx - ax) * (py - ay) - (by - ay) * (px - ax))
    signs = np.array(signs)
    return np.all(signs > 0, axis=0) | np.all(signs < 0, axis=0)


def test_rotated_footprint_matches_brute_force_polygon_membership_and_analytic_mean():
    tr = AffineTransform.from_params(shift_nm=(3.0, 2.0), rotation_deg=7.0, scale=1.3)
    t = lattice_table(20.0, 0.05, offset=0.013)
    t["v"] = ramp(t.x, t.y)
    g = spectral_grid(8)
    out = atoms_to_grid(t, {"v": "v"}, g, tr)
    checked = 0
    for i in (0, 3, 7):
        for j in (0, 4, 6):
            xs, ys = g.x.values[j], g.y.values[i]
            sq = [(xs - 0.5, ys - 0.5), (xs + 0.5, ys - 0.5), (xs + 0.5, ys + 0.5), (xs - 0.5, ys + 0.5)]
            corners = [tr(a, b) for a, b in sq]
            inside = _in_parallelogram(t.x.values, t.y.values, corners)
            assert out["n_atoms"].values[i, j] == inside.sum()
            np.testing.assert_allclose(out["v"].values[i, j], t.v.values[inside].mean(), rtol=1e-12)
            # continuum footprint mean of a linear field = its value at the mapped centre; the
            # lattice discretisation (0.05 nm, ~680 atoms) leaves a small error
            assert out["v"].values[i, j] == pytest.approx(ramp(*tr(xs, ys)), abs=0.05)
            checked += 1
    assert checked == 9


def image_map(values_fn, n=200, step=0.1):
    c = step * np.arange(n)
    x, y = np.meshgrid(c, c)
    return xr.DataArray(values_fn(x, y), dims=("y", "x"), coords={"y": c, "x": c}, name="m")


def test_map_to_grid_constant_and_ramp_exact_and_nan_outside():
    tr = AffineTransform.from_params(shift_nm=(4.0, 3.0), rotation_deg=-11.0, scale=1.5)
    g = spectral_grid(12)
    const = map_to_grid(image_map(lambda x, y: np.full(x.shape, 2.5)), g, tr)
    lin = map_to_grid(image_map(ramp), g, tr, supersample=3)
    cx, cy = np.meshgrid(g.x.values, g.y.values)
    # the image covers [-0.05, 19.95] nm; a footprint is inside iff its 4 corners are
    inside = np.ones(cx.shape, bool)
    for sx in (-0.5, 0.5):
        for sy in (-0.5, 0.5):
            qx, qy = tr(cx + sx, cy + sy)
            inside &= (qx >= -0.05) & (qx <= 19.95) & (qy >= -0.05) & (qy <= 19.95)
    assert 10 < inside.sum() < inside.size  # the test must see both cases
    np.testing.assert_allclose(const.values[inside], 2.5, atol=1e-12)
    np.testing.assert_allclose(lin.values[inside], ramp(*tr(cx, cy))[inside], atol=1e-9)
    assert np.all(np.isnan(const.values[~inside])) and np.all(np.isnan(lin.values[~inside]))


def test_map_to_grid_area_weighting_of_a_step():
    # a step edge through the middle of a spectral pixel: the mean is the covered area fraction
    m = image_map(lambda x, y: (x >= 2.25).astype(float), n=80, step=0.05)
    g = spectral_grid(3, dx=1.0, x0=1.0, y0=1.0)  # pixel 1 spans x in [1.5, 2.5]
    out = map_to_grid(m, g, supersample=40)
    # image pixels at x = 2.20 (0) and 2.25 (1): bilinear sampling puts the edge's midpoint at
    # 2.225 nm, so the covered area fraction of [1.5, 2.5] is 0.275 (a box average would say so too)
    assert out.values[1, 1] == pytest.approx(0.275, abs=1e-9)
    assert out.values[1, 0] == pytest.approx(0.0, abs=1e-12)


def checker_table(n=16, dopant=lambda i, j: (i + j) % 2 == 0, step=0.25):
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    cls = np.where(dopant(i, j), "dopant", "host")
    return pd.DataFrame({"x": (j + 0.5) * step, "y": (i + 0.5) * step, "site_i": i, "site_j": j,
                         "sublattice": 0, "cls": cls})


def brute_alpha(t, g, shell=1):
    """Per-pixel alpha by explicit loops (independent of the vectorised code)."""
    occ = {(a, b): c for a, b, c in zip(t.site_i, t.site_j, t.cls)}
    offs = [(1, 0), (-1, 0), (0, 1), (0, -1)] if shell == 1 else [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    out = np.full(g.shape, np.nan)
    for pi in range(g.shape[0]):
        for pj in range(g.shape[1]):
            sel = t[(np.floor(t.x - g.x.values[0] + 0.5) == pj) & (np.floor(t.y - g.y.values[0] + 0.5) == pi)]
            if sel.empty:
                continue
            c = (sel.cls == "dopant").mean()
            pairs = dd = 0
            for a, b, cl in zip(sel.site_i, sel.site_j, sel.cls):
                if cl != "dopant":
                    continue
                for da, db in offs:
                    if (a + da, b + db) in occ:
                        pairs += 1
                        dd += occ[(a + da, b + db)] == "dopant"
            if pairs and c < 1:
                out[pi, pj] = (dd / pairs - c) / (1 - c)
    return out


def test_sro_checkerboard_is_perfectly_ordered_and_random_matches_brute_force():
    t = checker_table()
    g = spectral_grid(4, dx=1.0, x0=0.5, y0=0.5)  # 4 x 4 sites per pixel, c = 1/2 exactly
    alpha = sro_to_grid(t, g)
    np.testing.assert_allclose(alpha.values, -1.0, atol=1e-12)
    rng = np.random.default_rng(3)
    occ = rng.random((16, 16)) < 0.3
    tr = checker_table(dopant=lambda i, j: occ[i, j])
    np.testing.assert_allclose(sro_to_grid(tr, g).values, brute_alpha(tr, g), atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(sro_to_grid(tr, g, shell=2).values, brute_alpha(tr, g, 2), atol=1e-12,
                               equal_nan=True)
    # a 3 x 3 window pools the centre pixel's neighbours: alpha(window) != alpha(pixel) in general
    assert sro_to_grid(tr, g, window_px=3).shape == (4, 4)


def test_grid_bad_input():
    t = lattice_table(4.0, 0.5)
    t["v"] = 1.0
    g = spectral_grid(4)
    with pytest.raises(InputError, match="no column"):
        atoms_to_grid(t, {"v": "nope"}, g)
    with pytest.raises(InputError, match="dims"):
        atoms_to_grid(t, {"v": "v"}, xr.DataArray(np.zeros(4), dims=("x",)))
    with pytest.raises(InputError, match="uniformly"):
        atoms_to_grid(t, {"v": "v"}, g.assign_coords(x=[0, 1, 3, 4]))
    with pytest.raises(InputError, match="one value per atom"):
        atoms_to_grid(t, {"v": lambda tt: [1.0, 2.0]}, g)
    with pytest.raises(InputError, match="site_i"):
        sro_to_grid(t, g)
    with pytest.raises(InputError, match="odd"):
        sro_to_grid(checker_table(), g, window_px=2)
    before = t.copy()
    atoms_to_grid(t, {"v": "v"}, g)
    pd.testing.assert_frame_equal(t, before)  # inputs are never modified
