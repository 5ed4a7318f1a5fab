"""Positions in the STEM image against truth: scan distortions, polar shifts, grains, phases, dislocations."""

from __future__ import annotations

import numpy as np
import pytest

from atomine.simulate import crystal
from atomine.simulate.stem import PRESETS, simulate_stem
from atomine.simulate.stem_presets import GRAIN_ROTATIONS_DEG, GRAIN_SEEDS_NM, POLAR_DISPLACEMENT_PM, polar_structure

A_NM = 0.3905
PX = 0.02


def centroids(img, x_px, y_px, radius_px, background, iterations=4):
    """Background-subtracted centre of mass in a disk, re-centred a few times."""
    x, y = np.asarray(x_px, float).copy(), np.asarray(y_px, float).copy()
    r = int(np.ceil(radius_px)) + 2
    off = np.arange(-r, r + 1)
    for _ in range(iterations):
        xx = np.rint(x)[:, None, None].astype(int) + off[None, None, :]
        yy = np.rint(y)[:, None, None].astype(int) + off[None, :, None]
        w = img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)] - background
        w = w * (((xx - x[:, None, None]) ** 2 + (yy - y[:, None, None]) ** 2) <= radius_px**2)
        total = w.sum(axis=(1, 2))
        x, y = (w * xx).sum(axis=(1, 2)) / total, (w * yy).sum(axis=(1, 2)) / total
    return x, y


def gaussian_fit(img, x_px, y_px, half=6):
    """Least-squares fit of a round 2-D Gaussian (amplitude, centre, width) around each start point."""
    from scipy.optimize import least_squares

    out = []
    off = np.arange(-half, half + 1)
    for x, y in zip(np.asarray(x_px, float), np.asarray(y_px, float)):
        cx, cy = int(round(x)), int(round(y))
        patch = img[cy - half:cy + half + 1, cx - half:cx + half + 1]
        yy, xx = np.meshgrid(cy + off, cx + off, indexing="ij")

        def resid(p):
            return (p[0] * np.exp(-((xx - p[1]) ** 2 + (yy - p[2]) ** 2) / (2 * p[3] ** 2)) - patch).ravel()

        out.append(least_squares(resid, [patch.max(), x, y, 2.0], xtol=1e-12, ftol=1e-12).x[1:3])
    return np.array(out).T


def inside(atoms, shape, margin):
    return ((atoms.x_px > margin) & (atoms.x_px < shape[1] - 1 - margin)
            & (atoms.y_px > margin) & (atoms.y_px < shape[0] - 1 - margin)).values


@pytest.fixture(scope="module")
def sto():
    return crystal.lattice(crystal.perovskite_cell(A_NM, thickness_cells=10), fov_nm=6.0)


def test_each_scan_line_is_shifted_by_its_stored_jitter(sto):
    one = sto.subset(np.argmin((sto.x_nm - 3.0) ** 2 + (sto.y_nm - 3.0) ** 2)[None])  # an isolated column
    sim = simulate_stem(one, pixel_size_nm=PX, shot_noise=False, background_fraction=0.0, line_jitter_px=0.4,
                        drift_px_per_line=(0.004, 0.0), seed=7)
    img = sim.data.values.astype(float)
    scan = sim.truth.tables["scan"]
    x_true = one.x_nm[0] / PX
    rows = np.arange(int(one.y_nm[0] / PX) - 4, int(one.y_nm[0] / PX) + 5)
    cols = np.arange(img.shape[1])
    measured = (img[rows] * cols).sum(axis=1) / img[rows].sum(axis=1) - x_true
    assert np.allclose(measured, scan.shift_x_px.values[rows], atol=2e-3)
    assert np.allclose(scan.shift_x_px, scan.jitter_x_px + 0.004 * scan.row)
    assert scan.jitter_x_px.std() == pytest.approx(0.4, rel=0.15)


def test_jitter_and_drift_move_apparent_positions_as_stored(sto):
    kw = dict(pixel_size_nm=PX, shot_noise=False, background_fraction=0.0, seed=4)
    ideal = simulate_stem(sto, **kw)
    drifted = simulate_stem(sto, drift_px_per_line=(0.01, 0.02), **kw)
    moved = simulate_stem(sto, line_jitter_px=0.3, drift_px_per_line=(0.01, 0.02), **kw)
    a0, ad, a1 = (s.truth.tables["atoms"] for s in (ideal, drifted, moved))
    assert np.array_equal(a0.x, a1.x) and np.array_equal(a0.y, a1.y)  # true positions unchanged
    keep = np.flatnonzero(inside(a1, moved.data.shape, 12) & (a1.site == "A").values)[::3]
    # drift alone: a Gaussian peak fit finds the columns exactly where the truth says
    fx, fy = gaussian_fit(drifted.data.values.astype(float), ad.x_px.values[keep], ad.y_px.values[keep])
    assert np.abs(fx - ad.x_px.values[keep]).max() < 5e-3 and np.abs(fy - ad.y_px.values[keep]).max() < 5e-3
    # y is stretched by 1 / (1 - vy), x sheared by vx per row
    on = inside(ad, moved.data.shape, 12)  # columns whose rows are all scanned
    assert np.allclose(ad.y_px, a0.y_px / (1 - 0.02))
    assert np.allclose(ad.x_px[on], a0.x_px[on] + 0.01 * ad.y_px[on])
    # with jitter, the stored row-averaged shift is right to first order (0.3 px rms jitter -> < 0.03 px)
    fx, fy = gaussian_fit(moved.data.values.astype(float), a1.x_px.values[keep], a1.y_px.values[keep])
    err = np.hypot(fx - a1.x_px.values[keep], fy - a1.y_px.values[keep])
    naive = np.abs(fx - ad.x_px.values[keep])
    assert err.max() < 0.03 and naive.mean() > 4 * err.mean()


