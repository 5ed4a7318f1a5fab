"""Bad input to sliding_fft: one clear InputError each, never a silent wrong answer."""

import numpy as np
import pytest
import xarray as xr

from atomine.data import image
from atomine.errors import InputError
from atomine.fourier import sliding_fft

IMG = image(np.random.default_rng(0).normal(size=(40, 60)), pixel_size=0.1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(window=41), "larger than the image"),
    (dict(window=1), "window"),
    (dict(window=16.5), "whole number"),
    (dict(window=True), "whole number"),
    (dict(window=16, step=0), "step"),
    (dict(window=16, step=-2), "step"),
    (dict(window=16, taper="kaiser"), "unknown taper"),
    (dict(window=16, taper=("hann", 2)), "takes no parameter"),
    (dict(window=16, taper=("tukey", 1.5)), "out of range"),
    (dict(window=16, output="phase"), "unknown output"),
    (dict(window=16, edges="wrap"), "unknown edges"),
    (dict(window=16, k_max=-1.0), "k_max"),
    (dict(window=16, k_max=0.01), "keeps no frequency bin but k = 0"),
    (dict(window=16, mask_dc=float("nan")), "mask_dc"),
    (dict(window=16, chunk_windows=0), "chunk_windows"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(InputError, match=match):
        sliding_fft(IMG, **kwargs)


def test_nan_image():
    data = IMG.values.copy()
    data[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        sliding_fft(data, 16)
    with pytest.raises(InputError, match="NaN"):
        sliding_fft(image(data, pixel_size=0.1, allow_nan=True), 16)


@pytest.mark.parametrize("data", [np.zeros(50), np.zeros((4, 30, 30)), np.zeros((30, 30), complex)])
def test_wrong_dimensions_or_dtype(data):
    with pytest.raises(InputError, match="2-D|real-valued"):
        sliding_fft(data, 8)


def test_wrong_dims_dataarray():
    cube = xr.DataArray(np.zeros((30, 30, 5)), dims=("y", "x", "energy"))
    with pytest.raises(InputError, match="dims"):
        sliding_fft(cube, 8)
    with pytest.raises(InputError, match="dims"):
        sliding_fft(xr.DataArray(np.zeros((30, 30)), dims=("x", "y")), 8)
