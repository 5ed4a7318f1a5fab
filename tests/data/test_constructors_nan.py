"""NaN policy of the constructors: refused by default, unmeasured points accepted from readers, all-NaN never."""

import numpy as np
import pytest
import dask.array as da

from atomine.data import cits_grid, generic, image, linear_coord, spectrum, spectrum_image
from atomine.errors import InputError


def _partial(shape):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    a[-1] = np.nan  # the last row was never measured
    return a


@pytest.mark.parametrize("make, shape", [
    (lambda d, **k: image(d, 0.1, **k), (4, 5)),
    (lambda d, **k: spectrum_image(d, 0.1, energy_scale=1.0, **k), (4, 5, 3)),
    (lambda d, **k: cits_grid(d, 0.1, bias_scale=0.01, **k), (4, 5, 3)),
    (lambda d, **k: spectrum(d, energy_scale=1.0, **k), (6,)),
    (lambda d, **k: generic(d, ("t",), {"t": linear_coord(d.shape[0], 1.0, 0.0, "s", "t")}, **k), (6,)),
])
def test_nan_is_refused_unless_allowed_and_all_nan_always(make, shape):
    data = _partial(shape)
    with pytest.raises(InputError, match="NaN or inf"):
        make(data)
    out = make(data, allow_nan=True)
    np.testing.assert_array_equal(out.values, data)  # NaN kept where they were, nothing filled in
    with pytest.raises(InputError, match="all values are NaN"):
        make(np.full(shape, np.nan, np.float32), allow_nan=True)


def test_lazy_partial_data_keep_their_nan_lazily():
    data = da.from_array(_partial((8, 6)), chunks=4)
    out = image(data, 0.1, allow_nan=True)
    assert isinstance(out.data, da.Array)
    assert int(np.isnan(out.values).sum()) == 6
