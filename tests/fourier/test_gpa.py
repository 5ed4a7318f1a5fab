"""Geometric phase analysis: exact strain/rotation/displacement on fringes, truth-checked on a STEM simulation."""

import dataclasses

import numpy as np
import pytest
from lattice_images import A_NM, basis, fringes

from atomine.errors import InputError
from atomine.fourier.gpa import gpa
from atomine.fourier.lattice import find_lattice_peaks, power_spectrum
from atomine.simulate import crystal
from atomine.simulate.stem import simulate_stem

NOMINAL_G = [[1 / A_NM, 0.0], [0.0, 1 / A_NM]]
# more than 3 mask widths (sigma_nm ~ 0.4 nm = 20 px) from the edges, where the FFT's periodic wrap
# joins lattice fringes that do not match across the box
INNER = (slice(64, -64), slice(64, -64))


@pytest.mark.parametrize("rotation, exx, eyy", [(3.0, 0.01, -0.005), (-2.0, 0.0, 0.02)])
def test_uniform_strain_and_rotation_are_exact(rotation, exx, eyy):
    _, g_true = basis(rotation, exx, eyy)
    ds = gpa(fringes((320, 320), g_true), NOMINAL_G)
    for name, truth, tol in (("rotation", rotation, 0.02), ("exx", exx, 2e-4), ("eyy", eyy, 2e-4), ("exy", 0.0, 2e-4)):
        assert abs(float(ds[name][INNER].mean()) - truth) < tol, name
        assert float(ds[name][INNER].std()) < 2 * tol, name


def test_displacement_and_strain_of_a_smooth_field():
    # u_x = U sin(2 pi y / L) (a shear wave): exy = (1/2) dux/dy, rotation = (1/2) dux/dy in radians
    ny = nx = 320
    px = 0.02
    y = np.arange(ny)[:, None] * px * np.ones((1, nx))
    amp, length = 0.02, ny * px
    ux = amp * np.sin(2 * np.pi * y / length)
    img = fringes((ny, nx), basis()[1], ux=ux, uy=np.zeros_like(ux))
    ds = gpa(img, NOMINAL_G, sigma_nm=0.4)
    # the Gaussian mask smooths the field with a Gaussian of std sigma_nm: a wave of length L keeps
    # exp(-2 pi^2 sigma^2 / L^2) of its amplitude
    dux_dy = amp * 2 * np.pi / length * np.cos(2 * np.pi * y / length) * np.exp(-2 * np.pi**2 * 0.4**2 / length**2)
    assert np.max(np.abs(ds.exy.values - 0.5 * dux_dy)[INNER]) < 5e-4
    assert np.max(np.abs(ds.rotation.values - np.degrees(0.5 * dux_dy))[INNER]) < 0.03
    assert np.max(np.abs(ds.exx.values[INNER])) < 1e-3
    # the displacement itself, up to a constant set by the phase origin
    diff = (ds.ux.values - ux)[INNER]
    assert np.max(np.abs(diff - np.median(diff))) < 0.003
    assert ds.ux.attrs["units"] == "nm"


def test_reference_region_refines_g():
    _, g_true = basis(1.0, 0.01, 0.01)
    img = fringes((320, 320), g_true)
    ds = gpa(img, NOMINAL_G, reference=(2.0, 4.4, 2.0, 4.4))
    assert np.max(np.abs(ds.exx.values[INNER])) < 1e-3 and abs(float(ds.exx[INNER].mean())) < 2e-4
    assert np.max(np.abs(ds.rotation.values[INNER])) < 0.03
    assert np.allclose(ds.attrs["g"], g_true, atol=2e-3)
    mask = np.zeros((320, 320), bool)
    mask[130:190, 130:190] = True
    assert np.allclose(gpa(img, NOMINAL_G, reference=mask).attrs["g"], g_true, atol=2e-3)
    assert ds.attrs["provenance"][-1]["name"] == "fourier.gpa"


def test_strained_stem_simulation_within_half_a_percent():
    exx, eyy = 0.015, -0.01
    cell = crystal.perovskite_cell(A_NM, thickness_cells=8)
    cell = dataclasses.replace(cell, a1_nm=(A_NM * (1 + exx), 0.0), a2_nm=(0.0, A_NM * (1 + eyy)))
    sim = simulate_stem(crystal.lattice(cell, fov_nm=(7.68, 7.68)), pixel_size_nm=0.02, dose_e_per_A2=2.0e4,
                        probe_fwhm_nm=0.09, line_jitter_px=0.15, detector_noise_counts=0.5, seed=5)
    peaks = find_lattice_peaks(power_spectrum(sim.data))
    # index the measured peaks on the nominal lattice: strain is then relative to it
    hkl = np.rint(peaks @ (A_NM * np.eye(2)))
    ds = gpa(sim.data, hkl / A_NM)
    assert abs(float(ds.exx[INNER].mean()) - exx) < 0.001
    assert abs(float(ds.eyy[INNER].mean()) - eyy) < 0.001
    assert np.percentile(np.abs(ds.exx.values[INNER] - exx), 95) < 0.005
    assert np.percentile(np.abs(ds.eyy.values[INNER] - eyy), 95) < 0.005


def test_gpa_bad_input():
    img = fringes((64, 64), basis()[1])
    with pytest.raises(InputError, match="dims"):
        gpa(img.values, NOMINAL_G)
    with pytest.raises(InputError, match="dims"):
        gpa(img.expand_dims("z"), NOMINAL_G)
    with pytest.raises(InputError, match="NaN"):
        gpa(img * np.nan, NOMINAL_G)
    with pytest.raises(InputError, match="collinear"):
        gpa(img, [[1 / A_NM, 0], [2 / A_NM, 0]])
    with pytest.raises(InputError, match="Nyquist"):
        gpa(img, [[100.0, 0], [0, 1 / A_NM]])
    with pytest.raises(InputError, match="4 lattice periods"):
        gpa(img.isel(x=slice(0, 32)), NOMINAL_G)
    img = fringes((128, 128), basis()[1])
    with pytest.raises(InputError, match="sigma_nm"):
        gpa(img, NOMINAL_G, sigma_nm=0.01)
    with pytest.raises(InputError, match="reference"):
        gpa(img, NOMINAL_G, reference=(50.0, 60.0, 50.0, 60.0))


def test_phases_only_maps_equal_the_full_ones():
    from atomine.simulate.stem_presets import haadf_dislocation

    sim = haadf_dislocation(0)
    g = find_lattice_peaks(power_spectrum(sim.data))
    full = gpa(sim.data, g)
    phases = gpa(sim.data, g, maps="phases")
    assert set(phases.data_vars) == {"phase1", "phase2", "amplitude1", "amplitude2"}
    for v in phases.data_vars:
        np.testing.assert_array_equal(phases[v].values, full[v].values)
    assert phases.attrs["a"] == full.attrs["a"]
    with pytest.raises(InputError, match="maps"):
        gpa(sim.data, g, maps="strain")
