"""estimate_window: a power of two holding 4-8 periods of the image's largest lattice period."""

import dask.array as da
import numpy as np
import pytest

from atomine.data import image
from atomine.errors import InputError
from atomine.fourier import estimate_window
from atomine.fourier.window_size import lattice_periods


def _lattice(shape, periods, angle_deg=0.0, noise=0.0, seed=0):
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    out = np.zeros(shape)
    for i, d in enumerate(periods):
        a = np.deg2rad(angle_deg + 60.0 * i)
        out += np.cos(2 * np.pi * (x * np.cos(a) + y * np.sin(a)) / d)
    return out + noise * np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("period, expected", [(5.0, 32), (6.0, 32), (7.5, 32), (11.0, 64), (20.0, 128)])
def test_window_is_power_of_two_holding_4_to_8_periods(period, expected):
    # Periods away from the 2^n / 4 boundaries: the estimate of d is bin-quantised.
    w = estimate_window(_lattice((512, 512), [period], angle_deg=17.0, noise=0.5))
    assert w == expected and 4 * period <= w < 8 * period


def test_largest_period_of_a_hexagonal_lattice_with_harmonics():
    data = _lattice((400, 300), [9.0, 9.0, 9.0], angle_deg=10.0, noise=0.3)
    data += 0.5 * _lattice((400, 300), [4.5], angle_deg=10.0)  # a harmonic must not shrink the window
    assert abs(lattice_periods(data)[0] - 9.0) < 0.5
    assert estimate_window(image(data, pixel_size=0.02)) == 64


def test_clamped_to_image_and_dask_input():
    data = _lattice((100, 90), [30.0])  # 4 periods = 120 px > image
    assert estimate_window(data) == 64
    lazy = image(da.from_array(_lattice((2048, 2048), [10.0]), chunks=512), pixel_size=0.05)
    assert estimate_window(lazy) == 64


def test_ramp_background_does_not_pull_the_window_up():
    data = _lattice((256, 256), [8.0]) + np.linspace(0, 50, 256)[:, None]
    assert estimate_window(data) == 32


@pytest.mark.parametrize("data, match", [
    (np.full((64, 64), 3.0), "flat"),
    (np.random.default_rng(0).normal(size=(256, 256)), "noise"),
    (np.zeros(64), "2-D"),
    (np.zeros((4, 4)), "too small"),
])
def test_no_lattice_or_bad_input(data, match):
    with pytest.raises(InputError, match=match):
        estimate_window(data)


def test_nan_image():
    data = _lattice((64, 64), [8.0])
    data[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        estimate_window(data)
