"""Seeds and centres of mass against simulated ground truth."""

import numpy as np
import pytest
from model_images import gaussian_lattice
from scipy.spatial import cKDTree

from atomine.atoms.centroid import refine_centroid
from atomine.atoms.seeds import default_separation_px, find_seeds, noise_sigma
from atomine.errors import InputError
from atomine.simulate import make


def _visible_truth(sim, drop_vacancies=True, margin_px=2.0):
    """Truth columns whose peak lies inside the image (a column on the border is half outside)."""
    t = sim.truth.tables["atoms"]
    ny, nx = sim.data.shape
    m = margin_px
    keep = (t.x_px >= m) & (t.x_px <= nx - 1 - m) & (t.y_px >= m) & (t.y_px <= ny - 1 - m)
    if drop_vacancies:
        keep &= t.cls != "vacancy"
    return t[keep]


def _match(truth, table, tol_px=3.0, all_columns=None):
    """Distance of each seed to the nearest true column (of ``all_columns``, default ``truth``)
    and which ``truth`` columns have a seed within ``tol_px``."""
    ref = truth if all_columns is None else all_columns
    dist, _ = cKDTree(ref[["x_px", "y_px"]].to_numpy()).query(table[["x_px", "y_px"]].to_numpy())
    d2, idx = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(table[["x_px", "y_px"]].to_numpy())
    found = np.zeros(len(truth), bool)
    found[idx[d2 < tol_px]] = True
    return dist, found


@pytest.fixture(scope="module")
def perovskite():
    return make("haadf-perovskite", seed=0)


def test_haadf_perovskite_cations_all_found_without_false_seeds(perovskite):
    truth = _visible_truth(perovskite)
    seeds = find_seeds(perovskite.data)
    dist, found = _match(truth, seeds, all_columns=perovskite.truth.tables["atoms"])
    # every seed sits on a real column; the heavy A and B (Ti-O) sublattices are complete
    assert (dist < 3.0).all()
    by_sub = truth.assign(found=found).groupby("sublattice").found.mean()
    assert by_sub[0] == 1.0 and by_sub[1] == 1.0
    assert list(seeds.columns) == ["x", "y", "x_px", "y_px", "peak"]
    np.testing.assert_allclose(seeds.x, seeds.x_px * 0.02, atol=1e-12)  # physical = offset + index * scale


def test_hexagonal_mos2_every_column_found():
    sim = make("haadf-mos2", seed=0)
    truth = _visible_truth(sim)
    dist, found = _match(truth, find_seeds(sim.data), all_columns=sim.truth.tables["atoms"])
    assert found.all() and (dist < 3.0).all()


def test_abf_dark_columns_need_invert():
    sim = make("abf-perovskite", seed=0)
    truth = _visible_truth(sim)
    dist, found = _match(truth, find_seeds(sim.data, invert=True), all_columns=sim.truth.tables["atoms"])
    assert (dist < 3.0).all()
    by_sub = truth.assign(found=found).groupby("sublattice").found.mean()
    assert by_sub[0] == 1.0 and by_sub[1] == 1.0
    # dark columns report negative peaks (depth below the local background)
    assert (find_seeds(sim.data, invert=True).peak < 0).all()


def test_default_separation_is_half_the_smallest_lattice_period(perovskite):
    # SrTiO3 [001]: the smallest strong period is the (220) spacing a / (2 sqrt 2) = 0.138 nm
    sep = default_separation_px(np.asarray(perovskite.data)) * 0.02
    assert sep == pytest.approx(0.5 * 0.3905 / (2 * np.sqrt(2)), rel=0.05)
    # a separation above the A-B distance (a / sqrt 2 = 0.276 nm) merges A and B columns
    few = find_seeds(perovskite.data, separation_nm=0.3)
    many = find_seeds(perovskite.data)
    assert len(few) < 0.6 * len(many)


def test_noise_sigma_of_pure_white_noise():
    rng = np.random.default_rng(3)
    assert noise_sigma(rng.normal(0, 2.5, (256, 256))) == pytest.approx(2.5, rel=0.03)


def test_centroid_beats_integer_seeds_on_model_image():
    counts, truth = gaussian_lattice(1e5, shape=(256, 256))
    seeds = find_seeds(counts)
    dist, found = _match(truth, seeds)
    assert found.all() and len(seeds) == len(truth)
    refined = refine_centroid(counts, seeds)
    d_seed, _ = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(seeds[["x_px", "y_px"]].to_numpy())
    d_cm, _ = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(refined[["x_px", "y_px"]].to_numpy())
    # integer seeds are off by ~0.4 px RMS; the background-subtracted centre of mass by < 0.1 px
    assert np.sqrt(np.mean(d_cm ** 2)) < 0.1 < np.sqrt(np.mean(d_seed ** 2))
    assert list(seeds.x_px) == list(seeds.copy().x_px)  # the input table is not modified


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(InputError, match="NaN"):
        img = np.ones((64, 64))
        img[3, 4] = np.nan
        find_seeds(img, 0.2)
    with pytest.raises(InputError, match="flat"):
        find_seeds(np.full((128, 128), 7.0))  # blank: no lattice to take a separation from
    with pytest.raises(InputError, match="no lattice"):
        find_seeds(np.random.default_rng(0).poisson(50, (256, 256)).astype(float))
    with pytest.raises(InputError, match="separation_nm"):
        find_seeds(np.random.default_rng(0).normal(size=(64, 64)), 1e6)
    with pytest.raises(InputError, match="2-D"):
        find_seeds(np.zeros((4, 64, 64)))
    with pytest.raises(InputError, match="threshold"):
        find_seeds(np.random.default_rng(0).normal(size=(64, 64)), 5.0, threshold=-1)
    with pytest.raises(InputError, match="lacks columns"):
        refine_centroid(np.zeros((64, 64)), find_seeds(np.zeros((64, 64)), 5.0).drop(columns="x_px"))


def test_blank_image_with_given_separation_is_an_empty_table():
    seeds = find_seeds(np.full((64, 64), 3.0), 5.0)
    assert len(seeds) == 0 and list(seeds.columns) == ["x", "y", "x_px", "y_px", "peak"]
    assert len(refine_centroid(np.full((64, 64), 3.0), seeds)) == 0
