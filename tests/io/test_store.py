"""atomine's store (.zarr / .nc): every signal kind round-trips with values, calibration, metadata and provenance."""

import json
import warnings

import dask.array as dsk
import numpy as np
import pytest
import xarray as xr

from atomine.data import cits_grid, image, spectrum, spectrum_image, with_step
from atomine.errors import CorruptFileError, InputError, OutputExistsError, UnsupportedFormatError
from atomine.io import load, load_all, save
from atomine.io.store import JSON_MARKER, decode_attrs, encode_attrs, open_store, read_store, save_store
from atomine.workflows import signals_dataset

STORES = ["zarr", "nc"]


def _image():
    rng = np.random.default_rng(0)
    da = image(rng.random((24, 30)).astype(np.float32), (0.0125, 0.025), origin=(0.5, -1.0), signal="HAADF",
               metadata={"beam_energy_kv": 300.0, "elements": ["Sr", "Ti"], "vendor_key": {"a": [1, 2]}},
               original_metadata={"Detector": {"name": "HAADF", "gain": 2.5, "on": True, "note": None}})
    return with_step(da, "test.make", {"seed": 0, "window_nm": [1.0, 2.0]}, "sha256:00")


def _si():
    rng = np.random.default_rng(1)
    energy = 280.0 + 0.25 * np.arange(40)
    return spectrum_image(rng.random((6, 8, 40)).astype(np.float32), 0.1, energy=energy, signal="EELS",
                          metadata={"convergence_angle_mrad": 21.4})


def _cits():
    rng = np.random.default_rng(2)
    return cits_grid(rng.normal(0.0, 1e-10, (5, 7, 21)), 0.5, bias_scale=0.1, bias_offset=-1.0, value_units="A")


def _assert_same(got: xr.DataArray, want: xr.DataArray):
    assert tuple(got.dims) == tuple(want.dims)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got.values), np.asarray(want.values))
    for d in want.dims:
        np.testing.assert_array_equal(got[d].values, want[d].values)
        assert got[d].attrs == want[d].attrs
    assert got.attrs == want.attrs


@pytest.mark.parametrize("ext", STORES)
@pytest.mark.parametrize("make", [_image, _si, _cits], ids=["image", "spectrum_image", "cits"])
def test_every_signal_kind_round_trips_exactly(tmp_path, ext, make):
    want = make()
    path = save_store(want, tmp_path / f"s.{ext}")
    (got,) = read_store(path)
    assert got.name == want.name
    _assert_same(got, want)  # attrs included: metadata, original metadata, provenance
    if make is _image:  # nested values, booleans and None survive
        assert got.attrs["original_metadata"]["Detector"] == {"name": "HAADF", "gain": 2.5, "on": True, "note": None}
        assert got.attrs["provenance"][0]["parameters"] == {"seed": 0, "window_nm": [1.0, 2.0]}


@pytest.mark.parametrize("ext", STORES)
def test_lazy_equals_eager_and_is_dask_backed(tmp_path, ext):
    want = _si()
    save_store(want, tmp_path / f"s.{ext}")
    (lazy,) = read_store(tmp_path / f"s.{ext}", lazy=True)
    (eager,) = read_store(tmp_path / f"s.{ext}", lazy=False)
    assert isinstance(lazy.data, dsk.Array) and isinstance(eager.data, np.ndarray)
    _assert_same(lazy.compute(), eager)
    _assert_same(eager, want)


@pytest.mark.parametrize("ext", STORES)
def test_several_signals_with_different_grids_restore_their_own_dims(tmp_path, ext):
    core = _si()
    low = spectrum_image(np.ones((6, 8, 12), dtype=np.float32), 0.1, energy_scale=0.1, energy_offset=-1.0,
                         name="EELS_LL")
    adf = image(np.arange(48, dtype=np.float32).reshape(6, 8), 0.1, signal="ADF")
    eds = image(np.ones((3, 4), dtype=np.float32), 0.2, signal="EDS", name="EDS_map")
    ds = signals_dataset([core, low, adf, eds])
    assert ds["EELS_LL"].dims == ("y", "x", "energy_EELS_LL")  # the store really renames them
    save(ds, tmp_path / f"all.{ext}")
    got = {str(s.name): s for s in load_all(tmp_path / f"all.{ext}")}
    assert list(got) == ["EELS", "EELS_LL", "ADF", "EDS_map"]
    for want in (core, low, adf, eds):
        g = got[str(want.name)]
        assert "atomine_dims" not in g.attrs  # the dims it described are back
        _assert_same(g, want)


