"""count_phases: distinct local lattices counted on simulated STEM images with known truth."""

import numpy as np
import pytest

from atomine.catalog._phase_count import count_phases
from atomine.errors import InputError
from atomine.simulate.stem_presets import PRESETS


def _image(name: str, seed: int) -> np.ndarray:
    return np.asarray(PRESETS[name][1](seed).data.values, dtype=np.float64)


@pytest.mark.parametrize("name,seed", [("haadf-perovskite", 0), ("haadf-mos2", 1), ("haadf-dislocation", 2),
                                       ("abf-perovskite", 0)])
def test_single_phase_counts_one(name, seed):
    r = count_phases(_image(name, seed), 0.02)
    assert r["n_phases"] == 1.0
    assert r["phase_fractions"] == [1.0]


@pytest.mark.parametrize("seed", [0, 3])
def test_inclusions_count_two(seed):
    img = _image("haadf-phases", seed)
    before = img.copy()
    r = count_phases(img, 0.025)
    assert r["n_phases"] == 2.0
    # NiO inclusions cover ~24 % of the field; windows touching them make the minority ~1/3
    assert 0.2 < r["phase_fractions"][1] < 0.45
    np.testing.assert_array_equal(img, before)  # input untouched


def test_tricrystal_counts_its_grains():
    r = count_phases(_image("haadf-grains", 1), 0.025)
    assert r["n_phases"] >= 2.0
    assert len(r["phase_fractions"]) == r["n_phases"]
    assert all(f >= 0.08 for f in r["phase_fractions"])


def test_uncalibrated_and_scaled_give_the_same_count():
    img = _image("haadf-grains", 0)
    assert count_phases(img, None) == count_phases(10.0 * img + 3.0, 0.025)


def test_rotated_single_phase_stays_one():
    from scipy.ndimage import rotate

    img = rotate(_image("haadf-perovskite", 1), 30.0, reshape=False, order=1)[80:432, 80:432]
    assert count_phases(img, 0.02)["n_phases"] == 1.0


@pytest.mark.parametrize("bad", [np.ones(100), np.ones((2, 3, 4)), np.array([["a", "b"], ["c", "d"]])])
def test_bad_shape_or_dtype_raises(bad):
    with pytest.raises(InputError):
        count_phases(bad, None)


def test_nan_raises():
    img = _image("haadf-perovskite", 0)
    img[10, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        count_phases(img, 0.02)


def test_tiny_or_featureless_image_gives_empty():
    img = _image("haadf-perovskite", 0)
    assert count_phases(img[:60, :60], 0.02) == {}  # fewer than 9 windows of ~5 lattice periods
    assert count_phases(np.zeros((256, 256)), 0.02) == {}
    assert count_phases(img[:8, :8], 0.02) == {}


def test_full_ingest_records_the_phase_count(tmp_path):
    """n_phases is on by default in full ingest and filterable: the two-phase file is found by n_phases>=2."""
    from atomine.catalog import Catalog, ingest
    from atomine.io import save

    for name in ("haadf-phases", "haadf-perovskite"):
        save(PRESETS[name][1](0).data, tmp_path / f"{name}.nc")
    with Catalog(tmp_path / "c.sqlite") as cat:
        ingest(cat, [tmp_path], descriptors=True)
        found = {h["path"].rsplit("/", 1)[-1]: cat.get(h["id"])["descriptors"].get("n_phases")
                 for h in cat.search("kind:image")}
        assert found == {"haadf-phases.nc": 2.0, "haadf-perovskite.nc": 1.0}
        assert [h["path"].rsplit("/", 1)[-1] for h in cat.search("n_phases>=2")] == ["haadf-phases.nc"]
