"""AffineTransform contract: composition, inverse, sign convention, serialisation."""

import numpy as np
import pytest

from atomine.correlate.transform import AffineTransform
from atomine.errors import InputError


def test_rotation_is_counter_clockwise_as_displayed():
    t = AffineTransform.from_params(rotation_deg=90.0)
    x, y = t(1.0, 0.0)
    assert (x, y) == pytest.approx((0.0, -1.0), abs=1e-12)  # y down: (1, 0) moves up on screen


def test_shift_scale_shear_on_a_point():
    t = AffineTransform.from_params(shift_nm=(1.0, -2.0), scale=(2.0, 3.0), shear=0.5)
    assert t(1.0, 2.0) == pytest.approx((1.0 + 2.0 * (1.0 + 0.5 * 2.0), -2.0 + 3.0 * 2.0))


def test_inverse_composition_and_dict_round_trip():
    a = AffineTransform.from_params(shift_nm=(3.0, 1.0), rotation_deg=17.0, scale=(1.1, 0.9), shear=0.05)
    b = AffineTransform.from_params(shift_nm=(-1.0, 2.0), rotation_deg=-40.0)
    assert (a @ a.inverse()).allclose(AffineTransform.identity())
    xs, ys = np.array([0.0, 2.0, -3.0]), np.array([1.0, 5.0, 0.5])
    assert np.allclose((a @ b)(xs, ys), a(*b(xs, ys)))
    assert AffineTransform.from_dict(a.to_dict()) == a
    p = a.params()
    assert p["rotation_deg"] == pytest.approx(17.0) and p["shear"] == pytest.approx(0.05)
    assert AffineTransform.from_params(**p).allclose(a)


def test_singular_and_nan_matrices_are_refused():
    with pytest.raises(InputError):
        AffineTransform(np.zeros((3, 3)))
    with pytest.raises(InputError):
        AffineTransform(np.full((3, 3), np.nan))
