"""Tip blur and piezo drift of atomine.simulate.stm against closed-form expectations."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from atomine.simulate.stm import random_occupancy, simulate_stm

A = 0.388


@pytest.fixture(scope="module")
def host_pair():
    """A dopant-free lattice imaged with an ideal tip, 32 whole periods per side (a = 10 px)."""
    occ = np.zeros((40, 40), dtype=np.int8)
    kw = dict(pixel_size_nm=A / 10, shape=(320, 320), snr=np.inf)
    return {t: simulate_stm(occ, tip_sigma_nm=t, **kw) for t in (0.0, 0.05, 0.08)}


def _fourier(img, m, n):
    """Complex Fourier coefficient at (kx, ky) = (m, n) / a for an image of 32 x 32 periods."""
    return np.fft.fft2(np.asarray(img, dtype=np.float64))[(32 * n) % 320, (32 * m) % 320]


@pytest.mark.parametrize("g", [(1, 0), (0, 1), (1, 1), (2, 0)])
@pytest.mark.parametrize("tip", [0.05, 0.08])
def test_tip_blur_damps_lattice_fourier_components_as_gaussian_convolution(host_pair, g, tip):
    ideal = host_pair[0.0].data
    blurred = host_pair[tip].data
    ratio = _fourier(blurred, *g) / _fourier(ideal, *g)
    k2 = (g[0] ** 2 + g[1] ** 2) / A**2
    # Convolution with a unit-area Gaussian of width t multiplies the component at k by exp(-2 pi^2 t^2 k^2).
    assert ratio.real == pytest.approx(np.exp(-2 * np.pi**2 * tip**2 * k2), rel=1e-4)
    assert abs(ratio.imag) < 1e-6


def test_tip_blur_matches_numerical_convolution_and_reduces_corrugation(host_pair):
    tip = 0.08
    ideal = host_pair[0.0].truth.maps["topography"].values.astype(np.float64)
    numeric = ndi.gaussian_filter(ideal, tip / (A / 10), mode="wrap")  # the image is exactly periodic
    blurred = host_pair[tip].truth.maps["topography_blurred"].values
    assert np.abs(numeric - blurred).max() < 0.01 * np.ptp(blurred)
    # The peak of an isolated bump drops by s^2 / (s^2 + t^2); at t = 0.05 nm the tails of the
    # neighbours (0.27 nm away) add < 0.5 % to the O1 maximum.
    tip = 0.05
    peak = host_pair[tip].truth.maps["topography_blurred"].values.max() / ideal.max()
    assert peak == pytest.approx(0.06**2 / (0.06**2 + tip**2), rel=0.01)


@pytest.fixture(scope="module")
def drifted():
    occ = random_occupancy((44, 44), 3 / 8, seed=2)
    kw = dict(shape=(300, 300), snr=np.inf, rotation_deg=-4.0)
    still = simulate_stm(occ, **kw)
    moving = simulate_stm(occ, drift_nm=(0.10, 0.08), creep_nm=(0.04, -0.03), creep_tau=0.1, **kw)
    return still, moving


def _maxima(img):
    img = np.asarray(img, dtype=np.float64)
    y, x = np.nonzero((img == ndi.maximum_filter(img, size=5)) & (img > np.percentile(img, 40)))
    p = np.pad(img, 1, mode="edge")
    c, l, r, u, d = p[y + 1, x + 1], p[y + 1, x], p[y + 1, x + 2], p[y, x + 1], p[y + 2, x + 1]
    dx = np.clip(0.5 * (l - r) / np.minimum(l - 2 * c + r, -1e-30), -0.5, 0.5)
    dy = np.clip(0.5 * (u - d) / np.minimum(u - 2 * c + d, -1e-30), -0.5, 0.5)
    return x + dx, y + dy


def test_drift_moves_apparent_positions_as_stored(drifted):
    from scipy.spatial import cKDTree

    still, moving = drifted
    ta, tb = still.truth.tables["atoms"], moving.truth.tables["atoms"]
    # Symmetric environments only: there the maximum is the atom itself (no dopant pulling it aside).
    sel = ta["n_dopant_nn"].isin([0, 2]).to_numpy()
    ta = ta[sel].set_index(["species", "site_i", "site_j"])
    tb = tb.set_index(["species", "site_i", "site_j"])
    common = ta.index.intersection(tb.index)
    ta, tb = ta.loc[common], tb.loc[common]
    assert (ta["x"] == tb["x"]).all() and (ta["y"] == tb["y"]).all()  # drift never moves the true positions
    tree = cKDTree(np.column_stack(_maxima(moving.data)))
    found, _ = tree.query(np.column_stack([tb["x_px"], tb["y_px"]]))
    undrifted, _ = tree.query(np.column_stack([ta["x_px"], ta["y_px"]]))
    shift_px = np.hypot(tb["x_px"] - ta["x_px"], tb["y_px"] - ta["y_px"])
    assert np.median(found) < 0.1 and np.percentile(found, 95) < 0.4
    assert np.median(shift_px) > 2.0 and np.median(undrifted) > 1.5  # drift is resolved, not hidden in noise
    # The stored per-pixel drift map is the displacement at each feature's scan time.
    px = float(moving.data.coords["x"][1] - moving.data.coords["x"][0])
    ny, nx = moving.data.shape
    inner = tb[tb["x_px"].between(1, nx - 2) & tb["y_px"].between(1, ny - 2)]
    for col, pos, true in (("drift_x", "x_px", "x"), ("drift_y", "y_px", "y")):
        stored = ndi.map_coordinates(moving.truth.maps[col].values.astype(np.float64), [inner["y_px"], inner["x_px"]], order=1)
        np.testing.assert_allclose(inner[pos] * px - inner[true], stored, atol=2e-4)


def test_drift_grows_with_scan_time_linear_plus_creep(drifted):
    _, moving = drifted
    maps = moving.truth.maps
    s = maps["scan_time"].values.astype(np.float64)
    creep = 1 - np.exp(-s / 0.1)
    np.testing.assert_allclose(maps["drift_x"], 0.10 * s + 0.04 * creep, atol=1e-6)
    np.testing.assert_allclose(maps["drift_y"], 0.08 * s - 0.03 * creep, atol=1e-6)
    assert s[0, 0] == 0 and s[-1, -1] == pytest.approx(1 - 1 / 300**2)
    assert np.all(np.diff(s.ravel()) > 0)  # raster order: fast x, slow y
