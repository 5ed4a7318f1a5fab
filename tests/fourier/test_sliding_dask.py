"""Dask-backed images: the same stack as numpy, computed block by block."""

import dask
import dask.array as da
import numpy as np
import pytest

from atomine.data import image
from atomine.errors import InputError
from atomine.fourier import sliding_fft

PX = 0.05


def _pair(shape, chunks, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    data = np.cos(2 * np.pi * x / 6.5) + np.cos(2 * np.pi * y / 9) + 0.3 * rng.normal(size=shape)
    eager = image(data, pixel_size=PX, origin=(0.5, 1.5))
    return eager, eager.copy(data=da.from_array(data, chunks=chunks))


@pytest.mark.parametrize("kw", [
    dict(window=32, step=4),
    dict(window=24, step=5, edges="pad"),
    dict(window=17, step=3, output="complex"),
    dict(window=32, step=8, k_max=5.0, mask_dc=True, output="power"),
])
def test_dask_equals_numpy(kw):
    eager, lazy = _pair((150, 230), chunks=(37, 61))
    ref = sliding_fft(eager, **kw)
    out = sliding_fft(lazy, **kw, chunk_windows=40)
    assert isinstance(out.data, da.Array)
    for d in ("wy", "wx", "ky", "kx"):
        np.testing.assert_array_equal(out[d].values, ref[d].values)
    got = out.values
    tol = 1e-5 * float(np.abs(ref.values).max())
    np.testing.assert_allclose(got, ref.values, rtol=1e-5, atol=tol)
    assert got.dtype == ref.dtype


def test_dask_blocks_are_bounded():
    # Tiny chunk_windows with the 64 MiB rule: the stack must still be split into many
    # blocks when it is larger than one block's budget.
    eager, lazy = _pair((600, 600), chunks=(128, 128))
    out = sliding_fft(lazy, 32, 2)  # 285^2 windows x 32 x 17 float32 = 177 MB
    assert len(out.data.chunks[0]) * len(out.data.chunks[1]) >= 3
    block_bytes = max(out.data.chunks[0]) * max(out.data.chunks[1]) * 32 * 17 * 4
    assert block_bytes <= 80 << 20
    # The first window of the last block equals the eager transform of its own pixels.
    i, j = sum(out.data.chunks[0][:-1]), sum(out.data.chunks[1][:-1])
    got = out[i, j].values
    ref = sliding_fft(eager[2 * i:2 * i + 32, 2 * j:2 * j + 32], 32, 2)[0, 0].values
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * ref.max())
    assert np.isclose(out.wy.values[i], ref_centre(eager, 2 * i), rtol=0, atol=1e-12)
    assert np.isclose(out.wx.values[j], ref_centre(eager, 2 * j, "x"), rtol=0, atol=1e-12)


def ref_centre(img, i0, dim="y"):
    return float(img[dim].values[i0] + 15.5 * PX)


def test_dask_nan_raises_on_compute():
    data = np.random.default_rng(0).normal(size=(64, 64))
    data[40, 40] = np.nan
    lazy = da.from_array(data, chunks=32)
    out = sliding_fft(lazy, 16, 8)  # lazy: nothing read yet
    with dask.config.set(scheduler="synchronous"), pytest.raises(InputError, match="NaN"):
        out.compute()
