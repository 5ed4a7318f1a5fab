"""locate_atoms: whole image vs dask tiles with a halo (no atom lost or counted twice), bad input."""

import dask.array as da
import numpy as np
import pytest
from model_images import gaussian_lattice
from scipy.spatial import cKDTree

from atomine.atoms.fit import locate_atoms
from atomine.data import image
from atomine.errors import InputError
from atomine.simulate import make

COLUMNS = ["x", "y", "x_px", "y_px", "x_err", "y_err", "pos_err", "amplitude", "sigma_x", "sigma_y", "theta",
           "background", "intensity", "fit_ok"]


@pytest.fixture(scope="module")
def perovskite():
    return make("haadf-perovskite", seed=1)


@pytest.fixture(scope="module")
def whole(perovskite):
    return locate_atoms(perovskite.data)


def test_table_columns_units_and_order(whole, perovskite):
    assert set(COLUMNS) <= set(whole.columns)
    assert whole.fit_ok.mean() > 0.97
    np.testing.assert_allclose(whole.x, whole.x_px * 0.02, atol=1e-12)
    order = np.lexsort((whole.x_px, whole.y_px))
    assert (order == np.arange(len(whole))).all()  # sorted by (y_px, x_px)
    # every atom is a true column of the simulation
    truth = perovskite.truth.tables["atoms"]
    dist, idx = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(whole[["x_px", "y_px"]].to_numpy())
    heavy = truth.sublattice.to_numpy()[idx] <= 1  # A and B columns; the few O columns seeded are faint
    assert np.percentile(dist[heavy], 99) < 0.3 and dist.max() < 3
    # away from the border (a column whose patch is cut by the edge, beside unseen columns
    # outside the field of view, can be biased by ~0.5 px), the errors are honest
    inner = np.minimum.reduce([whole.x_px, whole.y_px, 511 - whole.x_px, 511 - whole.y_px]) > 10
    ok = whole.fit_ok.to_numpy() & heavy & inner
    assert (dist[ok] * 0.02 < 5 * whole.pos_err.to_numpy()[ok]).all()


def _paired(a, b):
    """Rows of b matched to a by position (sort order may differ by rounding in y_px)."""
    dist, idx = cKDTree(b[["x_px", "y_px"]].to_numpy()).query(a[["x_px", "y_px"]].to_numpy())
    assert dist.max() < 0.5 and np.unique(idx).size == len(a)
    return b.iloc[idx].reset_index(drop=True)


def _agree(a, b):
    """Joint sweeps stop at changes of 5 % of an atom's 1-sigma, so a tile and the whole image agree
    to ~0.1 pm for almost all atoms; the
    few columns beside faint ones whose sweeps never settle agree to a fraction of their uncertainty."""
    diff = np.hypot(a.x - b.x, a.y - b.y).to_numpy()
    assert np.mean(diff <= 1e-4) > 0.99
    assert (diff <= np.maximum(1e-4, 0.3 * np.nan_to_num(a.pos_err.to_numpy(), nan=1.0))).all()


@pytest.mark.parametrize("tile_px", [100, 128])
def test_tiles_give_the_whole_image_answer(whole, perovskite, tile_px):
    tiled = locate_atoms(perovskite.data, tile_px=tile_px)
    assert len(tiled) == len(whole)
    tiled = _paired(whole, tiled)
    _agree(whole, tiled)
    assert np.median(np.abs(tiled.intensity / whole.intensity - 1)) < 1e-4
    assert (tiled.fit_ok == whole.fit_ok).mean() > 0.998
    # no column counted twice at a tile edge
    d, _ = cKDTree(tiled[["x_px", "y_px"]].to_numpy()).query(tiled[["x_px", "y_px"]].to_numpy(), k=2)
    assert d[:, 1].min() > 3.0


def test_dask_backed_image_goes_through_tiles(whole, perovskite):
    lazy = perovskite.data.copy(data=da.from_array(perovskite.data.values, chunks=200))
    done = []
    result = locate_atoms(lazy, tile_px=256, progress=lambda i, n, msg: done.append((i, n)))
    assert done[-1] == (4, 4)
    assert len(result) == len(whole)
    _agree(whole, _paired(whole, result))


def test_plain_array_in_pixel_units_and_calibrated_offset():
    counts, truth = gaussian_lattice(1e4, shape=(192, 192), seed=5)
    plain = locate_atoms(counts)
    assert len(plain) == len(truth)
    np.testing.assert_array_equal(plain.x, plain.x_px)  # pixel units
    calibrated = locate_atoms(image(counts, 0.02, origin=(10.0, 20.0)))
    np.testing.assert_allclose(calibrated.x, 20.0 + 0.02 * plain.x_px, atol=1e-9)
    np.testing.assert_allclose(calibrated.x_err, 0.02 * plain.x_err, rtol=1e-6)
    d, _ = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(plain[["x_px", "y_px"]].to_numpy())
    assert (d < 5 * plain.pos_err).all()


def test_centre_of_mass_only():
    counts, truth = gaussian_lattice(1e4, shape=(128, 128), seed=6)
    table = locate_atoms(counts, fit=False)
    assert len(table) == len(truth) and "x_err" not in table


def test_bad_inputs_give_clear_errors():
    with pytest.raises(InputError, match="flat"):
        locate_atoms(np.zeros((128, 128)))
    with pytest.raises(InputError, match="no lattice"):
        locate_atoms(np.random.default_rng(0).poisson(30, (256, 256)).astype(float))
    counts, _ = gaussian_lattice(1e4, shape=(128, 128))
    counts[10, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        locate_atoms(counts)
    counts[10, 10] = 0
    with pytest.raises(InputError, match="separation_nm"):
        locate_atoms(counts, separation_nm=1e5)
    with pytest.raises(InputError, match="tile_px"):
        locate_atoms(counts, tile_px=3)


def test_blank_image_with_given_separation_is_empty_not_an_error():
    table = locate_atoms(np.full((128, 128), 5.0), separation_nm=6.0)
    assert len(table) == 0 and set(COLUMNS) <= set(table.columns)