def test_unnamed_array_is_stored_as_data_and_float32_kept(tmp_path):
    da = xr.DataArray(np.arange(6, dtype=np.float32).reshape(2, 3), dims=("y", "x"))
    save_store(da, tmp_path / "u.zarr")
    (got,) = read_store(tmp_path / "u.zarr")
    assert got.name == "data" and got.dtype == np.float32
    with xr.open_zarr(tmp_path / "u.zarr") as raw:  # what other tools see
        assert list(raw.data_vars) == ["data"] and raw["data"].dtype == np.float32


@pytest.mark.parametrize("ext", STORES)
def test_nan_values_complex_bool_and_labels_are_stored(tmp_path, ext):
    ds = xr.Dataset(
        {"with_nan": (("y", "x"), np.array([[1.0, np.nan], [np.inf, -2.0]], dtype=np.float32)),
         "mask": (("y", "x"), np.array([[True, False], [False, True]])),
         "phase": (("y", "x"), np.array([[0, 1], [2, 3]], dtype=np.int16)),
         "wave": (("y", "x"), np.array([[1 + 2j, 0], [3j, -1]], dtype=np.complex64)),
         "weights": (("component",), np.array([0.25, 0.75]))},
        coords={"component": ["SrTiO3", "LaMnO3"]})
    save_store(ds, tmp_path / f"m.{ext}")
    back = open_store(tmp_path / f"m.{ext}")
    for name, var in ds.data_vars.items():
        assert back[name].dtype == var.dtype, name
        np.testing.assert_array_equal(back[name].values, var.values)
    assert list(back["component"].values) == ["SrTiO3", "LaMnO3"]


def test_attrs_that_backends_cannot_hold_are_json_and_come_back():
    attrs = {"d": {"a": [1, {"b": None}]}, "flag": True, "none": None, "arr": np.array([1.5, 2.5]),
             "s": "plain", "i": np.int64(3), "f": 2.5, "tricky": JSON_MARKER + "not json, just a string",
             "big": 2**70}
    enc = encode_attrs(attrs)
    assert all(isinstance(v, (str, int, float, np.integer, np.floating)) and not isinstance(v, bool)
               for v in enc.values())
    assert enc["s"] == "plain" and enc["f"] == 2.5  # plain values stay readable by other tools
    assert json.loads(enc["d"][len(JSON_MARKER):]) == attrs["d"]
    dec = decode_attrs(enc)
    assert dec["d"] == attrs["d"] and dec["flag"] is True and dec["none"] is None
    assert dec["arr"] == [1.5, 2.5] and dec["tricky"] == attrs["tricky"]
    assert isinstance(enc["big"], str) and dec["big"] == 2**70  # wider than any HDF5 integer
    with pytest.raises(CorruptFileError, match="malformed JSON"):
        decode_attrs({"x": JSON_MARKER + "{"})


def test_dask_input_is_written_chunk_wise(tmp_path):
    data = dsk.from_array(np.random.default_rng(3).random((40, 60)).astype(np.float32), chunks=(10, (25, 35)))
    da = image(data, 0.1)
    save_store(da, tmp_path / "lazy.zarr")
    with xr.open_zarr(tmp_path / "lazy.zarr") as raw:
        # irregular dask chunks are regularised (zarr needs equal chunks) but never merged into one array
        assert raw["HAADF"].encoding["chunks"] == (10, 35)
    (got,) = read_store(tmp_path / "lazy.zarr", lazy=True)
    assert got.data.chunks == ((10, 10, 10, 10), (35, 25))
    np.testing.assert_array_equal(got.values, data.compute())


def test_input_is_not_modified(tmp_path):
    ds = signals_dataset([_si(), image(np.ones((3, 3), dtype=np.float32), 0.3, signal="ADF")])
    before = {n: dict(v.attrs) for n, v in ds.variables.items()}
    save_store(ds, tmp_path / "s.nc")
    assert {n: dict(v.attrs) for n, v in ds.variables.items()} == before
    assert isinstance(ds["EELS"].attrs["metadata"], dict)


