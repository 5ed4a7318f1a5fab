"""The commands with good input: version, help, info, convert, simulate, demo, and the installed script."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cli_helpers import assert_user_error, require

import atomine
from atomine.data import image, spectrum_image


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"atomine {atomine.__version__}"


@pytest.mark.parametrize("command", [[], ["info"], ["convert"], ["simulate"], ["demo"]])
def test_help_on_every_command(cli, command):
    r = cli(*command, "--help")
    assert r.exit_code == 0, r.stderr
    assert "Usage" in r.stdout and "--help" in r.stdout
    if not command:
        for name in ("info", "convert", "simulate", "demo", "--version", "--debug"):
            assert name in r.stdout


def test_simulate_help_and_bare_simulate_list_the_kinds(cli, simulators):
    help_text = _squash(cli("simulate", "--help").stdout)
    listing = cli("simulate")
    assert listing.exit_code == 0
    for kind, (description, _) in simulators.items():
        assert kind in help_text and _squash(description) in help_text
        assert kind in listing.stdout


# ----------------------------------------------------------------------------------------- info


def test_info_on_uncalibrated_npy_warns_once_and_shows_pixels(cli, tmp_path):
    f = tmp_path / "img.npy"
    np.save(f, np.arange(12 * 16, dtype=np.float32).reshape(12, 16))
    r = cli("info", f)
    assert r.exit_code == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "no spatial calibration" in warnings[0] and "px" in warnings[0]
    assert "error" not in r.stderr
    out = r.stdout
    assert "12 x 16" in out and "float32" in out and "px" in out
    assert "max 191" in out and "min 0" in out  # value statistics of arange(192)


def _calibrated_image():
    rng = np.random.default_rng(0)
    return image(rng.random((40, 50)).astype(np.float32), (0.0125, 0.025), origin=(0.5, -1.0), signal="HAADF",
                 value_units="counts", metadata={"beam_energy_kv": 300.0, "instrument": "TestScope"})


def _calibration_rows(stdout: str) -> dict[str, list[str]]:
    """dim -> the cells of its calibration row (rich draws tables with box characters between cells)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").replace("┃", "|").split("|") if c.strip()]
        if cells and cells[0] in ("y", "x", "energy", "bias") and len(cells) >= 5:
            rows[cells[0]] = cells
    return rows


def test_info_prints_the_calibration_of_a_calibrated_store(cli, tmp_path):
    from atomine.io import save

    f = tmp_path / "img.zarr"
    save(_calibrated_image(), f)
    r = cli("info", f)
    assert r.exit_code == 0, r.stderr
    assert "warning" not in r.stderr
    rows = _calibration_rows(r.stdout)
    # dim, size, offset, scale, units
    assert rows["y"][1:5] == ["40", "0.5", "0.0125", "nm"]
    assert rows["x"][1:5] == ["50", "-1", "0.025", "nm"]
    assert "beam_energy_kv" in r.stdout and "300" in r.stdout and "TestScope" in r.stdout
    lazy = cli("info", f, "--lazy")
    assert lazy.exit_code == 0 and _calibration_rows(lazy.stdout) == rows
    assert "mean" not in lazy.stdout  # lazy: the values are not read


def test_info_on_a_simulated_file_matches_the_simulator(cli, tmp_path, simulators):
    from atomine.data import axis_offset, axis_scale, axis_units
    from atomine.simulate import make

    kind = sorted(simulators)[0]
    f = tmp_path / "sim.zarr"
    assert cli("simulate", kind, "--out", f, "--seed", "1").exit_code == 0
    r = cli("info", f)
    assert r.exit_code == 0, r.stderr
    da = make(kind, 1).data
    rows = _calibration_rows(r.stdout)
    for d in ("y", "x"):
        assert float(rows[d][2]) == pytest.approx(axis_offset(da, d), rel=1e-5, abs=1e-9)
        assert float(rows[d][3]) == pytest.approx(axis_scale(da, d), rel=1e-5)
        assert rows[d][4] == axis_units(da, d) == "nm"


# -------------------------------------------------------------------------------------- convert


def _assert_same_signal(got: xr.DataArray, want: xr.DataArray):
    assert tuple(got.dims) == tuple(want.dims)
    np.testing.assert_array_equal(np.asarray(got.values), want.values)
    for d in want.dims:
        np.testing.assert_allclose(got[d].values, want[d].values, rtol=1e-12)
        assert got[d].attrs.get("units") == want[d].attrs.get("units")
    assert got.attrs.get("units") == want.attrs.get("units")
    assert got.attrs.get("signal") == want.attrs.get("signal")


def test_convert_round_trip_keeps_data_and_calibration(cli, tmp_path):
    from atomine.io import load, save

    src = tmp_path / "img.zarr"
    original = _calibrated_image()
    save(original, src)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in src.rglob("*"))
    assert cli("convert", src, tmp_path / "img.nc").exit_code == 0
    assert cli("convert", tmp_path / "img.nc", tmp_path / "back.zarr").exit_code == 0
    back = load(tmp_path / "back.zarr")
    _assert_same_signal(back, original)
    assert back.attrs["metadata"]["beam_energy_kv"] == 300.0
    assert sorted((p.name, p.stat().st_mtime_ns) for p in src.rglob("*")) == before  # input untouched
    r = cli("convert", src, tmp_path / "img.nc")
    assert r.exit_code == 2
    assert cli("convert", src, tmp_path / "img.nc", "--overwrite").exit_code == 0
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial") or p.name.startswith(".")]
    assert leftovers == []