@pytest.fixture(scope="module")
def polar_sim():
    return simulate_stem(polar_structure(fov_nm=6.0), pixel_size_nm=PX, dose_e_per_A2=2e4, seed=9)


def test_polar_displacement_in_truth_equals_request(polar_sim):
    atoms = polar_sim.truth.tables["atoms"]
    b = atoms[atoms.site == "B"]
    left = (b.x0 < 3.0).values
    assert np.allclose(b.loc[left, ["dx_pm", "dy_pm"]].values, POLAR_DISPLACEMENT_PM[0])
    assert np.allclose(b.loc[~left, ["dx_pm", "dy_pm"]].values, POLAR_DISPLACEMENT_PM[1])
    assert np.allclose((b.y - b.y0) * 1000, b.dy_pm) and np.allclose(b.x, b.x0)
    assert np.all(atoms.loc[atoms.site != "B", ["dx_pm", "dy_pm"]].values == 0)
    dy_map = polar_sim.truth.maps["dy_pm"].values
    assert set(np.unique(dy_map)) == {-15.0, 15.0}
    assert np.all(dy_map[:, :140] == -15.0) and np.all(dy_map[:, 160:] == 15.0)


@pytest.mark.parametrize("image_key", ["expected", "data"])
def test_polar_displacement_moves_the_image_centroid(polar_sim, image_key):
    img = (polar_sim.truth.maps["expected"] if image_key == "expected" else polar_sim.data).values.astype(float)
    p = polar_sim.truth.parameters
    atoms = polar_sim.truth.tables["atoms"]
    keep = inside(atoms, img.shape, 12)
    bg = p["incident_e_per_px"] * p["background_fraction"]
    for site, expect in (("B", True), ("A", False)):
        sel = keep & (atoms.site == site).values
        sub = atoms[sel]
        # start from the ideal lattice sites, not from the answer
        cx, cy = centroids(img, sub.x0 / PX, sub.y0 / PX, 4.0, bg)
        dy_pm = (cy - sub.y0 / PX) * PX * 1000
        dx_pm = (cx - sub.x0 / PX) * PX * 1000
        for in_left, (ex, ey) in ((True, POLAR_DISPLACEMENT_PM[0]), (False, POLAR_DISPLACEMENT_PM[1])):
            m = (sub.x0 < 3.0).values == in_left
            ex, ey = (ex, ey) if expect else (0.0, 0.0)
            sem = max(dy_pm[m].std(ddof=1) / np.sqrt(m.sum()), 0.05)
            tol = 0.5 if image_key == "expected" else 4 * sem + 0.5
            assert dy_pm[m].mean() == pytest.approx(ey, abs=tol)
            assert dx_pm[m].mean() == pytest.approx(ex, abs=tol)


def _fft_peak_angle(img, px_nm, k_nm, pad=1024):
    """Angle (deg, counter-clockwise as displayed) of the strongest Fourier peak near |k| = k_nm."""
    win = np.hanning(img.shape[0])[:, None] * np.hanning(img.shape[1])[None, :]
    f = np.abs(np.fft.fftshift(np.fft.fft2((img - img.mean()) * win, s=(pad, pad))))
    k = np.fft.fftshift(np.fft.fftfreq(pad, d=px_nm))
    kx, ky = np.meshgrid(k, k)
    ring = np.abs(np.hypot(kx, ky) - k_nm) < 0.15 * k_nm
    f[~ring] = 0
    iy, ix = np.unravel_index(np.argmax(f), f.shape)
    return np.degrees(np.arctan2(-ky[iy, ix], kx[iy, ix])), np.hypot(kx[iy, ix], ky[iy, ix])


