"""Nanonis .sxm reader against files written byte by byte from the format description.

The writer samples a known surface at the tip positions in acquisition order; the tests
check that every value lands at the coordinate where it was measured (atomine's frame:
x = instrument x, y = -instrument y, row 0 at the top), and agree with nanonispy.
"""

import hashlib
import warnings

import dask.array as da
import numpy as np
import pytest

from atomine.errors import CalibrationError, CorruptFileError
from atomine.io import load, load_all
from atomine.io._nanonis_header import IncompleteDataWarning
from nanonis_writer import write_sxm
from nanonispy_compat import nanonispy_read  # noqa: F401  (fixture)


def z_surface(x, y):
    """Height in m; unique per pixel and not symmetric under any flip."""
    return 1e-12 * (7.0 * x * 1e9 + 131.0 * y * 1e9) + 2e-10 * np.sin(x * 4e8)


def current_surface(x, y):
    return 1e-10 * (1.0 + 0.01 * x * 1e9) - 3e-12 * y * 1e9


CHANNELS = [
    {"name": "Z", "unit": "m", "direction": "both", "surface": z_surface},
    {"name": "Current", "unit": "A", "direction": "both", "surface": current_surface},
]


def physical(da_):
    """Instrument (x, y) in m of every pixel of a loaded image, from its coordinates."""
    xx, yy = np.meshgrid(da_.x.values, da_.y.values)
    return xx * 1e-9, -yy * 1e-9


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("scan_dir", ["down", "up"])
def test_values_land_where_the_tip_measured_them(tmp_path, scan_dir):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, scan_dir=scan_dir, pixels=(16, 12), range_m=(20e-9, 15e-9), offset_m=(3e-9, -2e-9))
    signals = {s.name: s for s in load_all(path)}
    assert list(signals) == ["Z_fwd", "Z_bwd", "Current_fwd", "Current_bwd"]
    for name, surface, scale in (("Z_fwd", z_surface, 1e9), ("Z_bwd", z_surface, 1e9),
                                 ("Current_fwd", current_surface, 1.0), ("Current_bwd", current_surface, 1.0)):
        img = signals[name]
        x, y = physical(img)
        np.testing.assert_allclose(img.values, surface(x, y) * scale, rtol=2e-6, atol=1e-6 * np.abs(surface(x, y) * scale).max())
    # Row 0 is the top of the frame: instrument y decreases down the rows.
    assert np.all(np.diff(signals["Z_fwd"].y.values) > 0)


def test_calibration_and_units_from_header(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, pixels=(16, 12), range_m=(20e-9, 15e-9), offset_m=(3e-9, -2e-9))
    img = load(path, "Z_fwd")
    assert img.dims == ("y", "x") and img.shape == (12, 16)
    assert img.x.attrs["units"] == "nm" and img.y.attrs["units"] == "nm"
    np.testing.assert_allclose(np.diff(img.x.values), 20.0 / 16)
    np.testing.assert_allclose(np.diff(img.y.values), 15.0 / 12)
    # Pixel centres, frame centred on SCAN_OFFSET (x) and on -SCAN_OFFSET y (y = -instrument y).
    assert img.x.values.mean() == pytest.approx(3.0)
    assert img.y.values.mean() == pytest.approx(2.0)
    assert img.x.values[0] == pytest.approx(3.0 - 10.0 + 20.0 / 32)
    assert img.attrs["units"] == "nm" and img.attrs["signal"] == "STM"
    assert load(path, "Current_fwd").attrs["units"] == "A"
    assert img.dtype == np.float32


def test_metadata_normalised_and_original_kept(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, bias_v=-0.75, setpoint="2.500E-11 A", rec_date="05.03.2021", rec_time="09:08:07",
              angle_deg=12.5, comment="Au(111) herringbone", scan_time=(0.32, 0.32), pixels=(16, 12),
              extra_tags=[("Oscillation Control>Amplitude (m)", "1E-10")])
    img = load(path, "Current_bwd")
    md = img.attrs["metadata"]
    assert md["instrument"] == "Nanonis"
    assert md["bias_v"] == pytest.approx(-0.75)
    assert md["setpoint_a"] == pytest.approx(2.5e-11)
    assert md["acquisition_date"] == "2021-03-05T09:08:07"
    assert md["dwell_time_s"] == pytest.approx(0.32 / 16)
    assert md["extra"]["scan_angle_deg"] == pytest.approx(12.5)
    assert md["extra"]["comment"] == "Au(111) herringbone"
    assert md["extra"]["direction"] == "backward" and md["extra"]["channel"] == "Current"
    orig = img.attrs["original_metadata"]
    assert orig["SCAN_DIR"] == "down"
    assert orig["Oscillation Control>Amplitude (m)"] == "1E-10"
    assert [row["Name"] for row in orig["DATA_INFO"]] == ["Z", "Current"]
    assert orig["Z-CONTROLLER"][0]["Setpoint"] == "2.500E-11 A"
    prov = img.attrs["provenance"]
    assert prov[0]["name"] == "load" and prov[0]["input_hash"] == "sha256:" + sha(path)


