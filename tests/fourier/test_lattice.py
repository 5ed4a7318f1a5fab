"""Local lattice, rotation and strain from sliding-FFT stacks: exact on fringes, truth-checked on STEM simulations."""

import dataclasses

import numpy as np
import pytest
import xarray as xr
from lattice_images import A_NM, basis, fringes
from scipy import ndimage

from atomine.errors import InputError
from atomine.fourier.lattice import find_lattice_peaks, local_lattice, power_spectrum
from atomine.fourier.sliding import sliding_fft
from atomine.simulate import crystal
from atomine.simulate.stem import simulate_stem
from atomine.simulate.stem_presets import GRAIN_ROTATIONS_DEG, haadf_grains

NOMINAL = [[A_NM, 0.0], [0.0, A_NM]]


def _same_line(g, h):
    """g equals h or -h (a peak of a real image's spectrum has an arbitrary sign)."""
    return min(np.linalg.norm(g - h), np.linalg.norm(g + h))


# --- global peaks -------------------------------------------------------------------------
def test_global_peaks_of_a_rotated_lattice_at_the_right_k():
    _, g_true = basis(rotation_deg=13.0, exx=0.01)
    peaks = find_lattice_peaks(power_spectrum(fringes((256, 320), g_true)), n=2)
    # a non-square image: the peaks fall between bins of both axes
    for g in g_true:
        assert min(_same_line(p, g) for p in peaks) < 0.002 * np.linalg.norm(g)


def test_global_peaks_from_a_half_plane_and_from_plain_arrays():
    _, g_true = basis(rotation_deg=-7.0)
    ps = power_spectrum(fringes((256, 256), g_true))
    half = ps.sel(kx=slice(0, None))
    a = find_lattice_peaks(half)
    b = find_lattice_peaks(ps.values, ps.ky.values, ps.kx.values)
    for g in g_true:
        assert min(_same_line(p, g) for p in a) < 0.003 * np.linalg.norm(g)
        assert min(_same_line(p, g) for p in b) < 0.003 * np.linalg.norm(g)


def test_global_peaks_bad_input():
    ps = power_spectrum(fringes((128, 128), basis()[1]))
    with pytest.raises(InputError, match="2-D"):
        find_lattice_peaks(np.ones(10), np.arange(10), np.arange(10))
    with pytest.raises(InputError, match="ky and kx"):
        find_lattice_peaks(ps.values)
    with pytest.raises(InputError, match="NaN"):
        find_lattice_peaks(ps.values * np.nan, ps.ky.values, ps.kx.values)
    flat = xr.zeros_like(ps)
    with pytest.raises(InputError, match="non-collinear"):
        find_lattice_peaks(flat)


# --- local lattice on fringes -------------------------------------------------------------------
@pytest.mark.parametrize("rotation, exx, eyy", [(0.0, 0.0, 0.0), (10.0, 0.01, -0.005), (-27.0, 0.02, 0.0)])
def test_local_lattice_exact_on_fringes(rotation, exx, eyy):
    a_true, g_true = basis(rotation, exx, eyy)
    stack = sliding_fft(fringes((192, 192), g_true), 64, 32)
    ds = local_lattice(stack, [[1 / A_NM, 0], [0, 1 / A_NM]], reference_vectors=NOMINAL)
    assert np.nanmax(np.abs(ds.rotation.values - rotation)) < 0.2
    assert abs(float(ds.rotation.mean()) - rotation) < 0.02
    assert abs(float(ds.exx.mean()) - exx) < 2e-4
    assert abs(float(ds.eyy.mean()) - eyy) < 2e-4
    assert abs(float(ds.exy.mean())) < 5e-4
    # the real-space vectors are the true ones (up to the sign of each)
    a1 = np.array([float(ds.a1x.mean()), float(ds.a1y.mean())])
    assert _same_line(a1, a_true[:, 0]) < 1e-3
    assert np.allclose(ds.a1.mean(), np.hypot(*a_true[:, 0]), rtol=2e-4)


def test_rotation_is_counter_clockwise_as_displayed():
    # a lattice whose a1 points up-right as displayed (toward -y) is rotated by +angle
    g_true = basis(rotation_deg=8.0)[1]
    assert g_true[0, 1] < 0  # g1 = a1 direction for a square lattice: it points toward -y
    ds = local_lattice(sliding_fft(fringes((128, 128), g_true), 64, 32), [[1 / A_NM, 0], [0, 1 / A_NM]],
                       reference_vectors=NOMINAL)
    assert np.allclose(ds.rotation, 8.0, atol=0.2)