def test_grains_have_the_requested_orientation_in_the_image():
    sim = PRESETS["haadf-grains"][1](0)
    img = sim.data.values.astype(float)
    grain_map = sim.truth.maps["grain"].values
    px = 0.025
    for g, ((sx, sy), rot) in enumerate(zip(GRAIN_SEEDS_NM, GRAIN_ROTATIONS_DEG)):
        cy, cx = int(sy / px), int(sx / px)
        y0, x0 = np.clip(cy - 64, 0, 512 - 128), np.clip(cx - 64, 0, 512 - 128)
        window = (slice(y0, y0 + 128), slice(x0, x0 + 128))
        assert np.mean(grain_map[window] == g) > 0.97
        angle, k = _fft_peak_angle(img[window], px, 1 / A_NM)
        diff = (angle - rot + 45) % 90 - 45  # square lattice: 90-degree symmetry
        assert abs(diff) < 1.0, (g, angle, rot)
        assert k == pytest.approx(1 / A_NM, rel=0.02)
    atoms = sim.truth.tables["atoms"]
    assert sorted(atoms.grain.unique()) == [0, 1, 2]
    assert list(sim.truth.tables["grains"].rotation_deg) == list(GRAIN_ROTATIONS_DEG)
    assert sim.truth.maps["boundary"].values.any()


def test_phase_inclusions_have_their_own_lattice():
    sim = PRESETS["haadf-phases"][1](1)
    img = sim.data.values.astype(float)
    phase_map = sim.truth.maps["phase"].values
    atoms = sim.truth.tables["atoms"]
    px = 0.025
    # each column sits in the region of its own phase (checked away from the disk rims)
    ix = np.clip(np.rint(atoms.x_px).astype(int), 0, 511)
    iy = np.clip(np.rint(atoms.y_px).astype(int), 0, 511)
    on_image = inside(atoms, img.shape, 0)
    assert np.mean(phase_map[iy, ix][on_image] == atoms.phase.values[on_image]) > 0.99
    window = (slice(int(8.6 / px) - 48, int(8.6 / px) + 48), slice(int(9.0 / px) - 48, int(9.0 / px) + 48))
    assert np.all(phase_map[window] == 1)
    angle, k = _fft_peak_angle(img[window], px, 2 / 0.4177, pad=2048)
    assert k == pytest.approx(2 / 0.4177, rel=0.01)  # rock salt [001]: columns a/2 apart
    assert (angle - 12.0 + 45) % 90 - 45 == pytest.approx(0, abs=1.5)
    assert set(atoms.loc[atoms.phase == 1, "species"]) == {"Ni10O10"}


def test_dislocation_field_is_rendered_at_the_true_positions():
    sim = PRESETS["haadf-dislocation"][1](2)
    atoms = sim.truth.tables["atoms"]
    disl = sim.truth.tables["dislocations"]
    assert len(disl) == 2 and set(disl.bx_nm.round(4)) == {0.3905, 0.0}
    near = np.hypot(atoms.x - disl.x_nm[0], atoms.y - disl.y_nm[0]) < 0.8
    sel = near.values & (atoms.site == "A").values
    expected = sim.truth.maps["expected"].values.astype(float)
    cx, cy = centroids(expected, atoms.x_px[sel], atoms.y_px[sel], 4.0,
                       sim.truth.parameters["incident_e_per_px"] * sim.truth.parameters["background_fraction"])
    assert np.abs(cx - atoms.x_px[sel]).max() < 0.08 and np.abs(cy - atoms.y_px[sel]).max() < 0.08
    assert np.hypot(atoms.ux[sel], atoms.uy[sel]).max() > 0.03  # columns really are displaced near the core
    # the displacement maps hold the analytic field at the sampled positions
    ux = sim.truth.maps["ux"].values
    assert np.nanmax(np.abs(ux)) > 0.1 and ux.dtype == np.float32


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_with_their_truth(name):
    description, make = PRESETS[name]
    assert isinstance(description, str) and description and "\n" not in description
    sim = make(3)
    again = make(3)
    assert np.array_equal(sim.data.values, again.data.values)
    assert 256 <= min(sim.data.shape) and max(sim.data.shape) <= 512
    step = float(sim.data.x[1] - sim.data.x[0])
    assert 0.015 <= step <= 0.03
    atoms = sim.truth.tables["atoms"]
    assert {"x", "y", "x_px", "y_px", "sublattice", "site_i", "site_j", "cls", "intensity"} <= set(atoms.columns)
    assert sim.data.attrs["signal"] == name.split("-")[0].upper()
    if name.endswith("perovskite"):
        assert set(atoms.loc[atoms.cls != "host", "site"]) == {"A"}
        assert {"dopant", "vacancy"} <= set(atoms.cls)
    if name == "haadf-mos2":
        assert set(atoms.loc[atoms.cls == "vacancy", "site"]) == {"X2"}
        assert set(atoms.loc[atoms.cls == "dopant", "species"]) == {"W1"}
    if name == "haadf-phases":
        assert set(atoms.phase) == {0, 1} and set(np.unique(sim.truth.maps["phase"])) == {0, 1}
    if name == "haadf-polar":
        assert {"dx_pm", "dy_pm"} <= set(sim.truth.maps.data_vars)
