"""Image formation of the STEM simulator: intensities, dose, noise, detectors, against truth."""

from __future__ import annotations

import numpy as np
import pytest

from atomine.simulate import crystal, defects
from atomine.simulate.probe import Probe
from atomine.simulate.stem import DETECTORS, simulate_stem

A_NM = 0.3905
PX = 0.02


def disk_sums(img, x_px, y_px, radius_px):
    """Sum and pixel count of ``img`` inside a disk around each (x_px, y_px)."""
    r = int(np.ceil(radius_px)) + 1
    off = np.arange(-r, r + 1)
    cx, cy = np.rint(x_px).astype(int), np.rint(y_px).astype(int)
    xx = cx[:, None, None] + off[None, None, :]
    yy = cy[:, None, None] + off[None, :, None]
    inside = ((xx - x_px[:, None, None]) ** 2 + (yy - y_px[:, None, None]) ** 2 <= radius_px**2)
    inside &= (xx >= 0) & (xx < img.shape[1]) & (yy >= 0) & (yy < img.shape[0])
    vals = img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)]
    return (vals * inside).sum(axis=(1, 2)), inside.sum(axis=(1, 2))


def interior(atoms, shape, margin_px):
    return ((atoms.x_px > margin_px) & (atoms.x_px < shape[1] - 1 - margin_px)
            & (atoms.y_px > margin_px) & (atoms.y_px < shape[0] - 1 - margin_px)).values


@pytest.fixture(scope="module")
def sto():
    return crystal.lattice(crystal.perovskite_cell(A_NM, thickness_cells=10), fov_nm=6.0)


@pytest.fixture(scope="module")
def sto_sim(sto):
    return simulate_stem(sto, pixel_size_nm=PX, dose_e_per_A2=2e4, seed=3)


def _ratio_from_image(img, atoms, background_counts, radius_px):
    keep = interior(atoms, img.shape, 10) & (atoms.cls == "host").values
    sums, npix = disk_sums(img, atoms.x_px.values[keep], atoms.y_px.values[keep], radius_px)
    signal = sums - npix * background_counts
    site = atoms.site.values[keep]
    a, b = signal[site == "A"], signal[site == "B"]
    ratio = a.mean() / b.mean()
    # delta-method standard error of a ratio of two independent means
    err = ratio * np.sqrt(a.var(ddof=1) / a.size / a.mean() ** 2 + b.var(ddof=1) / b.size / b.mean() ** 2)
    return ratio, err


def test_haadf_column_ratio_follows_z_to_the_1p7(sto_sim):
    """A (Sr10) / B (Ti10 O10) integrated intensity = 38^1.7 / (22^1.7 + 8^1.7), noiseless and noisy."""
    rule = 38**1.7 / (22**1.7 + 8**1.7)
    p = sto_sim.truth.parameters
    bg = p["incident_e_per_px"] * p["background_fraction"]
    atoms = sto_sim.truth.tables["atoms"]
    clean, _ = _ratio_from_image(sto_sim.truth.maps["expected"].values.astype(float), atoms, bg, 0.09 / PX)
    assert clean == pytest.approx(rule, rel=5e-3)  # only neighbour cross-talk remains
    noisy, err = _ratio_from_image(sto_sim.data.values.astype(float), atoms, bg, 0.09 / PX)
    assert 0 < err < 0.01 * rule
    assert abs(noisy - rule) < 4 * err + 5e-3 * rule
    # the truth table states the same rule exactly
    host = atoms[atoms.cls == "host"]
    ia = host.loc[host.site == "A", "intensity"].mean()
    ib = host.loc[host.site == "B", "intensity"].mean()
    assert ia / ib == pytest.approx(rule, rel=1e-12)
    assert list(sto_sim.truth.tables["sublattices"].name[:2]) == ["SrTiO3:A", "SrTiO3:B"]
    assert set(atoms.loc[atoms.site == "A", "sublattice"]) == {0}


def test_column_integral_is_dose_times_cross_section_for_any_pixel_size(sto):
    """Integrated counts of a column = dose x c Z^1.7 (nm^2), independent of sampling."""
    dose = 3e4
    sigma_nm2 = DETECTORS["HAADF"].cross_section_nm2 * 10 * 38**1.7
    for px in (0.015, 0.03):
        sim = simulate_stem(sto, pixel_size_nm=px, dose_e_per_A2=dose, shot_noise=False, background_fraction=0.0)
        atoms = sim.truth.tables["atoms"]
        a = atoms[(atoms.site == "A") & interior(atoms, sim.data.shape, 12)]
        sums, _ = disk_sums(sim.data.values.astype(float), a.x_px.values, a.y_px.values, 0.12 / px)
        expected = dose * 100 * sigma_nm2 * Probe(0.09).encircled(0.12)
        # neighbours (O at a/2) add a small, known-sign cross-talk
        assert np.median(sums) == pytest.approx(expected, rel=0.01)
        assert a.intensity.iloc[0] == pytest.approx(dose * 100 * sigma_nm2, rel=1e-12)


