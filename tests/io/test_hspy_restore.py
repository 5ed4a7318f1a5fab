"""Reading back what atomine wrote: .hspy attrs restored; (y, x, N) arrays keep N last as channels."""

import warnings

import numpy as np
import pytest

from atomine.data import UncalibratedWarning, file_hash, image, spectrum_image, with_step
from atomine.data._hs_axes import layout, parse_axes
from atomine.io import export, load


def _image():
    da = image(np.random.default_rng(0).random((12, 16)).astype(np.float32), (0.0125, 0.025), origin=(0.5, -1.0),
               signal="HAADF", metadata={"beam_energy_kv": 300.0, "probe_current_pa": 35.0, "elements": ["Sr", "Ti"],
                                         "acquisition_date": "2021-05-06T07:08:09", "vendor": {"a": 1}})
    return with_step(da, "test.make", {"seed": 0})


def test_hspy_written_by_atomine_gives_its_attrs_back(tmp_path):
    want = _image()
    path = export(want, tmp_path / "img.hspy")
    got = load(path)
    assert got.name == "HAADF" and got.attrs["signal"] == "HAADF" and got.attrs["units"] == "counts"
    assert got.attrs["metadata"] == want.attrs["metadata"]  # exactly, with no title or extras added
    assert got.attrs["provenance"][:-1] == want.attrs["provenance"]
    load_step = got.attrs["provenance"][-1]
    assert load_step["name"] == "load" and load_step["input_hash"] == file_hash(path)
    assert "atomine_attrs" not in got.attrs["original_metadata"]


def test_metadata_edited_in_hyperspy_wins(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    want = _image()
    export(want, tmp_path / "img.hspy")
    s = hs.load(tmp_path / "img.hspy")
    s.metadata.Acquisition_instrument.TEM.beam_energy = 80.0
    s.save(tmp_path / "edited.hspy")
    got = load(tmp_path / "edited.hspy")
    assert got.attrs["metadata"] == {**want.attrs["metadata"], "beam_energy_kv": 80.0}
    assert got.attrs["provenance"][:-1] == want.attrs["provenance"]


def test_lazy_spectrum_image_round_trip_keeps_attrs(tmp_path):
    want = spectrum_image(np.ones((3, 4, 8), dtype=np.float32), 0.1, energy_scale=0.5, energy_offset=280.0,
                          signal="EELS", metadata={"collection_angle_mrad": 30.0, "beam_energy_kv": 200.0})
    got = load(export(want, tmp_path / "si.hspy"), kind="spectral", lazy=True)
    assert hasattr(got.data, "dask") and got.dims == ("y", "x", "energy")
    assert got.attrs["metadata"] == want.attrs["metadata"] and got.attrs["signal"] == "EELS"


def test_tiff_with_samples_per_pixel_is_y_x_channel(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    values = np.arange(10 * 12 * 5, dtype=np.float32).reshape(10, 12, 5)  # 5 samples per pixel, stored last
    tifffile.imwrite(tmp_path / "samples.tif", values, photometric="minisblack", planarconfig="contig")
    with pytest.warns(UncalibratedWarning):
        da = load(tmp_path / "samples.tif", kind="any")
    assert da.dims == ("y", "x", "energy") and da.shape == (10, 12, 5)
    assert da.x.attrs["units"] == "px" and da.energy.attrs["units"] == "channel"
    np.testing.assert_array_equal(da.values, values)  # not transposed into a stack of 10 frames


def test_unnamed_uncalibrated_axis_after_the_image_counts_channels(tmp_path):
    def axes(third_name, third_first=False):
        spatial = [{"name": n, "size": k, "scale": 0.1, "offset": 0.0, "units": "nm"} for n, k in (("y", 3), ("x", 4))]
        third = {"name": third_name, "size": 9, "scale": 1.0, "offset": 0.0, "units": None}
        return [third] + spatial if third_first else spatial + [third]

    lay = layout(parse_axes(axes(None), (3, 4, 9)))
    assert lay.dims == ("y", "x", "energy") and lay.order == (0, 1, 2) and lay.axes[2].units == "channel"
    assert layout(parse_axes(axes("sample"), (3, 4, 9))).dims == ("y", "x", "energy")
    # A unitless axis before the image is a frame axis (HyperSpy, TIFF and MRC stacks store frames first).
    stack = layout(parse_axes(axes(None, third_first=True), (9, 3, 4)))
    assert stack.dims == ("frame", "y", "x") and stack.order == (0, 1, 2)


def test_hspy_without_navigation_hints_keeps_a_trailing_channel_axis_last(tmp_path):
    rsciio_hspy = pytest.importorskip("rsciio.hspy")
    values = np.random.default_rng(1).random((3, 4, 6)).astype(np.float32)
    axes = [{"name": "y", "size": 3, "scale": 0.2, "offset": 0.0, "units": "nm", "navigate": True},
            {"name": "x", "size": 4, "scale": 0.2, "offset": 0.0, "units": "nm", "navigate": True},
            {"name": "", "size": 6, "scale": 1.0, "offset": 0.0, "units": "", "navigate": True}]
    sig = {"data": values, "axes": axes, "metadata": {"General": {"title": "labels"}, "Signal": {}},
           "original_metadata": {}, "attributes": {"_lazy": False},
           "tmp_parameters": {}, "learning_results": {}, "models": {}, "package_info": {}}
    rsciio_hspy.file_writer(str(tmp_path / "labels.hspy"), sig, show_progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedWarning)
        da = load(tmp_path / "labels.hspy", kind="any")
    assert da.dims == ("y", "x", "energy") and da.energy.attrs["units"] == "channel"
    np.testing.assert_array_equal(da.values, values)
    np.testing.assert_allclose(da.x.values, 0.2 * np.arange(4))