@pytest.mark.parametrize("ext", STORES)
def test_overwrite_is_refused_then_replaces(tmp_path, ext):
    path = tmp_path / f"s.{ext}"
    save_store(_image(), path)
    with pytest.raises(OutputExistsError, match="overwrite"):
        save_store(_si(), path)
    assert load(path).dims == ("y", "x")  # untouched
    save_store(_si(), path, overwrite=True)
    assert load(path, kind="spectral").dims == ("y", "x", "energy")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"s.{ext}"]


@pytest.mark.parametrize("ext", STORES)
def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch, ext):
    method = "to_zarr" if ext == "zarr" else "to_netcdf"
    original = getattr(xr.Dataset, method)

    def write_then_fail(self, target, *args, **kwargs):
        original(self, target, *args, **kwargs)  # the temp store is complete on disk ...
        raise KeyboardInterrupt  # ... when the user interrupts

    monkeypatch.setattr(xr.Dataset, method, write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        save_store(_si(), tmp_path / f"s.{ext}")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_and_names(tmp_path):
    with pytest.raises(InputError, match="DataArray or Dataset"):
        save_store(np.ones((3, 3)), tmp_path / "a.zarr")
    with pytest.raises(InputError, match="nothing to save"):
        save_store(xr.Dataset(), tmp_path / "a.zarr")
    with pytest.raises(UnsupportedFormatError, match="atomine.io.export"):
        save_store(_image(), tmp_path / "a.h5")
    with pytest.raises(UnsupportedFormatError, match="no extension"):
        save(_image(), tmp_path / "noext")
    named_like_coord = xr.DataArray(np.ones(3), dims=("x",), coords={"x": [0.0, 1.0, 2.0]}, name="x")
    with pytest.raises(InputError, match="rename"):
        save_store(named_like_coord, tmp_path / "a.zarr")
    with pytest.raises(OutputExistsError, match="does not exist"):
        save_store(_image(), tmp_path / "missing" / "a.zarr")
    assert list(tmp_path.iterdir()) == []


def test_folder_that_is_not_a_store_and_corrupt_netcdf(tmp_path):
    folder = tmp_path / "empty.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("not zarr")
    with pytest.raises(CorruptFileError, match="Zarr"):
        read_store(folder)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01" + b"\x00" * 60)
    with pytest.raises(CorruptFileError, match="NetCDF"):
        read_store(bad)
    good = tmp_path / "good.nc"
    save_store(_si(), good)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[:4000])
    with pytest.raises(CorruptFileError):
        load_all(cut)
    with pytest.raises(CorruptFileError, match="is a file"):
        (tmp_path / "file.zarr").write_bytes(b"x")
        read_store(tmp_path / "file.zarr")


def test_recorded_dims_that_do_not_fit_are_corrupt(tmp_path):
    da = image(np.ones((3, 4), dtype=np.float32), 0.1)
    da.attrs["atomine_dims"] = ["y"]
    save_store(da, tmp_path / "d.zarr")
    with pytest.raises(CorruptFileError, match="do not fit"):
        read_store(tmp_path / "d.zarr")


def test_physical_units_are_not_decoded_as_durations(tmp_path):
    da = spectrum(np.linspace(1.0, 2.0, 5), energy_scale=1.0, value_units="seconds")
    save_store(da, tmp_path / "t.nc")
    (got,) = read_store(tmp_path / "t.nc")
    assert got.dtype == np.float64 and got.attrs["units"] == "seconds"


def test_store_readable_by_plain_xarray_without_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. zarr v3 "unstable specification" warnings
        save_store(signals_dataset([_si(), image(np.ones((6, 8), np.float32), 0.1, signal="ADF")]),
                   tmp_path / "s.zarr")
        with xr.open_zarr(tmp_path / "s.zarr") as raw:
            assert raw["EELS"].attrs["signal"] == "EELS"
            assert raw["energy"].attrs["units"] == "eV"
            assert raw["EELS"].attrs["metadata"].startswith(JSON_MARKER)


def test_netcdf_is_compressed_and_plain_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    counts = image(np.random.default_rng(5).poisson(3.0, (64, 64)).astype(np.float32), 0.1)
    save_store(counts, tmp_path / "c.nc")
    with h5py.File(tmp_path / "c.nc", "r") as f:  # any HDF5 tool sees the values and the units
        assert f["HAADF"].compression == "gzip"
        np.testing.assert_array_equal(f["HAADF"][()], counts.values)
        assert f["x"].attrs["units"] in ("nm", b"nm")