def test_convert_store_keeps_every_signal_and_single_formats_take_one(cli, tmp_path):
    from atomine.io import load_all, save

    si = spectrum_image(np.random.default_rng(1).random((6, 8, 30)).astype(np.float32), 0.1,
                        energy_scale=0.5, energy_offset=280.0, name="EELS")
    adf = image(si.values.sum(-1), 0.1, signal="ADF", name="ADF")
    src = tmp_path / "both.zarr"
    save(xr.Dataset({"EELS": si, "ADF": adf}), src)
    assert cli("convert", src, tmp_path / "both.nc").exit_code == 0
    back = {str(s.name): s for s in load_all(tmp_path / "both.nc")}
    _assert_same_signal(back["EELS"], si)
    _assert_same_signal(back["ADF"], adf)
    r = cli("convert", src, tmp_path / "adf_only.zarr", "--signal", "ADF")
    assert r.exit_code == 0
    (only,) = load_all(tmp_path / "adf_only.zarr")
    _assert_same_signal(only, adf)


def test_convert_npy_to_tif_and_back(cli, tmp_path):
    require("atomine.io.rsciio_reader", "the TIFF reader")
    data = np.random.default_rng(2).random((16, 20)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    r = cli("convert", tmp_path / "a.npy", tmp_path / "a.tif")
    assert r.exit_code == 0, r.stderr
    assert any(ln.startswith("warning:") and "px" in ln for ln in r.stderr.splitlines())
    from atomine.io import load

    np.testing.assert_array_equal(np.asarray(load(tmp_path / "a.tif").values), data)


# ------------------------------------------------------------------------------------- simulate


def test_simulate_writes_data_and_truth_equal_to_the_simulator(cli, tmp_path, simulators):
    from atomine.io import load_all, load_truth
    from atomine.simulate import make

    for kind in sorted(simulators):
        f = tmp_path / f"{kind}.zarr"
        r = cli("simulate", kind, "--out", f, "--seed", "7")
        assert r.exit_code == 0, r.stderr
        assert str(f) in _squash(r.stdout)
        sim = make(kind, 7)
        got = {str(s.name): s for s in load_all(f)}
        for want in sim.signals():
            _assert_same_signal(got[str(want.name)], want)
        truth = load_truth(tmp_path / f"{kind}.truth")
        assert truth.parameters == sim.truth.parameters
        assert set(truth.tables) == set(sim.truth.tables)
        for name, table in sim.truth.tables.items():
            assert truth.tables[name].reset_index(drop=True).equals(table.reset_index(drop=True)), name
        for name, m in sim.truth.maps.data_vars.items():
            np.testing.assert_array_equal(truth.maps[name].values, m.values)
    # Same seed, same bytes of data; existing outputs are refused.
    r = cli("simulate", sorted(simulators)[0], "--out", tmp_path / f"{sorted(simulators)[0]}.zarr")
    assert r.exit_code == 2


# ----------------------------------------------------------------------------------------- demo


def test_demo_command_writes_the_result_folder(cli, tmp_path, simulators):
    kinds = sorted(simulators)[:2]
    out = tmp_path / "demo"
    r = cli("demo", "--out", out, "--seed", "0", *[a for k in kinds for a in ("--kind", k)])
    assert r.exit_code == 0, r.stderr
    assert f"report: {out / 'report.html'}" in _squash(r.stdout)
    for name in ("report.html", "result.zarr", "provenance.json", "summary.json", "data", "truth"):
        assert (out / name).exists(), name
    page = (out / "report.html").read_text()
    for kind in kinds:
        assert f'id="{kind}"' in page
        assert (out / "data" / f"{kind}.zarr").exists() and (out / "truth" / kind).is_dir()
    assert_user_error(cli("demo", "--out", tmp_path / "d2", "--kind", "no-such-kind"), "unknown dataset")
    assert not (tmp_path / "d2").exists()


# ---------------------------------------------------------------------------- installed script


def _script() -> Path:
    script = Path(sys.executable).with_name("atomine")
    assert script.exists(), f"the atomine entry point is not installed next to {sys.executable}"
    return script


def test_installed_entry_point_runs(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    ok = subprocess.run([_script(), "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == f"atomine {atomine.__version__}"
    bad = subprocess.run([_script(), "info", tmp_path / "missing.dm3"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.dm3'}: no such file"]
    assert bad.stdout == ""


def test_installed_entry_point_reads_a_file(tmp_path):
    f = tmp_path / "img.npy"
    np.save(f, np.ones((6, 9), dtype=np.float32))
    r = subprocess.run([_script(), "info", f], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "6 x 9" in r.stdout
    (warning,) = r.stderr.strip().splitlines()
    assert warning.startswith("warning:") and "px" in warning