def test_mean_counts_equal_dose_times_pixel_area_times_mean_fraction(sto):
    sim = simulate_stem(sto, pixel_size_nm=PX, dose_e_per_A2=2e4, shot_noise=False, probe_tail_fraction=0.1)
    p = sim.truth.parameters
    ny, nx = sim.data.shape
    x0, x1, y0, y1 = -PX / 2, (nx - 0.5) * PX, -PX / 2, (ny - 0.5) * PX
    atoms = sim.truth.tables["atoms"]
    cross_nm2 = atoms.intensity.values / (p["dose_e_per_A2"] * 100)
    inside = Probe(0.09, 0.1, 0.3).in_rectangle(atoms.x.values, atoms.y.values, x0, x1, y0, y1)
    mean_fraction = p["background_fraction"] + (cross_nm2 * inside).sum() / ((x1 - x0) * (y1 - y0))
    incident = 2e4 * (PX * 10) ** 2
    assert p["incident_e_per_px"] == pytest.approx(incident)
    assert float(sim.data.mean()) == pytest.approx(incident * mean_fraction, rel=1e-3)
    assert np.array_equal(sim.data.values, sim.truth.maps["expected"].values)


def test_poisson_variance_equals_mean_in_vacuum_and_snr_scales_with_sqrt_dose(sto):
    half = sto.subset(sto.x_nm < 2.5)  # right part of the field is vacuum
    stds = []
    for dose in (1e4, 4e4):
        sim = simulate_stem(half, pixel_size_nm=PX, dose_e_per_A2=dose, seed=11)
        flat = sim.data.values[:, 200:].astype(float)
        expected = dose * (PX * 10) ** 2 * DETECTORS["HAADF"].background_fraction
        assert np.allclose(sim.truth.maps["expected"].values[:, 200:], expected, rtol=1e-6)
        n = flat.size
        assert flat.mean() == pytest.approx(expected, abs=4 * np.sqrt(expected / n))
        assert flat.var() == pytest.approx(expected, rel=4 * np.sqrt(2 / n))
        # over the whole image the normalised residual is standard normal
        resid = (sim.data.values - sim.truth.maps["expected"].values) / np.sqrt(sim.truth.maps["expected"].values)
        assert abs(resid.mean()) < 0.02 and resid.std() == pytest.approx(1.0, abs=0.02)
        stds.append(flat.std())
    assert stds[1] / stds[0] == pytest.approx(2.0, rel=0.05)  # 4x dose -> 2x noise -> 2x SNR


def test_detector_noise_adds_its_variance(sto):
    half = sto.subset(sto.x_nm < 2.5)
    sim = simulate_stem(half, pixel_size_nm=PX, dose_e_per_A2=1e4, detector_noise_counts=3.0, seed=2)
    flat = sim.data.values[:, 200:].astype(float)
    mean = 1e4 * (PX * 10) ** 2 * DETECTORS["HAADF"].background_fraction
    assert flat.var() == pytest.approx(mean + 9.0, rel=0.05)


def test_adf_uses_a_weaker_z_dependence(sto):
    sim = simulate_stem(sto, pixel_size_nm=PX, detector="ADF", shot_noise=False)
    atoms = sim.truth.tables["atoms"]
    ia = atoms.loc[atoms.site == "A", "intensity"].mean()
    ib = atoms.loc[atoms.site == "B", "intensity"].mean()
    assert ia / ib == pytest.approx(38**1.4 / (22**1.4 + 8**1.4), rel=1e-9)
    assert ia / ib < 38**1.7 / (22**1.7 + 8**1.7)
    assert sim.data.attrs["signal"] == "ADF"


def test_abf_shows_dark_dips_at_every_column_including_oxygen(sto):
    sim = simulate_stem(sto, pixel_size_nm=PX, detector="ABF", shot_noise=False)
    img = sim.data.values.astype(float)
    p = sim.truth.parameters
    bright = p["incident_e_per_px"] * p["background_fraction"]
    atoms = sim.truth.tables["atoms"]
    a = atoms[interior(atoms, img.shape, 10)]
    at = img[np.rint(a.y_px).astype(int), np.rint(a.x_px).astype(int)]
    depth = {s: np.mean(bright - at[(a.site == s).values]) for s in ("A", "B", "X1")}
    # dips grow slowly with Z: (8^(1/3) for O) : (38^(1/3) for Sr) : (22^(1/3) + 8^(1/3) for Ti-O)
    assert depth["X1"] > 0.3 * depth["A"] > 0
    assert depth["X1"] < depth["A"] < depth["B"]
    assert depth["X1"] / depth["A"] == pytest.approx(8 ** (1 / 3) / 38 ** (1 / 3), rel=0.05)
    # between columns the bright-field level is reached
    assert img.max() <= bright + 1e-6 and img.max() > 0.95 * bright
    assert atoms.loc[atoms.site == "B", "sublattice"].iloc[0] == 0  # strongest dips


