"""Bare .npy/.npz files: pixel/channel axes with one warning, the constructors' value rules, never unpickled."""

import pickle
import warnings

import dask.array as dsk
import numpy as np
import pytest

from atomine.data import UncalibratedWarning, signal_kind
from atomine.errors import CorruptFileError, InputError
from atomine.io import load
from atomine.io.array_files import read_array_file


def _read(path, lazy=False):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signals = read_array_file(path, lazy)
    return signals, [w for w in caught if issubclass(w.category, UncalibratedWarning)]


def test_2d_npy_is_a_pixel_image_with_one_warning(tmp_path):
    data = np.arange(12 * 16, dtype=np.float32).reshape(12, 16)
    np.save(tmp_path / "img.npy", data)
    (da,), warned = _read(tmp_path / "img.npy")
    assert len(warned) == 1 and "no spatial calibration" in str(warned[0].message) and "px" in str(warned[0].message)
    assert signal_kind(da) == "image" and da.dtype == np.float32
    np.testing.assert_array_equal(da.values, data)
    # pixel (row i, column j) is centred at y = i, x = j
    np.testing.assert_array_equal(da["x"].values, np.arange(16))
    np.testing.assert_array_equal(da["y"].values, np.arange(12))
    assert da["x"].attrs["units"] == da["y"].attrs["units"] == "px"
    assert da.attrs["provenance"] == [] and da.attrs["metadata"] == {}


def test_3d_npy_is_y_x_channel_with_the_spectral_axis_last(tmp_path):
    data = np.random.default_rng(0).random((4, 5, 30))
    np.save(tmp_path / "si.npy", data)
    (da,), warned = _read(tmp_path / "si.npy")
    assert len(warned) == 1 and "channel" in str(warned[0].message)
    assert da.dims == ("y", "x", "energy") and signal_kind(da) == "spectrum_image"
    assert da["energy"].attrs["units"] == "channel"  # channels, not a pretend eV axis
    np.testing.assert_array_equal(da["energy"].values, np.arange(30))
    np.testing.assert_array_equal(da.values[2, 3], data[2, 3])
    with pytest.warns(UncalibratedWarning):
        assert load(tmp_path / "si.npy", kind="spectral").dims == ("y", "x", "energy")


def test_1d_npy_is_a_spectrum_in_channels(tmp_path):
    np.save(tmp_path / "s.npy", np.linspace(0.0, 1.0, 7))
    (da,), warned = _read(tmp_path / "s.npy")
    assert da.dims == ("energy",) and da["energy"].attrs["units"] == "channel" and len(warned) == 1
    assert "no calibration" in str(warned[0].message)


def test_lazy_npy_is_memory_mapped_dask(tmp_path):
    data = np.random.default_rng(1).random((64, 48)).astype(np.float32)
    np.save(tmp_path / "big.npy", data)
    (da,), _ = _read(tmp_path / "big.npy", lazy=True)
    assert isinstance(da.data, dsk.Array)
    np.testing.assert_array_equal(da.values, data)


def test_npz_prefers_data_else_every_array_by_key(tmp_path):
    np.savez(tmp_path / "d.npz", data=np.ones((3, 4)), other=np.zeros(5))
    (da,), _ = _read(tmp_path / "d.npz")
    assert da.name == "data" and da.dims == ("y", "x")
    np.savez(tmp_path / "many.npz", haadf=np.ones((3, 4)), spec=np.arange(5.0), cube=np.ones((2, 3, 4)))
    signals, warned = _read(tmp_path / "many.npz")
    assert [s.name for s in signals] == ["haadf", "spec", "cube"]
    assert [s.dims for s in signals] == [("y", "x"), ("energy",), ("y", "x", "energy")]
    assert len(warned) == 1  # one warning per file, naming both kinds of axes
    assert "px" in str(warned[0].message) and "channel" in str(warned[0].message)
    (lazy,), _ = _read(tmp_path / "d.npz", lazy=True)
    assert isinstance(lazy.data, dsk.Array)


def test_integer_bool_and_complex_arrays_load(tmp_path):
    for dtype in (np.uint16, np.int32, np.bool_, np.complex64):
        np.save(tmp_path / "a.npy", np.ones((3, 3), dtype=dtype))
        (da,), _ = _read(tmp_path / "a.npy")
        assert da.dtype == dtype


def test_nan_and_inf_follow_the_constructors(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match=r"nan\.npy: all values are NaN"):
        read_array_file(tmp_path / "nan.npy")
    some = np.ones((4, 4))
    some[1, 2] = np.inf
    np.save(tmp_path / "inf.npy", some)
    with pytest.raises(InputError, match="1 of 16 values are NaN or inf"):
        read_array_file(tmp_path / "inf.npy")


@pytest.mark.parametrize("array, match", [
    (np.ones((2, 3, 4, 5)), "4 dimensions"),
    (np.float64(3.0), "0 dimensions"),
    (np.ones((0, 5)), "empty"),
    (np.array(["a", "b"]), "non-numeric"),
    (np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), "non-numeric"),
])
def test_unusable_arrays_are_input_errors(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=match):
        read_array_file(tmp_path / "bad.npy")
    np.savez(tmp_path / "bad.npz", data=array)
    with pytest.raises(InputError, match=match):
        read_array_file(tmp_path / "bad.npz")


def test_pickles_are_never_unpickled(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("atomine tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    obj = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "obj.npy", obj, allow_pickle=True)
    with pytest.raises(CorruptFileError, match="never unpickles"):
        read_array_file(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", data=obj)
    with pytest.raises(CorruptFileError, match="never unpickles"):
        read_array_file(tmp_path / "obj.npz")
    (tmp_path / "raw.npy").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)  # a bare pickle stream
    with pytest.raises(CorruptFileError, match="not a NumPy .npy file"):
        read_array_file(tmp_path / "raw.npy")


@pytest.mark.parametrize("lazy", [False, True])
def test_corrupt_and_truncated_files(tmp_path, lazy):
    (tmp_path / "junk.npy").write_bytes(b"this is not a numpy file at all" * 4)
    with pytest.raises(CorruptFileError, match="junk.npy"):
        read_array_file(tmp_path / "junk.npy", lazy)
    np.save(tmp_path / "full.npy", np.ones((64, 64), dtype=np.float32))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:2000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_array_file(tmp_path / "cut.npy", lazy)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(CorruptFileError, match="junk.npz"):
        read_array_file(tmp_path / "junk.npz", lazy)
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(CorruptFileError, match="no arrays"):
        read_array_file(tmp_path / "empty.npz", lazy)


def test_input_file_is_not_modified(tmp_path):
    np.save(tmp_path / "img.npy", np.arange(25, dtype=np.float32).reshape(5, 5))
    before = (tmp_path / "img.npy").read_bytes()
    for lazy in (False, True):
        (da,), _ = _read(tmp_path / "img.npy", lazy)
        (da * 2).values  # using the values reads, never writes
    assert (tmp_path / "img.npy").read_bytes() == before
