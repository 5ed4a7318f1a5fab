"""Calibrated axes: pixel <-> physical mapping is exact and inverse; bad calibrations are CalibrationErrors."""

import numpy as np
import pytest
import xarray as xr

from atomine.data import (axis_offset, axis_scale, axis_units, explicit_coord, image, is_calibrated, linear_coord,
                          phys_to_px, px_to_phys, require_dims, spectrum)
from atomine.errors import AtomineError, CalibrationError, InputError


@pytest.fixture
def img():
    return image(np.zeros((10, 20)), (0.05, 0.02), origin=(1.0, -0.5))


def test_px_phys_round_trip_and_known_points(img):
    # column 0 / row 0 is the origin; one pixel is one scale step (DESIGN: physical = offset + index * scale)
    x, y = px_to_phys(img, [0.0, 10.0, 2.5], [0.0, 4.0, 9.0])
    np.testing.assert_allclose(x, [-0.5, -0.3, -0.45])
    np.testing.assert_allclose(y, [1.0, 1.2, 1.45])
    xp, yp = phys_to_px(img, x, y)
    np.testing.assert_allclose(xp, [0.0, 10.0, 2.5], atol=1e-12)
    np.testing.assert_allclose(yp, [0.0, 4.0, 9.0], atol=1e-12)
    # the mapping agrees with the coordinates themselves
    np.testing.assert_allclose(px_to_phys(img, np.arange(20), 0)[0], img["x"].values)


def test_axis_helpers(img):
    assert axis_scale(img, "x") == pytest.approx(0.02) and axis_offset(img, "y") == 1.0
    assert axis_units(img, "x") == "nm" and axis_units(img, "energy") == ""
    assert is_calibrated(img)
    single = spectrum(np.ones(1), energy=[5.0])
    assert axis_scale(single, "energy") == 1.0  # one point has no step: the default


def test_negative_scale_is_a_valid_flipped_axis():
    c = linear_coord(3, -0.5, 1.0, "nm", "y")
    np.testing.assert_array_equal(c.values, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(explicit_coord([3.0, 2.0, 1.0], "eV", "energy").values, [3.0, 2.0, 1.0])


def test_uncalibrated_image_is_not_calibrated():
    with pytest.warns(UserWarning):
        raw = image(np.ones((2, 2)))
    assert not is_calibrated(raw)


@pytest.mark.parametrize("scale, offset", [(0.0, 0.0), (np.nan, 0.0), (np.inf, 0.0), (1.0, np.nan), (1.0, -np.inf)])
def test_linear_coord_rejects_unusable_calibration(scale, offset):
    with pytest.raises(CalibrationError):
        linear_coord(3, scale, offset, "nm", "x")


@pytest.mark.parametrize("values, match", [([[1.0, 2.0]], "1-D"), ([1.0, np.nan], "NaN"), ([1.0, 1.0], "monotonic"),
                                           ([1.0, 3.0, 2.0], "monotonic")])
def test_explicit_coord_rejects_unusable_values(values, match):
    with pytest.raises(CalibrationError, match=match):
        explicit_coord(values, "eV", "energy")


@pytest.mark.parametrize("n, scale", [(-1, 1.0), (2.5, 1.0), (3, "a"), (3, None)])
def test_linear_coord_rejects_malformed_arguments(n, scale):
    with pytest.raises(AtomineError):
        linear_coord(n, scale, 0.0, "nm", "x")


def test_explicit_coord_rejects_text_clearly():
    with pytest.raises(CalibrationError):
        explicit_coord(["a", "b"], "eV", "energy")


def test_require_dims(img):
    require_dims(img, ("y", "x"))
    with pytest.raises(InputError, match=r"must have dims \('x', 'y'\)"):
        require_dims(img, ("x", "y"), "input")


def test_axis_helpers_name_a_missing_dim(img):
    s = spectrum(np.ones(3), energy_scale=1.0)
    with pytest.raises(InputError):
        px_to_phys(s, 1.0, 1.0)


def test_axis_helpers_need_the_dim(img):
    # whatever the error type, a missing axis is never silently treated as calibrated
    for fn in (axis_scale, axis_offset):
        with pytest.raises((KeyError, InputError)):
            fn(img, "energy")
    bare = xr.DataArray(np.ones((2, 2)), dims=("y", "x"))
    assert not is_calibrated(bare)  # no coordinates: no units: not calibrated


def test_uniform_axis_scale_spans_the_whole_axis():
    from atomine.data import uniform_axis

    # Far from zero, the first step carries the rounding of the large offset (~5e-8 relative here);
    # (last - first) / (n - 1) does not, so the last coordinate is reproduced.
    values = 1e6 + np.arange(1000) * 1e-3
    assert values[1] - values[0] != pytest.approx(1e-3, rel=1e-9)
    offset, scale = uniform_axis(values)
    assert offset == 1e6 and scale == pytest.approx(1e-3, rel=1e-10)
    assert offset + 999 * scale == pytest.approx(values[-1], abs=1e-9)
    assert uniform_axis([1.0, 2.0, 4.0]) is None and uniform_axis(["a", "b"]) is None and uniform_axis([]) is None
    assert uniform_axis([5.0]) == (5.0, 1.0)


def test_axis_helpers_reject_label_and_coordinate_free_axes():
    labels = xr.DataArray(np.ones(2), dims=("component",), coords={"component": ["a", "b"]})
    with pytest.raises(InputError, match="labels"):
        axis_scale(labels, "component")
    with pytest.raises(InputError, match="no coordinates"):
        axis_offset(xr.DataArray(np.ones((2, 2)), dims=("y", "x")), "x")
    assert linear_coord(3.0, 1.0, 0.0, "nm", "x").shape == (3,)  # a whole float is a count
    with pytest.raises(CalibrationError, match="offset"):
        linear_coord(3, 1.0, "a", "nm", "x")