def test_single_direction_channels_and_little_endian_type(tmp_path):
    path = tmp_path / "scan.sxm"
    chans = [{"name": "Z", "unit": "m", "direction": "forward", "surface": z_surface},
             {"name": "LI Demod 1 X", "unit": "A", "direction": "backward", "surface": current_surface}]
    write_sxm(path, chans, byteorder="<", scanit_type="FLOAT LSBFIRST")
    signals = load_all(path)
    assert [s.name for s in signals] == ["Z_fwd", "LI_Demod_1_X_bwd"]
    x, y = physical(signals[1])
    np.testing.assert_allclose(signals[1].values, current_surface(x, y), rtol=2e-6)


def test_aborted_scan_is_cropped_with_a_warning(tmp_path):
    full, cut = tmp_path / "full.sxm", tmp_path / "cut.sxm"
    for scan_dir in ("down", "up"):
        write_sxm(full, CHANNELS, scan_dir=scan_dir, pixels=(16, 12))
        write_sxm(cut, CHANNELS, scan_dir=scan_dir, pixels=(16, 12), aborted_lines=5)
        ref = load(full, "Z_bwd")
        with pytest.warns(IncompleteDataWarning, match="kept 7 of 12 lines"):
            img = load(cut, "Z_bwd")
        assert img.shape == (7, 16)
        # The kept lines are the first acquired ones, at their full-frame positions.
        expect = ref.isel(y=slice(0, 7)) if scan_dir == "down" else ref.isel(y=slice(5, 12))
        np.testing.assert_array_equal(img.values, expect.values)
        np.testing.assert_allclose(img.y.values, expect.y.values, rtol=0, atol=1e-9)


def test_all_nan_scan_is_corrupt(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, pixels=(8, 6), aborted_lines=6)
    with pytest.raises(CorruptFileError, match="no complete scan line"):
        load_all(path)


@pytest.mark.parametrize("scan_dir", ["down", "up"])
def test_lazy_equals_eager(tmp_path, scan_dir):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, scan_dir=scan_dir, aborted_lines=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDataWarning)
        eager, lazy = load_all(path), load_all(path, lazy=True)
    for e, lz in zip(eager, lazy):
        assert isinstance(lz.data, da.Array)
        assert lz.dtype == np.float32
        np.testing.assert_array_equal(lz.values, e.values)
        np.testing.assert_array_equal(lz.y.values, e.y.values)
        assert lz.name == e.name and lz.attrs["units"] == e.attrs["units"]


def _assert_one_line_corrupt(path, exc=CorruptFileError, match=None):
    before = sha(path)
    with pytest.raises(exc, match=match) as info:
        load_all(path)
    assert "\n" not in str(info.value)
    assert sha(path) == before  # the input is never modified
    return str(info.value)


def test_missing_end_marker_is_corrupt(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, end=b":SCANIT_END:\n\n\n")
    _assert_one_line_corrupt(path, match="not a Nanonis .sxm file")
    write_sxm(path, CHANNELS, end=b"\n")
    _assert_one_line_corrupt(path, match="header end marker")


def test_truncated_binary_says_expected_and_found(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, pixels=(16, 12), truncate=100)
    msg = _assert_one_line_corrupt(path, match="truncated")
    expected = 4 * 16 * 12 * 4
    assert f"{expected} bytes" in msg and f"found {expected - 100}" in msg


@pytest.mark.parametrize("tag", ["SCAN_PIXELS", "SCAN_RANGE", "DATA_INFO"])
def test_missing_geometry_or_channels_is_corrupt(tmp_path, tag):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, drop_tags=[tag])
    msg = _assert_one_line_corrupt(path)
    assert tag in msg


def test_zero_range_is_a_calibration_error(tmp_path):
    path = tmp_path / "scan.sxm"
    write_sxm(path, CHANNELS, range_m=(0.0, 15e-9))
    _assert_one_line_corrupt(path, CalibrationError, match="width")


def test_agrees_with_nanonispy(tmp_path, nanonispy_read):
    """nanonispy returns the stored order: atomine = nanonispy flipped (bwd: left-right; up: vertically), Z in nm."""
    for scan_dir in ("down", "up"):
        path = tmp_path / f"scan_{scan_dir}.sxm"
        write_sxm(path, CHANNELS, scan_dir=scan_dir, pixels=(20, 14))
        ref = nanonispy_read.Scan(str(path))
        ours = {s.name: s for s in load_all(path)}
        for ch, factor in (("Z", 1e9), ("Current", 1.0)):
            for d, suffix in (("forward", "fwd"), ("backward", "bwd")):
                theirs = np.asarray(ref.signals[ch][d], dtype=np.float32)
                if d == "backward":
                    theirs = theirs[:, ::-1]
                if scan_dir == "up":
                    theirs = theirs[::-1]
                np.testing.assert_allclose(ours[f"{ch}_{suffix}"].values, theirs * np.float32(factor), rtol=1e-6)
        assert ref.header["scan_pixels"].tolist() == [20, 14]
