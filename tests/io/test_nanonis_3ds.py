"""Nanonis .3ds reader against grids written byte by byte from the format description.

Each channel is a known function of the tip position (x, y in m) and the bias, so the
tests check that every spectrum lands at the right pixel and every sample at its bias.
"""

import hashlib
import warnings

import dask.array as da
import numpy as np
import pytest

from atomine.errors import CorruptFileError
from atomine.io import load, load_all
from atomine.io._nanonis_header import IncompleteDataWarning, NanonisWarning
from nanonis_writer import write_3ds
from nanonispy_compat import nanonispy_read  # noqa: F401  (fixture)


def current(x, y, v):
    """I(V) in A that depends on position asymmetrically in x and y."""
    return 1e-10 * v * (1.0 + 0.05 * x * 1e9) + 2e-12 * y * 1e9 * v**2


def didv(x, y, v):
    return 1e-12 * (1.0 + v**2) * (3.0 + 0.1 * x * 1e9 - 0.2 * y * 1e9)


def z_surface(x, y):
    return 1e-10 * (0.3 * x * 1e9 + 0.7 * y * 1e9)


CHANNELS = [("Current (A)", current), ("LI Demod 1 X (A)", didv)]


def expected(cube, fn):
    """fn evaluated at the loaded grid's coordinates (atomine y = -instrument y)."""
    xx, yy = np.meshgrid(cube.x.values * 1e-9, -cube.y.values * 1e-9)
    return fn(xx[..., None], yy[..., None], cube.bias.values[None, None, :])


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("rows,spacing", [("bottom-first", "centre"), ("top-first", "edge"), ("bottom-first", "edge")])
def test_spectra_land_at_their_position_and_bias(tmp_path, rows, spacing):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, dim=(8, 6), points=21, rows=rows, spacing=spacing, z_surface=z_surface)
    signals = {s.name: s for s in load_all(path)}
    assert list(signals) == ["Current", "LI_Demod_1_X", "Z"]
    for name, fn in (("Current", current), ("LI_Demod_1_X", didv)):
        cube = signals[name]
        assert cube.dims == ("y", "x", "bias") and cube.shape == (6, 8, 21)
        want = expected(cube, fn)
        np.testing.assert_allclose(cube.values, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    z = signals["Z"]
    xx, yy = np.meshgrid(z.x.values * 1e-9, -z.y.values * 1e-9)
    np.testing.assert_allclose(z.values, z_surface(xx, yy) * 1e9, rtol=1e-5)
    orient = z.attrs["metadata"]["extra"]["grid_orientation"]
    assert orient["first_stored_row"] == ("bottom" if rows == "bottom-first" else "top")
    assert orient["points_on_frame_edge"] == [spacing == "edge"] * 2


def test_calibration_units_and_metadata(tmp_path):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, dim=(8, 6), centre_m=(2e-9, -1e-9), size_m=(16e-9, 12e-9), points=21, sweep=(-1.0, 1.0))
    cube = load(path, "Current", kind="spectral")
    np.testing.assert_allclose(cube.bias.values, np.linspace(-1, 1, 21))
    assert cube.bias.attrs["units"] == "V" and cube.x.attrs["units"] == "nm"
    np.testing.assert_allclose(np.diff(cube.x.values), 2.0)
    np.testing.assert_allclose(np.diff(cube.y.values), 2.0)
    assert cube.x.values.mean() == pytest.approx(2.0) and cube.y.values.mean() == pytest.approx(1.0)
    assert cube.attrs["units"] == "A" and cube.attrs["signal"] == "CITS"
    assert load(path, "Z").attrs["units"] == "nm"
    md = cube.attrs["metadata"]
    assert md["instrument"] == "Nanonis" and md["operator"] == "alice"
    assert md["acquisition_date"] == "2017-02-27T16:44:06"
    assert md["bias_v"] == pytest.approx(-0.5) and md["setpoint_a"] == pytest.approx(1e-10)
    assert md["extra"]["comment"] == "grid over a step edge"
    orig = cube.attrs["original_metadata"]
    assert orig["header"]["Channels"] == "Current (A);LI Demod 1 X (A)"
    assert orig["parameters"]["Settling time (s)"]["mean"] == pytest.approx(1e-3)
    assert orig["parameters"]["X (m)"]["min"] == pytest.approx(2e-9 - 8e-9 + 1e-9)
    assert cube.attrs["provenance"][0]["input_hash"] == "sha256:" + sha(path)


