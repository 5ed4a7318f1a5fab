"""Abundance fields: simplex, interface widths, random-field statistics, area-weighted resampling."""

import numpy as np
import pytest
import xarray as xr

from atomine.data import image
from atomine.errors import CalibrationError, InputError
from atomine.simulate import fields


def _ten_ninety(s, profile):
    """Distance between the 10 % and 90 % crossings of a rising profile (linear interpolation)."""
    return np.interp(0.9, profile, s) - np.interp(0.1, profile, s)


@pytest.mark.parametrize("width", [0.4, 1.0, 2.5])
def test_layer_interfaces_have_the_requested_width_and_position(width):
    a = fields.layered_phases((600, 3), 0.02, [4.0, 8.0], width, names=["A", "B", "C"])
    assert a.dims == ("y", "x", "component") and a.y.attrs["units"] == "nm"
    y = a.y.values
    beyond_first = 1.0 - a.sel(component="A").isel(x=0).values  # everything past interface 1
    assert _ten_ninety(y, beyond_first) == pytest.approx(width, rel=1e-3)
    assert np.interp(0.5, beyond_first, y) == pytest.approx(4.0, abs=1e-3)
    c = a.sel(component="C").isel(x=0).values
    assert _ten_ninety(y, c) == pytest.approx(width, rel=1e-3)
    np.testing.assert_allclose(a.sum("component"), 1.0, atol=1e-12)
    assert float(a.min()) >= 0.0


def test_layers_rotate_counter_clockwise_as_displayed():
    a = fields.layered_phases((50, 50), 0.1, [2.5], 0.3, angle_deg=90.0)
    first = a.isel(component=0).values
    assert first[:, :10].min() > 0.99 and first[:, -10:].max() < 0.01  # the normal now points along +x
    assert np.allclose(first, first[0][None, :])


def test_domain_walls_are_voronoi_with_the_requested_width():
    seeds = [(2.0, 5.0), (8.0, 5.0), (5.0, 12.0)]
    a = fields.domain_phases((700, 500), 0.02, seeds, 0.8, names=["p", "q", "r"])
    np.testing.assert_allclose(a.sum("component"), 1.0, atol=1e-12)
    row = a.sel(y=5.0, method="nearest")  # the wall p | q is the line x = 5 here
    x = row.x.values
    assert _ten_ninety(x, row.sel(component="q").values) == pytest.approx(0.8, rel=2e-3)
    assert np.interp(0.5, row.sel(component="q").values, x) == pytest.approx(5.0, abs=2e-3)
    xx, yy = np.meshgrid(a.x.values, a.y.values)
    d = np.stack([np.hypot(xx - sx, yy - sy) for sx, sy in seeds], -1)
    nearest = d.argmin(-1)
    gap = np.sort(d, -1)
    far_from_walls = (gap[..., 1] - gap[..., 0]) > 1.0
    assert np.array_equal(a.values.argmax(-1)[far_from_walls], nearest[far_from_walls])


def test_random_fields_stay_strictly_inside_the_simplex():
    a = fields.random_fields((64, 64), 0.25, 4, 1.5, contrast=4.0, min_abundance=0.01, seed=3)
    v = a.values
    assert v.min() >= 0.01 - 1e-12 and v.max() < 1.0
    np.testing.assert_allclose(v.sum(-1), 1.0, atol=1e-12)
    assert v.max() > 0.9  # contrast 4 gives nearly pure patches too
    same = fields.random_fields((64, 64), 0.25, 4, 1.5, contrast=4.0, min_abundance=0.01, seed=3)
    other = fields.random_fields((64, 64), 0.25, 4, 1.5, contrast=4.0, min_abundance=0.01, seed=4)
    assert np.array_equal(v, same.values) and not np.allclose(v, other.values)


def test_random_field_correlation_follows_the_gaussian_kernel():
    """log(a0 / a1) = contrast (g0 - g1): its autocorrelation at lag ell is exp(-1/4)."""
    ell, px, contrast = 2.0, 0.25, 1.0
    a = fields.random_fields((256, 256), px, 2, ell, contrast=contrast, min_abundance=1e-15, seed=1).values
    logit = np.log(a[..., 0] - 1e-15) - np.log(a[..., 1] - 1e-15)
    g = (logit - logit.mean()) / logit.std()
    lag = int(round(ell / px))
    corr = np.mean([np.mean(g[:, :-lag] * g[:, lag:]), np.mean(g[:-lag] * g[lag:])])
    assert corr == pytest.approx(np.exp(-0.25), abs=0.05)
    assert np.mean(g[:, :-1] * g[:, 1:]) == pytest.approx(np.exp(-(px / ell) ** 2 / 4), abs=0.02)


def _fine_map(values, px, origin=0.0, units="nm"):
    da = image(values, px, origin=(origin, origin), signal="strain", value_units="")
    da.y.attrs["units"] = da.x.attrs["units"] = units
    return da


def test_area_resampling_of_whole_blocks_is_the_block_mean():
    rng = np.random.default_rng(0)
    fine = rng.normal(size=(40, 60))
    out = fields.resample_area(_fine_map(fine, 0.05), 0.25)
    np.testing.assert_allclose(out.values, fine.reshape(8, 5, 12, 5).mean(axis=(1, 3)), rtol=1e-12)
    assert float(out.mean()) == pytest.approx(fine.mean(), rel=1e-12)
    assert out.x.values[0] == pytest.approx(-0.025 + 0.125) and out.x.attrs["units"] == "nm"


