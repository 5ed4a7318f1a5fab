"""export: each format read back through atomine.io.load (and independent readers) keeps values and calibration."""

import warnings

import dask.array as dsk
import numpy as np
import pytest
import xarray as xr

from atomine.data import UncalibratedWarning, image, spectrum_image, with_step
from atomine.errors import InputError, MissingDependencyError, OutputExistsError, UnsupportedFormatError
from atomine.io import export, load, writable_formats
from atomine.io.export import WRITERS, CalibrationDroppedWarning


def _image(dtype=np.float32):
    rng = np.random.default_rng(0)
    da = image((rng.random((24, 30)) * 1000).astype(dtype), (0.0125, 0.025), origin=(0.5, -1.0), signal="HAADF",
               metadata={"beam_energy_kv": 300.0, "convergence_angle_mrad": 21.0, "elements": ["Sr", "Ti"]})
    return with_step(da, "test.make", {"seed": 0})


def _si(uniform=True):
    rng = np.random.default_rng(1)
    # a non-uniform axis is what e.g. an energy-drift-corrected spectrum image carries
    energy = 280.0 + 0.25 * np.arange(40) if uniform else 280.0 + 0.25 * np.arange(40) ** 1.05
    return spectrum_image(rng.random((6, 8, 40)).astype(np.float32), 0.1, energy=energy, signal="EELS",
                          metadata={"beam_energy_kv": 200.0})


def _load(path, kind="any"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedWarning)
        return load(path, kind=kind)


def _assert_calibration(got, want, rtol=1e-12):
    assert tuple(got.dims) == tuple(want.dims)
    for d in want.dims:
        np.testing.assert_allclose(got[d].values, want[d].values, rtol=rtol, atol=1e-12)
        assert got[d].attrs.get("units") == want[d].attrs.get("units"), d


@pytest.mark.parametrize("ext", [".zarr", ".nc", ".hspy", ".tif", ".tiff", ".npz"])
def test_image_round_trips_values_and_calibration(tmp_path, ext):
    want = _image()
    path = export(want, tmp_path / f"img{ext}")
    got = _load(path)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(got.values), want.values)
    _assert_calibration(got, want)
    if ext in (".zarr", ".nc", ".npz"):  # atomine's own formats keep every attr exactly
        assert got.attrs == want.attrs
    if ext == ".hspy":  # the HyperSpy metadata tree carries the normalised keys back
        assert got.attrs["metadata"]["beam_energy_kv"] == 300.0
        assert got.attrs["metadata"]["elements"] == ["Sr", "Ti"]
        assert got.attrs["signal"] == "HAADF"


@pytest.mark.parametrize("ext", [".zarr", ".nc", ".hspy", ".npz"])
@pytest.mark.parametrize("uniform", [True, False], ids=["linear-energy", "explicit-energy"])
def test_spectrum_image_round_trips(tmp_path, ext, uniform):
    want = _si(uniform)
    got = _load(export(want, tmp_path / f"si{ext}"), kind="spectral")
    np.testing.assert_array_equal(np.asarray(got.values), want.values)
    _assert_calibration(got, want, rtol=1e-9)
    assert got.attrs["signal"] == "EELS"