def test_reference_region_and_median_give_relative_strain():
    _, g_true = basis(rotation_deg=4.0, exx=0.015)
    stack = sliding_fft(fringes((160, 160), g_true), 64, 32)
    peaks = find_lattice_peaks(power_spectrum(fringes((160, 160), g_true)))
    for reference in ("median", (0.0, 2.0, 0.0, 2.0), np.ones((stack.sizes["wy"], stack.sizes["wx"]), bool)):
        ds = local_lattice(stack, peaks, reference=reference)
        # per-window leakage between peaks scatters by ~0.1 degree, 1e-3 in strain, around the reference
        assert np.nanmax(np.abs(ds.rotation)) < 0.25 and abs(float(ds.rotation.mean())) < 0.05
        assert np.nanmax(np.abs(ds.exx)) < 2e-3 and abs(float(ds.exx.mean())) < 5e-4
    assert ds.attrs["provenance"][-1]["name"] == "fourier.local_lattice"


@pytest.mark.parametrize("output", ["power", "log", "complex"])
def test_every_stack_output_gives_the_same_lattice(output):
    _, g_true = basis(rotation_deg=6.0, exx=0.01)
    img = fringes((128, 128), g_true)
    ref = local_lattice(sliding_fft(img, 64, 32), [[1 / A_NM, 0], [0, 1 / A_NM]], reference_vectors=NOMINAL)
    ds = local_lattice(sliding_fft(img, 64, 32, output=output), [[1 / A_NM, 0], [0, 1 / A_NM]],
                       reference_vectors=NOMINAL)
    assert np.allclose(ds.rotation, ref.rotation, atol=1e-3)
    assert np.allclose(ds.exx, ref.exx, atol=1e-5)


def test_uncertainty_matches_the_scatter_of_independent_noisy_windows():
    _, g_true = basis(rotation_deg=3.0)
    img = fringes((640, 640), g_true, noise=2.0, seed=3)
    stack = sliding_fft(img, 64, 64)  # non-overlapping windows: independent noise
    ds = local_lattice(stack, [[1 / A_NM, 0], [0, 1 / A_NM]], reference_vectors=NOMINAL)
    for name in ("rotation", "exx", "g1x"):
        scatter = float(ds[name].std())
        predicted = float(np.sqrt((ds[name + "_err"] ** 2).mean()))
        assert 0.5 < predicted / scatter < 2.0, (name, predicted, scatter)


def test_weak_windows_are_nan():
    _, g_true = basis()
    img = fringes((128, 256), g_true)
    values = img.values.copy()
    values[:, 128:] = 5.0 + np.random.default_rng(0).normal(size=(128, 128))  # no lattice on the right
    stack = sliding_fft(img.copy(data=values), 64, 32)
    ds = local_lattice(stack, [[1 / A_NM, 0], [0, 1 / A_NM]], reference_vectors=NOMINAL)
    right = ds.wx.values > 128 * 0.02 + 32 * 0.02
    assert np.all(np.isnan(ds.exx.values[:, right]))
    assert np.all(np.isfinite(ds.exx.values[:, ds.wx.values < 2.0]))


# --- STEM simulations ------------------------------------------------------------------------------
def _interior_windows(grain_map, ds, window):
    """Window-centre mask of windows lying wholly inside one grain, and that grain's label."""
    g = grain_map.values
    pure = np.zeros(g.shape, dtype=bool)
    for k in np.unique(g):
        pure |= ndimage.binary_erosion(g == k, np.ones((window, window)))
    iy = np.rint((ds.wy.values - float(grain_map.y[0])) / float(grain_map.y[1] - grain_map.y[0])).astype(int)
    ix = np.rint((ds.wx.values - float(grain_map.x[0])) / float(grain_map.x[1] - grain_map.x[0])).astype(int)
    return pure[np.ix_(iy, ix)], g[np.ix_(iy, ix)]


def test_grain_rotations_within_half_a_degree():
    sim = haadf_grains(0)
    stack = sliding_fft(sim.data, 64, 16)
    ds = local_lattice(stack, find_lattice_peaks(power_spectrum(sim.data)), reference_vectors=NOMINAL)
    inside, grain = _interior_windows(sim.truth.maps.grain, ds, 64)
    truth = np.asarray(GRAIN_ROTATIONS_DEG)[grain]
    err = (ds.rotation.values - truth)[inside]
    assert inside.sum() > 300 and np.all(np.isfinite(err))
    assert np.max(np.abs(err)) <= 0.5
    # the stated uncertainty describes the scatter
    assert 0.3 < float(np.sqrt(np.mean(err**2))) / float(ds.rotation_err.values[inside].mean()) < 3.0
    # same material in every grain: no strain beyond the noise
    assert np.max(np.abs(ds.exx.values[inside])) < 0.01