def test_area_resampling_with_partial_pixels_conserves_the_mean_and_linear_maps():
    rng = np.random.default_rng(1)
    fine = rng.normal(size=(50, 50))  # 0.1 nm pixels, 5 nm field: 0.25 nm pixels tile it, cutting fine pixels
    out = fields.resample_area(_fine_map(fine, 0.1), 0.25)
    assert out.shape == (20, 20)
    assert float(out.mean()) == pytest.approx(fine.mean(), rel=1e-12)
    # independent check: split every 0.07 nm pixel into 7 x 7 pixels of 0.01 nm, where the
    # 0.3 nm pixels are whole blocks of 30 x 30, and take block means
    rough = rng.normal(size=(90, 90))
    out = fields.resample_area(_fine_map(rough, 0.07), 0.3)
    assert out.shape == (21, 21)
    split = np.repeat(np.repeat(rough, 7, 0), 7, 1)[:630, :630]
    np.testing.assert_allclose(out.values, split.reshape(21, 30, 21, 30).mean(axis=(1, 3)), rtol=1e-10, atol=1e-12)
    angstrom = _fine_map(fine, 1.0, units="A")  # 1 A = 0.1 nm pixels
    np.testing.assert_allclose(fields.resample_area(angstrom, 0.25).values,
                               fields.resample_area(_fine_map(fine, 0.1), 0.25).values, rtol=1e-12)


def test_abundances_follow_a_structural_map_on_the_spectral_grid():
    px = 0.02
    y, x = np.mgrid[0:300, 0:300] * px
    dopant = _fine_map(0.2 * np.exp(-((x - 3.0) ** 2 + (y - 3.0) ** 2) / 2.0), px)
    ab, resampled = fields.from_structural_map(dopant, 0.3, names=["host", "doped"])
    assert ab.shape == (20, 20, 2) and resampled.shape == (20, 20)
    np.testing.assert_array_equal(ab.y.values, resampled.y.values)
    m = resampled.values
    np.testing.assert_allclose(ab.sel(component="doped").values, (m - m.min()) / (m.max() - m.min()), atol=1e-12)
    custom, _ = fields.from_structural_map(dopant, 0.3, lambda v: np.stack([1 - v / 0.2, v / 0.2], -1))
    np.testing.assert_allclose(custom.values[..., 1], m / 0.2, atol=1e-12)
    three = fields.from_structural_map(dopant, 0.3, fields.linear_mapping(3, 0.05))[0].values
    assert three.min() >= 0.05 - 1e-12
    np.testing.assert_allclose(three.sum(-1), 1.0, atol=1e-12)


def test_check_abundances_and_bad_inputs_are_refused():
    good = np.full((4, 5, 2), 0.5)
    original = good.copy()
    assert fields.check_abundances(good, 2) is not good
    np.testing.assert_array_equal(good, original)
    with pytest.raises(InputError, match="sum to one"):
        fields.check_abundances(np.full((4, 5, 2), 0.6))
    with pytest.raises(InputError, match="non-negative"):
        fields.check_abundances(np.stack([np.full((3, 3), 1.5), np.full((3, 3), -0.5)], -1))
    with pytest.raises(InputError, match="NaN"):
        fields.check_abundances(np.where(np.arange(10)[:, None, None] == 3, np.nan, good[:1, :1]).repeat(2, 1))
    with pytest.raises(InputError, match="3 components but 2"):
        fields.check_abundances(np.full((2, 2, 3), 1 / 3), 2)
    with pytest.raises(InputError, match="3 dimensions"):
        fields.check_abundances(np.ones((4, 4)))
    with pytest.raises(InputError, match="interface_width_nm"):
        fields.layered_phases((8, 8), 0.1, [0.4], 0.0)
    with pytest.raises(InputError, match="strictly increasing"):
        fields.layered_phases((8, 8), 0.1, [0.5, 0.4], 0.1)
    with pytest.raises(InputError, match="pixel_size_nm"):
        fields.layered_phases((8, 8), -0.1, [0.4], 0.1)
    with pytest.raises(InputError, match="same point twice"):
        fields.domain_phases((8, 8), 0.1, [(0, 0), (0, 0)], 0.1)
    with pytest.raises(InputError, match="min_abundance"):
        fields.random_fields((8, 8), 0.1, 3, 1.0, min_abundance=0.5)
    with pytest.raises(InputError, match="min_abundance"):
        fields.random_fields((8, 8), 0.1, 3, 1.0, min_abundance=0.0)
    with pytest.raises(InputError, match="correlation_length_nm"):
        fields.random_fields((8, 8), 0.1, 3, np.nan)
    fine = _fine_map(np.ones((20, 20)), 0.1)
    with pytest.raises(InputError, match="finer"):
        fields.resample_area(fine, 0.05)
    with pytest.raises(InputError, match="smaller than one"):
        fields.resample_area(fine, 5.0)
    with pytest.raises(CalibrationError, match="not a length"):
        fields.resample_area(_fine_map(np.ones((20, 20)), 0.1, units="eV"), 0.5)
    with pytest.raises(InputError, match="dims"):
        fields.resample_area(xr.DataArray(np.ones((4, 4)), dims=("a", "b")), 0.5)
    with pytest.raises(InputError, match="NaN"):
        fields.resample_area(_fine_map(np.where(np.eye(20) > 0, np.nan, 1.0), 0.1), 0.5)
    with pytest.raises(InputError, match="sum to one"):
        fields.from_structural_map(fine, 0.5, lambda v: np.stack([v, v], -1))
    with pytest.raises(InputError, match="must return"):
        fields.from_structural_map(fine, 0.5, lambda v: v)
