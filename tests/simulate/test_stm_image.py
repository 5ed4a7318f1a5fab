"""STM topograph physics vs ground truth: SNR, noise spectra, lattice, sublattices, dopant contrast."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from atomine.simulate import stm
from atomine.simulate.stm import random_occupancy, simulate_stm


def _sample(img, df, order=3):
    """Image values at the (apparent) pixel positions of a truth table."""
    return ndi.map_coordinates(np.asarray(img, dtype=np.float64), [df["y_px"], df["x_px"]], order=order)


def _maxima(img, size=5):
    img = np.asarray(img, dtype=np.float64)
    peaks = (img == ndi.maximum_filter(img, size=size)) & (img > np.percentile(img, 30))
    y, x = np.nonzero(peaks)
    # Sub-pixel: quadratic fit through the 3-point neighbourhood along each axis.
    p = np.pad(img, 1, mode="edge")
    c, l, r, u, d = p[y + 1, x + 1], p[y + 1, x], p[y + 1, x + 2], p[y, x + 1], p[y + 2, x + 1]
    dx = np.clip(0.5 * (l - r) / np.where(l - 2 * c + r == 0, -1e-30, l - 2 * c + r), -0.5, 0.5)
    dy = np.clip(0.5 * (u - d) / np.where(u - 2 * c + d == 0, -1e-30, u - 2 * c + d), -0.5, 0.5)
    return x + dx, y + dy


def _nearest(xq, yq, x, y):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(np.column_stack([x, y])).query(np.column_stack([xq, yq]))
    return dist, idx


@pytest.fixture(scope="module")
def lcmo():
    return stm.PRESETS["stm-lcmo"][1](0)


@pytest.fixture(scope="module")
def occ():
    return random_occupancy((40, 40), 3 / 8, vacancy_fraction=0.01, seed=11)


@pytest.mark.parametrize("snr", [1.0, 4.0, 25.0])
def test_snr_is_the_requested_one(occ, snr):
    sim = simulate_stm(occ, shape=(200, 200), snr=snr, seed=1)
    blurred = sim.truth.maps["topography_blurred"].values.astype(np.float64)
    measured_noise = sim.data.values.astype(np.float64) - blurred
    assert blurred.std() / measured_noise.std() == pytest.approx(snr, rel=1e-3)
    np.testing.assert_allclose(measured_noise, sim.truth.maps["noise"].values, atol=1e-7)


def test_infinite_snr_gives_the_noiseless_image(occ):
    sim = simulate_stm(occ, shape=(100, 100), snr=np.inf)
    np.testing.assert_array_equal(sim.data.values, sim.truth.maps["topography_blurred"].values)
    assert sim.truth.parameters["snr_realised"] is None


def _radial_psd_slope(noise):
    f = np.abs(np.fft.fft2(noise - noise.mean())) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(noise.shape[0]), np.fft.fftfreq(noise.shape[1]), indexing="ij")
    k = np.hypot(ky, kx)
    band = (k > 0.02) & (k < 0.3)
    return np.polyfit(np.log(k[band]), np.log(f[band]), 1)[0]


def test_pink_noise_has_the_requested_spectral_exponent(occ):
    for beta in (1.0, 2.0):
        sim = simulate_stm(occ, shape=(256, 256), snr=2.0, noise_mix=(1, 0, 0), pink_exponent=beta, seed=3)
        assert _radial_psd_slope(sim.truth.maps["noise"].values.astype(np.float64)) == pytest.approx(-beta, abs=0.1)


def test_line_noise_is_constant_along_scan_lines_and_white_noise_is_flat(occ):
    line = simulate_stm(occ, shape=(128, 128), snr=2.0, noise_mix=(0, 1, 0), seed=3).truth.maps["noise"].values
    assert np.abs(line - line[:, :1]).max() < 1e-6 and line[:, 0].std() > 0
    white = simulate_stm(occ, shape=(256, 256), snr=2.0, noise_mix=(0, 0, 1), seed=3).truth.maps["noise"].values
    assert _radial_psd_slope(white.astype(np.float64)) == pytest.approx(0.0, abs=0.1)


def test_lattice_period_and_rotation_from_fft(occ):
    sim = simulate_stm(occ, shape=(352, 352), rotation_deg=3.0, snr=4.0, seed=2)
    img = sim.data.values.astype(np.float64)
    img = (img - img.mean()) * np.outer(np.hanning(352), np.hanning(352))
    pad = 8 * 352
    power = np.abs(np.fft.fftshift(np.fft.fft2(img, s=(pad, pad)))) ** 2
    k = (np.arange(pad) - pad // 2) / (pad * 0.03)  # cycles / nm
    kx, ky = np.meshgrid(k, k)
    a = 0.388
    # The fundamental along +a1: near (cos t, -sin t) / a; search a disc around 1/a, kx > 0, |ky| small.
    window = (np.abs(np.hypot(kx, ky) - 1 / a) < 0.3 / a) & (kx > 0) & (np.abs(ky) < 0.3 / a)
    iy, ix = np.unravel_index(np.argmax(np.where(window, power, 0)), power.shape)
    period = 1 / np.hypot(k[ix], k[iy])
    angle = np.degrees(np.arctan2(-k[iy], k[ix]))
    assert period == pytest.approx(a, rel=0.005)
    assert angle == pytest.approx(3.0, abs=0.25)


def test_o_sublattices_sit_at_the_true_positions(lcmo):
    atoms = lcmo.truth.tables["atoms"]
    sites = lcmo.truth.tables["sites"].set_index(["site_i", "site_j"])
    xm, ym = _maxima(lcmo.truth.maps["topography_blurred"])
    dist_px, idx = _nearest(atoms["x_px"], atoms["y_px"], xm, ym)
    # O features with a symmetric A-site environment (0 or 2 dopants, no vacancy) are maxima at the truth.
    sym = atoms["n_dopant_nn"].isin([0, 2]).to_numpy() & (atoms["n_vacancy_nn"] == 0).to_numpy()
    assert np.median(dist_px[sym]) < 0.1 and np.percentile(dist_px[sym], 95) < 0.5  # px; a = 12.9 px
    assert dist_px[sym].mean() * 0.03 < 0.01 * 0.388
    # With one dopant neighbour the apparent maximum is pulled toward that dopant's bump.
    one = atoms[(atoms["n_dopant_nn"] == 1).to_numpy() & (atoms["n_vacancy_nn"] == 0).to_numpy()]
    di = np.where(one["species"] == "O1", -1, 0)
    dj = np.where(one["species"] == "O2", -1, 0)
    first = sites.loc[list(zip(one["site_i"] + di, one["site_j"] + dj))]
    second = sites.loc[list(zip(one["site_i"], one["site_j"]))]
    is_first = (first["cls"] == "dopant").to_numpy()
    dop_x = np.where(is_first, first["x_px"], second["x_px"])
    dop_y = np.where(is_first, first["y_px"], second["y_px"])
    _, k = _nearest(one["x_px"], one["y_px"], xm, ym)
    shift = np.column_stack([xm[k] - one["x_px"], ym[k] - one["y_px"]])
    toward = np.column_stack([dop_x - one["x_px"], dop_y - one["y_px"]])
    cos = (shift * toward).sum(1) / (np.linalg.norm(shift, axis=1) * np.linalg.norm(toward, axis=1) + 1e-12)
    assert np.mean(cos > 0.9) > 0.9
    # And O1 / O2 are where the model puts them relative to the A sites: offsets (a/2, 0), (0, a/2) mod a.
    p = lcmo.truth.parameters
    a1, a2, o = np.array(p["a1_nm"]), np.array(p["a2_nm"]), np.array(p["origin_nm"])
    m = np.linalg.inv(np.column_stack([a1, a2]))
    for name, frac in (("O1", (0.5, 0.0)), ("O2", (0.0, 0.5))):
        sel = atoms[atoms["species"] == name]
        uv = m @ (np.vstack([sel["x"], sel["y"]]) - o[:, None])
        np.testing.assert_allclose(uv - np.rint(uv - np.array(frac)[:, None]), np.tile(np.array(frac)[:, None], uv.shape[1]),
                                   atol=1e-9)


def test_o_sublattices_distinguishable_in_noisy_image(lcmo):
    atoms = lcmo.truth.tables["atoms"]
    smooth = ndi.gaussian_filter(lcmo.data.values.astype(np.float64), 1.0)
    o1 = _sample(smooth, atoms[atoms["species"] == "O1"])
    o2 = _sample(smooth, atoms[atoms["species"] == "O2"])
    # sublattice 0 is the brighter one and it is O1 (set heights 30 vs 18 pm)
    assert set(atoms.loc[atoms["sublattice"] == 0, "species"]) == {"O1"}
    t = (o1.mean() - o2.mean()) / np.sqrt(o1.var() / o1.size + o2.var() / o2.size)
    assert t > 10
    # noiseless: the contrast equals the blurred height difference within the dopant background spread
    nl = lcmo.truth.tables["atoms"].groupby("species")["height_nm"].mean()
    h1, h2 = 0.030, 0.018
    factor = 0.06**2 / (0.06**2 + 0.035**2)
    assert nl["O1"] - nl["O2"] == pytest.approx((h1 - h2) * factor, abs=0.002)


@pytest.mark.parametrize("sign", [+1, -1])
def test_dopant_sites_offset_by_the_set_height_noiseless(occ, sign):
    h = sign * 0.012
    sim = simulate_stm(occ, shape=(300, 300), dopant_height_nm=h, snr=np.inf, rotation_deg=2.0)
    sites = sim.truth.tables["sites"]
    sites = sites[sites["in_image"]]
    z = _sample(sim.truth.maps["topography"], sites)
    dop, host = sites["cls"].to_numpy() == "dopant", sites["cls"].to_numpy() == "host"
    assert z[dop].mean() - z[host].mean() == pytest.approx(h, rel=0.03)


def test_dopants_detectable_in_noisy_preset(lcmo):
    sites = lcmo.truth.tables["sites"]
    sites = sites[sites["in_image"]]
    # Matched filter: smooth with the blurred dopant width, then read the A sites.
    width_px = np.hypot(0.15, 0.035) / 0.03
    z = _sample(ndi.gaussian_filter(lcmo.data.values.astype(np.float64), width_px), sites)
    dop, host = sites["cls"].to_numpy() == "dopant", sites["cls"].to_numpy() == "host"
    diff = z[dop].mean() - z[host].mean()
    t = diff / np.sqrt(z[dop].var() / dop.sum() + z[host].var() / host.sum())
    assert t > 20  # measured ~59
    # The matched-filtered contrast is the dopant bump after tip and filter: h s^2 / (s^2 + t^2 + f^2).
    s2, t2, f2 = 0.15**2, 0.035**2, (width_px * 0.03) ** 2
    assert diff == pytest.approx(0.012 * s2 / (s2 + t2 + f2), rel=0.15)


def test_truth_tables_consistent_with_occupancy_and_maps(lcmo):
    t = lcmo.truth
    sites, atoms = t.tables["sites"], t.tables["atoms"]
    assert len(sites) == 40 * 40
    assert (sites["cls"] == "dopant").sum() == t.parameters["n_dopant"] == 600
    assert (sites["cls"] == "vacancy").sum() == t.parameters["n_vacancy"] == 16
    assert not atoms.duplicated(["species", "site_i", "site_j"]).any()
    ny, nx = lcmo.data.shape
    assert atoms["x_px"].between(-0.5, nx - 0.5).all() and atoms["y_px"].between(-0.5, ny - 0.5).all()
    # Each O touches 2 A sites; the in-image O's cover every in-image dopant's neighbours.
    assert atoms["n_dopant_nn"].between(0, 2).all()
    assert atoms["n_dopant_nn"].mean() == pytest.approx(2 * 3 / 8, abs=0.1)
    # The tabulated heights are the tip-blurred noiseless map at the apparent positions (interpolated
    # away from the border).
    inner = atoms[atoms["x_px"].between(2, nx - 3) & atoms["y_px"].between(2, ny - 3)]
    np.testing.assert_allclose(_sample(t.maps["topography_blurred"], inner), inner["height_nm"], atol=3e-4)
    # The dopant map at each A site is the tabulated dopant + vacancy contribution there.
    inner = sites[sites["x_px"].between(2, nx - 3) & sites["y_px"].between(2, ny - 3)]
    np.testing.assert_allclose(_sample(t.maps["dopant"], inner), inner["dopant_nm"], atol=3e-4)
    md = lcmo.data.attrs["metadata"]
    assert md["material"] == "La5/8Ca3/8MnO3" and md["bias_v"] == 0.8 and md["setpoint_a"] == 5e-11
    assert lcmo.data.attrs["signal"] == "STM" and lcmo.data.attrs["units"] == "nm"
    assert lcmo.data.dtype == np.float32 and lcmo.data.coords["x"].attrs["units"] == "nm"
    assert -0.1 < t.parameters["alpha1_in_image"] < 0.1


def test_segregated_preset_is_clustered_with_same_composition():
    seg = stm.PRESETS["stm-lcmo-segregated"][1](0).truth.parameters
    assert seg["n_dopant"] == 600 and seg["alpha1_periodic"] > 0.4 and seg["alpha1_in_image"] > 0.4


def test_deterministic_under_seed(occ):
    a = simulate_stm(occ, shape=(96, 96), seed=4, drift_nm=(0.05, 0.02))
    b = simulate_stm(occ, shape=(96, 96), seed=4, drift_nm=(0.05, 0.02))
    c = simulate_stm(occ, shape=(96, 96), seed=5, drift_nm=(0.05, 0.02))
    np.testing.assert_array_equal(a.data.values, b.data.values)
    for name in ("atoms", "sites"):
        assert a.truth.tables[name].equals(b.truth.tables[name])
    assert not np.array_equal(a.data.values, c.data.values)
    np.testing.assert_array_equal(a.truth.maps["topography_blurred"], c.truth.maps["topography_blurred"])
    pa, pb = stm.PRESETS["stm-lcmo-segregated"][1](7), stm.PRESETS["stm-lcmo-segregated"][1](7)
    np.testing.assert_array_equal(pa.data.values, pb.data.values)


def test_vacancies_dimmer_by_the_set_depth(occ):
    sim = simulate_stm(occ, shape=(300, 300), snr=np.inf, vacancy_height_nm=-0.03)
    sites = sim.truth.tables["sites"]
    sites = sites[sites["in_image"]]
    z = _sample(sim.truth.maps["topography"], sites)
    vac, host = sites["cls"].to_numpy() == "vacancy", sites["cls"].to_numpy() == "host"
    assert vac.sum() >= 3
    # Neighbouring dopants (12 pm bumps, 0.388 nm away) add a little to both classes alike.
    assert z[vac].mean() - z[host].mean() == pytest.approx(-0.03, abs=0.002)


def test_imaged_mn_ranks_by_height_and_sits_on_maxima(occ):
    sim = simulate_stm(occ, shape=(200, 200), snr=np.inf, mn_height_nm=0.040, dopant_height_nm=0.0)
    atoms = sim.truth.tables["atoms"]
    assert set(atoms["species"]) == {"O1", "O2", "Mn"}
    ranks = atoms.groupby("species")["sublattice"].first()
    assert (ranks["Mn"], ranks["O1"], ranks["O2"]) == (0, 1, 2)
    # Brightest mean height is sublattice 0, as the atom-table convention requires.
    assert atoms.groupby("sublattice")["height_nm"].mean().is_monotonic_decreasing
    mn = atoms[atoms["species"] == "Mn"]
    assert mn["n_dopant_nn"].between(0, 4).all() and mn["n_dopant_nn"].max() == 4
    xm, ym = _maxima(sim.truth.maps["topography_blurred"])
    free = mn[mn["n_vacancy_nn"] == 0]
    dist, _ = _nearest(free["x_px"], free["y_px"], xm, ym)
    assert np.median(dist) < 0.1