def test_downward_sweep_is_reversed_to_ascending_bias(tmp_path):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, points=17, sweep=(0.8, -0.8))
    cube = load(path, "Current", kind="spectral")
    np.testing.assert_allclose(cube.bias.values, np.linspace(-0.8, 0.8, 17))
    np.testing.assert_allclose(cube.values, expected(cube, current), rtol=1e-5, atol=1e-18)


def test_sweep_range_differing_between_points_warns_and_uses_the_first(tmp_path):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, point_sweep=lambda k: (-1.0, 1.0 if k < 5 else 1.2))
    with pytest.warns(NanonisWarning, match="differs between grid points"):
        cube = load(path, "Current", kind="spectral")
    assert cube.bias.values[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("lazy", [False, True])
def test_unmeasured_points_are_nan_with_a_count(tmp_path, lazy):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, dim=(8, 6), nan_points=[45, 46, 47])
    with pytest.warns(IncompleteDataWarning, match="3 of 48 points"):
        cube = load(path, "Current", kind="spectral", lazy=lazy)
    # Stored points 45..47 are the last three of the top row (first row at the bottom).
    values = np.asarray(cube.values)
    assert np.isnan(values[0, 5:]).all() and np.isfinite(values[1:]).all() and np.isfinite(values[0, :5]).all()


@pytest.mark.parametrize("lazy", [False, True])
def test_aborted_grid_ending_after_a_point_loads_padded(tmp_path, lazy):
    full, cut = tmp_path / "full.3ds", tmp_path / "cut.3ds"
    write_3ds(full, CHANNELS, dim=(8, 6))
    write_3ds(cut, CHANNELS, dim=(8, 6), n_written=19)
    with pytest.warns(IncompleteDataWarning, match="29 of 48 points"):
        cube = load(cut, "Current", kind="spectral", lazy=lazy)
    ref = load(full, "Current", kind="spectral")
    values = np.asarray(cube.values)
    # Measured: stored rows 0, 1 and 3 points of row 2 = display rows 5, 4 and row 3 left part.
    np.testing.assert_array_equal(values[4:], ref.values[4:])
    np.testing.assert_array_equal(values[3, :3], ref.values[3, :3])
    assert np.isnan(values[3, 3:]).all() and np.isnan(values[:3]).all()


@pytest.mark.parametrize("sweep", [(-1.0, 1.0), (1.0, -1.0)])
def test_lazy_equals_eager(tmp_path, sweep):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, dim=(7, 5), sweep=sweep, rows="top-first")
    eager, lazy = load_all(path), load_all(path, lazy=True)
    for e, lz in zip(eager, lazy):
        if e.ndim == 3:
            assert isinstance(lz.data, da.Array)
        np.testing.assert_array_equal(np.asarray(lz.values), e.values)
        for d in e.dims:
            np.testing.assert_array_equal(lz[d].values, e[d].values)


def test_non_bias_sweep_keeps_its_unit(tmp_path):
    path = tmp_path / "grid.3ds"
    write_3ds(path, [("Current (A)", lambda x, y, z: 1e-9 * np.exp(-z * 1e10) + 0 * x)],
              sweep=(0.0, 2e-10), sweep_signal="Z (m)", points=11)
    cube = load(path, "Current", kind="any")
    assert cube.dims == ("y", "x", "sweep") and cube.sweep.attrs["units"] == "nm"
    np.testing.assert_allclose(cube.sweep.values, np.linspace(0, 0.2, 11))


def _assert_one_line_corrupt(path, match=None):
    before = sha(path)
    with pytest.raises(CorruptFileError, match=match) as info:
        load_all(path)
    assert "\n" not in str(info.value)
    assert sha(path) == before
    return str(info.value)


@pytest.mark.parametrize("cut", [1, 10, 1000])
def test_truncated_inside_a_point_says_expected_and_found(tmp_path, cut):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, dim=(8, 6), points=21, truncate=cut)
    per_point = (10 + 2 * 21) * 4
    msg = _assert_one_line_corrupt(path, match="truncated")
    assert f"{48 * per_point} bytes" in msg and f"found {48 * per_point - cut}" in msg


