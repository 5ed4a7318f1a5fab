"""Bad input to every command: exit code 2, one ``error:`` line, no traceback, nothing left behind."""

import numpy as np
from cli_helpers import assert_user_error


def test_missing_file(cli, tmp_path):
    assert_user_error(cli("info", tmp_path / "nope.npy"), "nope.npy", "no such file")
    assert_user_error(cli("convert", tmp_path / "nope.npy", tmp_path / "out.zarr"), "no such file")
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension(cli, tmp_path):
    f = tmp_path / "data.xyz"
    f.write_bytes(b"\x00" * 64)
    assert_user_error(cli("info", f), "unknown file extension '.xyz'", ".dm3")
    assert_user_error(cli("convert", f, tmp_path / "out.zarr"), "unknown file extension")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.xyz"]


def test_empty_file(cli, tmp_path):
    f = tmp_path / "empty.npy"
    f.write_bytes(b"")
    assert_user_error(cli("info", f), "empty")


def test_existing_output_is_refused_without_overwrite(cli, tmp_path):
    src = tmp_path / "in.npy"
    np.save(src, np.ones((4, 4), dtype=np.float32))
    out = tmp_path / "out.zarr"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert_user_error(cli("convert", src, out), "exists", "--overwrite")
    assert_user_error(cli("simulate", "anything", "--out", out), "exists", "--overwrite")
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    assert_user_error(cli("demo", "--out", demo_dir), "exists")
    assert [p.name for p in out.iterdir()] == ["mine.txt"] and list(demo_dir.iterdir()) == []


def test_simulate_needs_an_output_and_a_sane_seed(cli, tmp_path):
    assert_user_error(cli("simulate", "anything"), "--out")
    assert_user_error(cli("simulate", "anything", "--out", tmp_path / "x.zarr", "--seed", "-3"), "seed")
    assert_user_error(cli("simulate", "anything", "--out", tmp_path / "x.abc"), "unknown file extension")
    assert_user_error(cli("simulate", "anything", "--out", tmp_path / "no" / "x.zarr"), "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_unknown_simulation_kind(cli, tmp_path, simulators):
    assert_user_error(cli("simulate", "no-such-kind", "--out", tmp_path / "x.zarr"), "unknown simulation kind")
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(cli, tmp_path):
    r = cli("--debug", "info", tmp_path / "nope.npy")
    assert r.exit_code == 2
    assert "Traceback" in r.stderr and "error: " in r.stderr


def test_usage_errors_exit_2(cli):
    r = cli("info")
    assert r.exit_code == 2  # missing argument: click's usage error
    r = cli("no-such-command")
    assert r.exit_code == 2


def test_corrupt_and_truncated_npy(cli, tmp_path):
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not a numpy file at all" * 4)
    assert_user_error(cli("info", bad), "corrupt.npy")
    good = tmp_path / "full.npy"
    np.save(good, np.ones((64, 64), dtype=np.float32))
    cut = tmp_path / "truncated.npy"
    cut.write_bytes(good.read_bytes()[:2000])
    assert_user_error(cli("info", cut), "truncated.npy")
    assert_user_error(cli("convert", cut, tmp_path / "out.zarr"), "truncated.npy")
    assert not (tmp_path / "out.zarr").exists()


def test_nan_filled_npy(cli, tmp_path):
    f = tmp_path / "nan.npy"
    np.save(f, np.full((8, 8), np.nan, dtype=np.float32))
    assert_user_error(cli("info", f), "NaN")
    assert_user_error(cli("convert", f, tmp_path / "out.zarr"), "NaN")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.npy"]


def test_four_dimensional_npy(cli, tmp_path):
    f = tmp_path / "4d.npy"
    np.save(f, np.ones((2, 3, 4, 5), dtype=np.float32))
    assert_user_error(cli("info", f), "dimensions")
    assert_user_error(cli("convert", f, tmp_path / "out.tif"), "dimensions")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4d.npy"]


def test_bad_signal_choice_writes_nothing(cli, tmp_path):
    f = tmp_path / "img.npy"
    np.save(f, np.ones((8, 8), dtype=np.float32))
    assert_user_error(cli("convert", f, tmp_path / "out.zarr", "--signal", "5"), "out of range")
    assert_user_error(cli("convert", f, tmp_path / "out.zarr", "--signal", "EELS"), "no signal 'EELS'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.npy"]