def test_hspy_is_read_by_hyperspy_itself(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    want = _si(uniform=True)
    export(want, tmp_path / "si.hspy")
    s = hs.load(tmp_path / "si.hspy")
    nav = s.axes_manager.navigation_axes
    sig = s.axes_manager.signal_axes
    assert [a.name for a in nav] == ["x", "y"] and [a.name for a in sig] == ["energy"]  # HyperSpy lists nav x first
    assert sig[0].units == "eV" and sig[0].scale == pytest.approx(0.25) and sig[0].offset == pytest.approx(280.0)
    assert nav[0].units == "nm" and nav[0].scale == pytest.approx(0.1)
    assert s.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    np.testing.assert_array_equal(s.data, want.values)
    from atomine.data import from_hyperspy

    back = from_hyperspy(s)  # atomine's attrs travel in original_metadata.atomine_attrs
    assert back.name == "EELS" and back.attrs["signal"] == "EELS"
    assert back.attrs["metadata"]["beam_energy_kv"] == 200.0
    assert back.attrs["provenance"][:-1] == want.attrs["provenance"]  # plus the from_hyperspy step
    _assert_calibration(back, want)


def test_tiff_calibration_is_in_imagej_and_resolution_tags(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    want = _image(np.float64)
    export(want, tmp_path / "img.tif")
    with tifffile.TiffFile(tmp_path / "img.tif") as tif:
        page = tif.pages[0]
        assert page.dtype == np.float32  # ImageJ holds float32, not float64
        assert tif.imagej_metadata["unit"] == "nm"
        num, den = page.tags["XResolution"].value
        assert den / num == pytest.approx(0.025)  # pixels per unit -> nm per pixel
        num, den = page.tags["YResolution"].value
        assert den / num == pytest.approx(0.0125)
        np.testing.assert_allclose(page.asarray(), want.values.astype(np.float32))


def test_tiff_keeps_uint16_and_refuses_cubes_and_complex(tmp_path):
    counts = _image(np.uint16)
    export(counts, tmp_path / "c.tif")
    got = _load(tmp_path / "c.tif")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got.values, counts.values)
    with pytest.raises(InputError, match="2-D image"):
        export(_si(), tmp_path / "si.tif")
    with pytest.raises(InputError, match="complex"):
        export(image(np.ones((4, 4), dtype=np.complex64), 0.1), tmp_path / "z.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif"]


def test_uncalibrated_image_stays_uncalibrated_in_tiff_and_hspy(tmp_path):
    with pytest.warns(UncalibratedWarning):
        raw = image(np.arange(20, dtype=np.float32).reshape(4, 5))
    for ext in (".tif", ".hspy"):
        export(raw, tmp_path / f"raw{ext}")
        with pytest.warns(UncalibratedWarning):
            got = load(tmp_path / f"raw{ext}")
        assert got["x"].attrs["units"] == "px"
        np.testing.assert_array_equal(got["x"].values, np.arange(5))


def test_npy_holds_values_only_and_says_so(tmp_path):
    want = _si()
    with pytest.warns(CalibrationDroppedWarning, match="y, x, energy"):
        export(want, tmp_path / "v.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), want.values)
    got = _load(tmp_path / "v.npy", kind="spectral")
    assert got["energy"].attrs["units"] == "channel" and got["x"].attrs["units"] == "px"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationDroppedWarning)  # nothing to drop: no warning
        export(got, tmp_path / "again.npy")


def test_dask_signal_is_exported_chunk_wise_to_npy_and_hspy(tmp_path):
    values = np.random.default_rng(2).random((32, 48)).astype(np.float32)
    lazy = image(dsk.from_array(values, chunks=(8, 16)), 0.05)
    with pytest.warns(CalibrationDroppedWarning):
        export(lazy, tmp_path / "l.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), values)
    export(lazy, tmp_path / "l.hspy")
    np.testing.assert_array_equal(_load(tmp_path / "l.hspy").values, values)


def test_npz_keeps_labels_and_all_attrs(tmp_path):
    comp = xr.DataArray(np.random.default_rng(3).random((2, 4, 5)), dims=("component", "y", "x"),
                        coords={"component": ["SrTiO3", "LaMnO3"], "y": xr.Variable("y", np.arange(4) * 0.2, {"units": "nm"}),
                                "x": xr.Variable("x", np.arange(5) * 0.2, {"units": "nm"})},
                        name="abundance", attrs={"signal": "abundance", "units": "", "metadata": {"extra": {"a": 1}},
                                                 "original_metadata": {}, "provenance": []})
    export(comp, tmp_path / "a.npz")
    got = _load(tmp_path / "a.npz")
    assert got.dims == comp.dims and list(got["component"].values) == ["SrTiO3", "LaMnO3"]
    assert got.attrs == comp.attrs  # metadata["extra"] is not nested again
    np.testing.assert_array_equal(got.values, comp.values)


def test_hspy_writes_label_axes_as_indices(tmp_path):
    rgba = xr.DataArray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), dims=("y", "x", "channel"),
                        coords={"channel": list("RGBA"), "y": xr.Variable("y", [0.0, 0.5], {"units": "nm"}),
                                "x": xr.Variable("x", [0.0, 0.5, 1.0], {"units": "nm"})}, name="colour")
    export(rgba, tmp_path / "c.hspy")
    from rsciio.hspy import file_reader

    (raw,) = file_reader(str(tmp_path / "c.hspy"))  # the file itself, before atomine's reader interprets it
    assert [(a["name"], a["navigate"]) for a in raw["axes"]] == [("y", True), ("x", True), ("channel", False)]
    assert raw["axes"][2]["scale"] == 1.0 and raw["axes"][2]["offset"] == 0.0 and raw["axes"][0]["scale"] == 0.5
    np.testing.assert_array_equal(raw["data"], rgba.values)