def test_deterministic_under_seed_and_different_under_another(sto):
    kw = dict(pixel_size_nm=0.03, line_jitter_px=0.3, detector_noise_counts=1.0)
    a = simulate_stem(sto, seed=5, **kw)
    b = simulate_stem(sto, seed=5, **kw)
    c = simulate_stem(sto, seed=6, **kw)
    assert np.array_equal(a.data.values, b.data.values)
    assert a.truth.tables["atoms"].equals(b.truth.tables["atoms"])
    assert not np.array_equal(a.data.values, c.data.values)
    assert not np.allclose(a.truth.tables["scan"].jitter_x_px, c.truth.tables["scan"].jitter_x_px)


def test_dopants_brighter_and_vacancies_dark_where_the_truth_says(sto):
    grid = defects.occupancy_grid(sto, "A")
    occ = np.zeros(grid.shape, dtype=int)
    occ[5, 4] = occ[8, 9] = 1
    occ[6, 10] = -1
    s = defects.substitute(sto, occ, site="A", dopant="Bi")  # Bi (83) replaces all 10 Sr
    sim = simulate_stem(s, pixel_size_nm=PX, shot_noise=False, background_fraction=0.0)
    atoms = sim.truth.tables["atoms"]
    img = sim.data.values.astype(float)
    sums, _ = disk_sums(img, atoms.x_px.values, atoms.y_px.values, 0.09 / PX)
    a_host = np.median(sums[((atoms.site == "A") & (atoms.cls == "host")).values])
    dop = sums[(atoms.cls == "dopant").values]
    assert dop == pytest.approx(a_host * (83 / 38) ** 1.7, rel=0.01)
    vac = sums[(atoms.cls == "vacancy").values]
    assert vac.size == 1 and vac[0] < 0.02 * a_host


def test_image_metadata_and_truth_layout(sto_sim):
    da = sto_sim.data
    assert da.dtype == np.float32 and da.dims == ("y", "x")
    assert da.coords["x"].attrs["units"] == "nm" and da.attrs["units"] == "counts"
    assert da.coords["x"].values[1] - da.coords["x"].values[0] == pytest.approx(PX)
    md = da.attrs["metadata"]
    assert md["beam_energy_kv"] == 300 and md["collection_angle_mrad"] == [80.0, 200.0]
    assert md["dwell_time_s"] == pytest.approx(2e4 * 0.04 * 1.602176634e-19 / 20e-12)
    assert set(md["elements"]) == {"Sr", "Ti", "O"}
    atoms = sto_sim.truth.tables["atoms"]
    for col in ("x", "y", "x_px", "y_px", "Z_sum", "species", "sublattice", "site_i", "site_j", "cls",
                "intensity", "grain", "phase"):
        assert col in atoms.columns
    # without scan distortion the columns appear at their true positions
    assert np.allclose(atoms.x_px, atoms.x / PX) and np.allclose(atoms.y_px, atoms.y / PX)
    assert sto_sim.truth.maps["expected"].dims == ("y", "x")
    import json

    json.dumps(sto_sim.truth.parameters)
    json.dumps(da.attrs["provenance"])


@pytest.mark.parametrize("kwargs, message", [
    ({"dose_e_per_A2": -1.0}, "dose_e_per_A2"),
    ({"dose_e_per_A2": float("nan")}, "dose_e_per_A2"),
    ({"pixel_size_nm": 0.0}, "pixel_size_nm"),
    ({"pixel_size_nm": float("nan")}, "pixel_size_nm"),
    ({"detector": "BF4"}, "detector"),
    ({"probe_fwhm_nm": float("nan")}, "probe_fwhm_nm"),
    ({"probe_fwhm_nm": -0.1}, "probe_fwhm_nm"),
    ({"probe_tail_fraction": 1.5}, "probe_tail_fraction"),
    ({"line_jitter_px": -0.5}, "line_jitter_px"),
    ({"drift_px_per_line": (0.5, 0.0)}, "drift_px_per_line"),
    ({"drift_px_per_line": (float("nan"), 0.0)}, "drift_px_per_line"),
    ({"detector_noise_counts": float("inf")}, "detector_noise_counts"),
    ({"background_fraction": 2.0}, "background_fraction"),
    ({"fov_nm": (0.0, 5.0)}, "fov_nm"),
    ({"pixel_size_nm": 1e-4}, "pixels a side"),
    ({"seed": -3}, "seed"),
    ({"seed": 1.5}, "seed"),
])
def test_bad_parameters_raise_input_error(sto, kwargs, message):
    from atomine.errors import InputError

    base = {"pixel_size_nm": PX, "dose_e_per_A2": 1e4}
    with pytest.raises(InputError, match=message):
        simulate_stem(sto, **{**base, **kwargs})


def test_non_structure_and_unphysical_thickness_raise(sto):
    from atomine.errors import InputError

    with pytest.raises(InputError, match="Structure"):
        simulate_stem(np.zeros((10, 10)), pixel_size_nm=PX)
    thick = crystal.lattice(crystal.perovskite_cell(A_NM, A="Pb", B="Bi", thickness_cells=80), fov_nm=3.0)
    with pytest.raises(InputError, match="too thick"):
        simulate_stem(thick, pixel_size_nm=PX)
    x0 = sto.x_nm.copy()
    simulate_stem(sto, pixel_size_nm=0.05)
    assert np.array_equal(sto.x_nm, x0)  # input untouched