@pytest.mark.parametrize("key", ["Grid dim", "Points", "Channels"])
def test_missing_header_key_is_named(tmp_path, key):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, drop_keys=[key])
    assert repr(key) in _assert_one_line_corrupt(path)


@pytest.mark.parametrize("key,value", [("Points", "twenty"), ("Grid dim", '"8 by 6"'), ("Grid settings", "0;0;abc;1E-8;0"),
                                       ("# Parameters (4 byte)", "ten"), ("Experiment size (bytes)", "12")])
def test_malformed_header_value_is_named(tmp_path, key, value):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, override={key: value})
    assert key in _assert_one_line_corrupt(path)


def test_missing_end_marker_is_corrupt(tmp_path):
    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS)
    raw = path.read_bytes().replace(b":HEADER_END:", b":HEADER_XXX:")
    path.write_bytes(raw)
    _assert_one_line_corrupt(path, match="not a Nanonis .3ds file")


def test_agrees_with_nanonispy(tmp_path, nanonispy_read):
    """nanonispy returns stored order (first row at the bottom): atomine = nanonispy[::-1] (+ bias reversal)."""
    for sweep in ((-1.0, 1.0), (1.0, -1.0)):
        path = tmp_path / "grid.3ds"
        write_3ds(path, CHANNELS, dim=(9, 7), points=15, sweep=sweep, z_surface=z_surface)
        ref = nanonispy_read.Grid(str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a complete, consistent grid loads silently
            ours = {s.name: s for s in load_all(path)}
        for label, name in (("Current (A)", "Current"), ("LI Demod 1 X (A)", "LI_Demod_1_X")):
            theirs = np.asarray(ref.signals[label])[::-1]
            if sweep[0] > sweep[1]:
                theirs = theirs[:, :, ::-1]
            np.testing.assert_array_equal(ours[name].values, theirs)
        bias = np.asarray(ref.signals["sweep_signal"], dtype=np.float64)
        np.testing.assert_allclose(ours["Current"].bias.values, np.sort(bias), atol=1e-6)
        np.testing.assert_allclose(ours["Z"].values, np.asarray(ref.signals["topo"])[::-1] * np.float32(1e9), rtol=1e-6)


def test_rotated_top_first_grid_orientation_from_positions(tmp_path):
    path = tmp_path / "grid.3ds"
    values, _ = write_3ds(path, CHANNELS, dim=(6, 5), points=9, angle_deg=30.0, rows="top-first", spacing="edge")
    cube = load(path, "Current", kind="spectral")
    orient = cube.attrs["metadata"]["extra"]["grid_orientation"]
    assert orient == {"first_stored_row": "top", "points_on_frame_edge": [True, True], "source": "per-point X/Y parameters"}
    # Top-first storage is already display order: stored point k = (row k // 6, column k % 6).
    np.testing.assert_array_equal(cube.values, values[:, 0].reshape(5, 6, 9))
    assert cube.attrs["metadata"]["extra"]["grid_angle_deg"] == pytest.approx(30.0)


def test_without_positions_the_first_row_is_the_bottom(tmp_path):
    path = tmp_path / "grid.3ds"
    values, _ = write_3ds(path, CHANNELS, dim=(6, 5), points=9, experiment_params=("Z (m)", "Final Z (m)"))
    cube = load(path, "Current", kind="spectral")
    assert cube.attrs["metadata"]["extra"]["grid_orientation"]["source"].startswith("default")
    np.testing.assert_array_equal(cube.values, values[:, 0].reshape(5, 6, 9)[::-1])
    np.testing.assert_allclose(cube.values, expected(cube, current), rtol=1e-5, atol=1e-18)


def test_grid_without_frame_settings_is_uncalibrated(tmp_path):
    from atomine.data import UncalibratedWarning

    path = tmp_path / "grid.3ds"
    write_3ds(path, CHANNELS, drop_keys=["Grid settings"])
    with pytest.warns(UncalibratedWarning):
        cube = load(path, "Current", kind="spectral")
    assert cube.x.attrs["units"] == "px" and cube.bias.attrs["units"] == "V"
