"""atomine.data constructors: the data conventions hold, and every bad input is a clear atomine error."""

import warnings

import dask.array as dsk
import numpy as np
import pytest
import xarray as xr

from atomine.data import (UncalibratedWarning, check_values, cits_grid, generic, image, linear_coord, signal_kind,
                          spectrum, spectrum_image)
from atomine.errors import AtomineError, CalibrationError, InputError

# ------------------------------------------------------------------------------------------ good input


def test_image_coordinates_follow_the_pixel_convention():
    da = image(np.zeros((3, 4), dtype=np.float32), (0.5, 0.25), origin=(10.0, -1.0))
    # pixel (row i, column j) is centred at offset + index * scale
    np.testing.assert_array_equal(da["y"].values, [10.0, 10.5, 11.0])
    np.testing.assert_array_equal(da["x"].values, [-1.0, -0.75, -0.5, -0.25])
    assert da.dims == ("y", "x") and da.dtype == np.float32
    assert da["x"].attrs["units"] == da["y"].attrs["units"] == "nm"
    assert set(da.attrs) == {"signal", "units", "metadata", "original_metadata", "provenance"}


def test_uncalibrated_image_is_in_pixels_with_a_warning():
    with pytest.warns(UncalibratedWarning, match="px"):
        da = image(np.ones((2, 3)))
    assert da["x"].attrs["units"] == "px"
    np.testing.assert_array_equal(da["x"].values, [0, 1, 2])


def test_spectral_constructors_and_kinds():
    si = spectrum_image(np.ones((2, 3, 4)), 0.1, energy_scale=0.5, energy_offset=100.0)
    np.testing.assert_array_equal(si["energy"].values, [100.0, 100.5, 101.0, 101.5])
    assert si["energy"].attrs["units"] == "eV" and signal_kind(si) == "spectrum_image"
    cits = cits_grid(np.ones((2, 3, 3)), 0.1, bias=[-1.0, 0.0, 1.0])
    assert cits["bias"].attrs["units"] == "V" and signal_kind(cits) == "cits" and cits.attrs["units"] == "A"
    s = spectrum(np.ones(5), energy_scale=1.0)
    assert signal_kind(s) == "spectrum"
    g = generic(np.ones((2, 3, 4)), ("frame", "y", "x"), {"frame": linear_coord(2, 1.0, 0.0, "", "frame")})
    assert signal_kind(g) == "other" and signal_kind(image(np.ones((2, 2)), 1.0)) == "image"


def test_dask_data_stay_lazy():
    lazy = dsk.ones((64, 64), chunks=32)
    da = image(lazy, 0.1)
    assert isinstance(da.data, dsk.Array)


def test_metadata_is_normalised_and_inputs_not_aliased():
    prov = [{"name": "a"}]
    da = image(np.ones((2, 2)), 0.1, metadata={"beam_energy_kv": np.float32(300), "elements": "Sr, Ti; O",
                                               "vendor": 1}, provenance=prov)
    assert da.attrs["metadata"] == {"beam_energy_kv": 300.0, "elements": ["Sr", "Ti", "O"], "extra": {"vendor": 1}}
    da.attrs["provenance"].append({"name": "b"})
    assert prov == [{"name": "a"}]  # the caller's list is not modified


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("data, match", [
    (np.ones((3, 4, 5)), "2 dimensions"),
    (np.ones(4), "2 dimensions"),
    (None, "2 dimensions"),
    (np.ones((0, 4)), "empty"),
    (np.array([["a", "b"]]), "non-numeric"),
    (np.full((2, 2), np.nan), "all values are NaN"),
    (np.array([[1.0, np.inf]]), "1 of 2 values"),
])
def test_image_rejects_unusable_data(data, match):
    with pytest.raises(InputError, match=match):
        image(data, 0.1)


@pytest.mark.parametrize("pixel_size, origin", [(0.0, None), (np.nan, None), (np.inf, None), ((0.1, 0.0), None),
                                                (0.1, (np.nan, 0.0)), (0.1, (0.0, np.inf))])
def test_image_rejects_unusable_calibration(pixel_size, origin):
    with pytest.raises(CalibrationError):
        image(np.ones((2, 2)), pixel_size, origin=origin)


@pytest.mark.parametrize("pixel_size, origin", [((0.1, 0.2, 0.3), None), ("abc", None), (0.1, (1.0,))])
def test_image_rejects_malformed_calibration_clearly(pixel_size, origin):
    with pytest.raises(AtomineError):
        image(np.ones((2, 2)), pixel_size, origin=origin)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give either the energy values or their scale"),
    ({"energy": np.arange(4.0)}, "5 channels but the energy axis has 4"),
    ({"energy_scale": 0.0}, "step is 0.0"),
    ({"energy": [1.0, 3.0, 2.0, 4.0, 5.0]}, "not strictly monotonic"),
    ({"energy": [1.0, np.nan, 2.0, 4.0, 5.0]}, "NaN"),
])
def test_spectrum_image_rejects_bad_energy_axes(kwargs, match):
    with pytest.raises(InputError, match=match):
        spectrum_image(np.ones((2, 3, 5)), 0.1, **kwargs)


def test_spectral_constructors_reject_wrong_dimensions():
    with pytest.raises(InputError, match="3 dimensions"):
        spectrum_image(np.ones((3, 4)), 0.1, energy_scale=1.0)
    with pytest.raises(InputError, match="3 dimensions"):
        cits_grid(np.ones(5), 0.1, bias_scale=0.1)
    with pytest.raises(InputError, match="give either the bias values"):
        cits_grid(np.ones((2, 2, 3)), 0.1)
    with pytest.raises(InputError, match="1 dimensions"):
        spectrum(np.ones((3, 4)), energy_scale=1.0)
    with pytest.raises(InputError, match="3 channels but the energy axis has 2"):
        spectrum(np.ones(3), energy=[1.0, 2.0])


def test_generic_checks_dims_and_values():
    with pytest.raises(InputError, match="1 dims given for 2-D data"):
        generic(np.ones((3, 4)), ("a",), {})
    with pytest.raises(InputError, match="NaN"):
        generic(np.array([np.nan]), ("a",), {})


def test_generic_rejects_coords_that_do_not_fit_clearly():
    with pytest.raises(AtomineError):
        generic(np.ones((3, 4)), ("a", "b"), {"a": xr.Variable(("a",), [1.0, 2.0])})


def test_check_values_rules():
    check_values(np.ones(3, dtype=bool))  # booleans and integers have no NaN to check
    check_values(np.arange(3))
    with pytest.raises(InputError, match="non-numeric dtype object"):
        check_values(np.array([1, None]))
    with pytest.raises(InputError, match="2..3 dimensions"):
        check_values(np.ones(3), min_ndim=2, max_ndim=3)
    with pytest.raises(InputError, match="my data: 1 of 4"):
        check_values(dsk.from_array(np.array([1.0, 2.0, np.nan, 4.0]), chunks=2), "my data")


def test_signal_kind_on_unusual_layouts():
    assert signal_kind(xr.DataArray(np.ones((2, 2)), dims=("x", "y"))) == "other"  # transposed is not an image
    assert signal_kind(xr.DataArray(np.ones((2, 2, 2)), dims=("y", "x", "component"))) == "other"


def test_no_warnings_for_calibrated_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image(np.ones((2, 2)), 0.1)
        spectrum_image(np.ones((2, 2, 2)), 0.1, energy_scale=1.0)
