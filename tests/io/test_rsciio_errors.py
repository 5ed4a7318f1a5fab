"""Damaged and misnamed EM files give one clear line (CorruptFileError, MissingDependencyError,
CalibrationError) through ``atomine.io.load``, and the input file is left untouched."""

import hashlib
import shutil
import sys

import numpy as np
import pytest

from atomine.errors import CalibrationError, CorruptFileError, MissingDependencyError, UnsupportedFormatError
from atomine.io import load, load_all
from atomine.data._hs_axes import classify, layout, parse_axes
from atomine.io.rsciio_reader import read_rsciio


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line_error(exc_type, path, *words, lazy=False):
    """The error names the file, is one line, and the file's bytes are unchanged."""
    before = digest(path)
    with pytest.raises(exc_type) as info:
        load_all(path, lazy=lazy)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert path.name in message
    for word in words:
        assert word.lower() in message.lower(), message
    assert digest(path) == before
    return message


# ---------------------------------------------------------------- damaged real files


@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_dm3_is_corrupt(hyperspy_io, tmp_path, lazy):
    src = (hyperspy_io / "dm3_2D_data" / "test_STEM_image.dm3").read_bytes()
    path = tmp_path / "half.dm3"
    path.write_bytes(src[: len(src) // 2])
    assert_one_line_error(CorruptFileError, path, "DM3", "truncated", lazy=lazy)


def test_text_file_named_dm3_is_corrupt(tmp_path):
    path = tmp_path / "notes.dm3"
    path.write_text("this is a lab note, not a Gatan file\n")
    assert_one_line_error(CorruptFileError, path, "DM3", "header")


def test_empty_emd_is_corrupt(tmp_path):
    path = tmp_path / "empty.emd"
    path.write_bytes(b"")
    assert_one_line_error(CorruptFileError, path, "empty")
    with pytest.raises(CorruptFileError, match="empty"):
        read_rsciio(str(path), False)  # the reader alone says so too


def test_text_file_named_emd_is_corrupt(tmp_path):
    path = tmp_path / "fake.emd"
    path.write_text("hello")
    assert_one_line_error(CorruptFileError, path, "EMD", "HDF5")


def test_truncated_velox_emd_is_corrupt(velox_dir, tmp_path):
    src = (velox_dir / "fei_emd_si.emd").read_bytes()
    path = tmp_path / "cut.emd"
    path.write_bytes(src[: len(src) // 3])
    assert_one_line_error(CorruptFileError, path, "truncated")


def test_text_file_named_tif_is_corrupt(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_text("not an image")
    assert_one_line_error(CorruptFileError, path, "TIFF")


def test_msa_without_data_is_corrupt(tmp_path):
    path = tmp_path / "nothing.msa"
    path.write_text("#FORMAT : EMSA/MAS Spectral Data File\n#VERSION : 1.0\n")
    assert_one_line_error(CorruptFileError, path, "empty")


def test_emi_without_its_ser_files_says_so(hyperspy_io, tmp_path):
    path = tmp_path / "lonely.emi"
    shutil.copy(hyperspy_io / "FEI_old" / "16x16-spectrum_image-5x5x1024.emi", path)
    assert_one_line_error(CorruptFileError, path, ".ser")


def test_velox_spectrum_image_without_sparse_asks_for_it(velox_dir, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sparse" else real_find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "sparse", None)
    path = velox_dir / "fei_emd_si.emd"
    msg = assert_one_line_error(MissingDependencyError, path, "sparse", "pip install")
    assert "sparse" in msg


def test_zspy_with_zarr3_asks_for_zarr2(tmp_path):
    zarr = pytest.importorskip("zarr")
    if int(zarr.__version__.split(".")[0]) < 3:
        pytest.skip("zarr 2 installed: rosettasciio reads .zspy")
    path = tmp_path / "store.zspy"
    path.mkdir()
    (path / "junk").write_text("x")
    # Called directly: atomine.io.load_all refuses folders other than .zarr (reported to the lead).
    with pytest.raises(MissingDependencyError, match="zarr"):
        read_rsciio(str(path), False)


# ---------------------------------------------------------------- unusable calibration in a real HDF5 file


def _hspy_with_scale(tmp_path, scale):
    h5py = pytest.importorskip("h5py")
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal2D(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    for axis in s.axes_manager._axes:
        axis.scale, axis.units = 0.5, "nm"
    path = tmp_path / "image.hspy"
    s.save(path)
    with h5py.File(path, "r+") as f:  # damage the stored calibration of the x axis
        f["Experiments/__unnamed__/axis-1"].attrs["scale"] = scale
    return path


@pytest.mark.parametrize("scale", [0.0, float("nan")])
def test_zero_or_nan_scale_is_a_calibration_error(tmp_path, scale):
    path = _hspy_with_scale(tmp_path, scale)
    before = digest(path)
    with pytest.raises(CalibrationError, match="finite and non-zero"):
        load(path)
    assert digest(path) == before


def test_object_only_file_is_unsupported(hyperspy_io):
    with pytest.warns(UserWarning, match="Python objects"), pytest.raises(UnsupportedFormatError, match="numeric"):
        load_all(hyperspy_io / "emd_files" / "example_object_dtype_data.emd")


# ---------------------------------------------------------------- axis rules (no files needed)


@pytest.mark.parametrize("units,role,unit,factor", [
    ("nm", "length", "nm", 1.0), ("µm", "length", "nm", 1e3), ("um", "length", "nm", 1e3), ("Å", "length", "nm", 0.1),
    ("pm", "length", "nm", 1e-3), ("m", "length", "nm", 1e9), ("1 / nm", "reciprocal", "1/nm", 1.0),
    ("1/µm", "reciprocal", "1/nm", 1e-3), ("1/Å", "reciprocal", "1/nm", 10.0), ("keV", "energy", "eV", 1e3),
    ("eV", "energy", "eV", 1.0), ("<undefined>", "none", "px", 1.0), ("", "none", "px", 1.0), (None, "none", "px", 1.0),
    ("[]", "none", "px", 1.0), ("ms", "time", "s", 1e-3), ("mrad", "angle", "mrad", 1.0), ("mV", "bias", "V", 1e-3),
    ("channel", "channel", "channel", 1.0), ("furlong", "other", "furlong", 1.0),
])
def test_unit_classification(units, role, unit, factor):
    got = classify("axis", units)
    assert got[:2] == (role, unit) and got[2] == pytest.approx(factor)


def test_energy_axis_first_in_file_is_moved_last():
    axes = parse_axes([{"name": "Energy loss", "size": 7, "scale": 0.5, "offset": 100, "units": "eV", "navigate": True},
                       {"name": "y", "size": 3, "scale": 2, "offset": 0, "units": "Å", "navigate": False},
                       {"name": "x", "size": 4, "scale": 2, "offset": 0, "units": "Å", "navigate": False}], (7, 3, 4))
    lay = layout(axes)
    assert lay.kind == "spectrum_image" and lay.dims == ("y", "x", "energy") and lay.order == (1, 2, 0)
    assert lay.axes[0].scale == pytest.approx(0.2)


def test_unitless_axis_known_to_be_spectral_counts_channels():
    axes = [{"name": n, "size": k, "scale": 1.0, "units": "<undefined>"} for n, k in (("y", 3), ("x", 4), ("E", 9))]
    assert layout(parse_axes(axes, (3, 4, 9))).dims == ("frame", "y", "x")  # no hint: an image series
    lay = layout(parse_axes(axes, (3, 4, 9)), spectral=2)
    assert lay.dims == ("y", "x", "energy") and lay.axes[2].units == "channel"


def test_size_one_axes_are_dropped():
    axes = parse_axes([{"size": 1, "units": "nm", "scale": 1.0}, {"name": "Energy", "size": 9, "scale": 0.1, "units": "eV"}], (1, 9))
    lay = layout(axes)
    assert lay.kind == "spectrum" and lay.drop == [0]


def test_wrong_axis_count_is_corrupt():
    with pytest.raises(CorruptFileError):
        parse_axes([{"size": 3, "units": "nm"}], (3, 4))