def test_uncalibrated_spectrum_image_stays_spectral_through_hspy(tmp_path):
    np.save(tmp_path / "si.npy", np.random.default_rng(4).random((3, 4, 6)))
    si = _load(tmp_path / "si.npy")
    export(si, tmp_path / "si.hspy")
    with pytest.warns(UncalibratedWarning):
        got = load(tmp_path / "si.hspy", kind="spectral")
    _assert_calibration(got, si)  # px / channel axes come back as px / channel
    np.testing.assert_array_equal(got.values, si.values)


def test_zspy_needs_zarr_2_or_round_trips(tmp_path):
    import zarr

    want = _image()
    if int(zarr.__version__.split(".")[0]) >= 3:
        with pytest.raises(MissingDependencyError, match="zarr-python 2"):
            export(want, tmp_path / "img.zspy")
        assert list(tmp_path.iterdir()) == []
    else:
        got = _load(export(want, tmp_path / "img.zspy"))
        np.testing.assert_array_equal(got.values, want.values)
        _assert_calibration(got, want)


def test_unsupported_and_wrong_inputs(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"\.hspy.*\.npz.*\.tif"):
        export(_image(), tmp_path / "img.dm3")
    with pytest.raises(UnsupportedFormatError, match="no extension"):
        export(_image(), tmp_path / "img")
    with pytest.raises(InputError, match="DataArray"):
        export(xr.Dataset({"a": _image()}), tmp_path / "img.hspy")
    with pytest.raises(InputError, match="DataArray"):
        export(np.ones((3, 3)), tmp_path / "img.npy")
    with pytest.raises(InputError, match="evenly spaced"):
        export(_si(uniform=False).isel(y=0), tmp_path / "line.tif")
    assert list(tmp_path.iterdir()) == []
    assert set(writable_formats()) == {".zarr", ".nc", ".hspy", ".zspy", ".tif", ".tiff", ".npy", ".npz"}


@pytest.mark.parametrize("ext", [".hspy", ".tif", ".npy", ".npz"])
def test_writes_are_atomic_and_overwrite_is_explicit(tmp_path, monkeypatch, ext):
    path = tmp_path / f"img{ext}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationDroppedWarning)
        export(_image(), path)
        before = path.read_bytes()
        with pytest.raises(OutputExistsError, match="overwrite"):
            export(_image(), path)
        description, check, writer, folder = WRITERS[ext]

        def half_then_fail(da, tmp):
            writer(da, tmp)
            raise KeyboardInterrupt

        monkeypatch.setitem(WRITERS, ext, (description, check, half_then_fail, folder))
        with pytest.raises(KeyboardInterrupt):
            export(_image() * 2, path, overwrite=True)
    assert path.read_bytes() == before  # the old file is intact and no temp file is left
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