def test_uniform_strain_of_a_simulated_lattice_within_half_a_percent():
    exx, eyy = 0.02, -0.01
    cell = crystal.perovskite_cell(A_NM, thickness_cells=8)
    cell = dataclasses.replace(cell, a1_nm=(A_NM * (1 + exx), 0.0), a2_nm=(0.0, A_NM * (1 + eyy)))
    sim = simulate_stem(crystal.lattice(cell, fov_nm=(7.68, 7.68)), pixel_size_nm=0.02, dose_e_per_A2=2.0e4,
                        probe_fwhm_nm=0.09, line_jitter_px=0.15, detector_noise_counts=0.5, seed=4)
    stack = sliding_fft(sim.data, 96, 24)
    ds = local_lattice(stack, find_lattice_peaks(power_spectrum(sim.data)), reference_vectors=NOMINAL)
    assert np.all(np.isfinite(ds.exx))
    assert np.max(np.abs(ds.exx.values - exx)) <= 0.005
    assert np.max(np.abs(ds.eyy.values - eyy)) <= 0.005
    assert abs(float(ds.exx.mean()) - exx) < 0.001 and abs(float(ds.eyy.mean()) - eyy) < 0.001
    assert np.max(np.abs(ds.rotation.values)) < 0.5


# --- bad input -----------------------------------------------------------------------------------------
def test_local_lattice_bad_input():
    _, g_true = basis()
    stack = sliding_fft(fringes((128, 128), g_true), 64, 32)
    good = [[1 / A_NM, 0], [0, 1 / A_NM]]
    with pytest.raises(InputError, match="dims"):
        local_lattice(stack.isel(wy=0), good)
    with pytest.raises(InputError, match="dims"):
        local_lattice(stack.values, good)
    with pytest.raises(InputError, match="collinear"):
        local_lattice(stack, [[1 / A_NM, 0], [2 / A_NM, 0]])
    with pytest.raises(InputError, match="reference_peaks"):
        local_lattice(stack, [1 / A_NM, 0])
    with pytest.raises(InputError, match="NaN"):
        local_lattice(stack * np.nan, good)
    with pytest.raises(InputError, match="window"):
        local_lattice(sliding_fft(fringes((128, 128), g_true), 8, 8), good)
    with pytest.raises(InputError, match="reference must be"):
        local_lattice(stack, good, reference="mean")
    with pytest.raises(InputError, match="reference region"):
        local_lattice(stack, good, reference=(50.0, 60.0, 50.0, 60.0))
    with pytest.raises(InputError, match="reference_vectors"):
        local_lattice(stack, good, reference_vectors=[[A_NM, 0], [2 * A_NM, 0]])
    with pytest.raises(InputError, match="max_rotation_deg"):
        local_lattice(stack, good, max_strain=0)


def test_dask_backed_stack_gives_the_same_lattice():
    import dask.array as da

    _, g_true = basis(rotation_deg=5.0, exx=0.01)
    img = fringes((256, 256), g_true)
    lazy = img.copy(data=da.from_array(img.values, chunks=(96, 96)))
    good = [[1 / A_NM, 0], [0, 1 / A_NM]]
    eager = local_lattice(sliding_fft(img, 64, 16), good, reference_vectors=NOMINAL)
    stack = sliding_fft(lazy, 64, 16)
    assert hasattr(stack.data, "dask")
    ds = local_lattice(stack, good, reference_vectors=NOMINAL)
    assert np.allclose(ds.rotation, eager.rotation, atol=1e-4)
    assert np.allclose(ds.exx, eager.exx, atol=1e-6)


def test_padded_windows_hold_a_mirrored_lattice_and_are_nan():
    _, g_true = basis(rotation_deg=7.0)
    img = fringes((192, 200), g_true)
    good = [[1 / A_NM, 0], [0, 1 / A_NM]]
    valid = local_lattice(sliding_fft(img, 64, 16), good, reference_vectors=NOMINAL)
    padded = local_lattice(sliding_fft(img, 64, 16, edges="pad"), good, reference_vectors=NOMINAL)
    kept = padded.rotation.dropna("wy", how="all").dropna("wx", how="all")
    assert kept.shape == valid.rotation.shape
    assert np.allclose(kept.wx, valid.wx) and np.allclose(kept.values, valid.rotation.values, atol=1e-6)
