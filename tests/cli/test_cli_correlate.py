"""``atomine correlate --image IMG --spectra SI --out DIR``: the result folder on a simulated pair, and refusals."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cli_helpers import assert_user_error

from atomine.correlate import AffineTransform
from atomine.io import save

SI_PX_NM = 0.2  # spectral pixel of simulate_pair (pixel_nm 0.05 x coarsening 4)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """What ``atomine simulate pair-haadf-eels --out pair.nc`` writes (EELS SI, its ADF, the HAADF), 32 x 32."""
    from atomine.simulate.correlated_pair import simulate_pair
    from atomine.workflows import write_simulation

    sim = simulate_pair(shape_si=(32, 32))
    path = tmp_path_factory.mktemp("pair") / "pair.nc"
    write_simulation(sim, path)
    return path, sim


@pytest.fixture(scope="module")
def run_once(pair, tmp_path_factory):
    """One full run, shared by the tests that read its folder."""
    from typer.testing import CliRunner

    from atomine.cli.main import app

    path, _ = pair
    out = tmp_path_factory.mktemp("run") / "corr"
    result = CliRunner().invoke(app, ["correlate", "--image", str(path), "--spectra", str(path), "--out", str(out)],
                                env={"COLUMNS": "200"})
    return result, out


FAST = ("--components", "2", "--permutations", "199")  # refusals and reruns: no rank search, few permutations


@pytest.fixture(scope="module")
def atoms_dir(pair, tmp_path_factory):
    """``atomine atoms pair.nc --signal HAADF --out A``."""
    from typer.testing import CliRunner

    from atomine.cli.main import app

    path, _ = pair
    out = tmp_path_factory.mktemp("atoms") / "A"
    r = CliRunner().invoke(app, ["atoms", str(path), "--signal", "HAADF", "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    return out


def _max_error_px(transform_json, truth: dict, sim) -> float:
    """Largest distance (spectral px) between the found and the true image position of any SI pixel centre."""
    found = AffineTransform.from_dict(json.loads(transform_json.read_text()))
    true = AffineTransform.from_dict(truth)
    x, y = np.meshgrid(sim.data.x.values, sim.data.y.values)
    fx, fy = found(x.ravel(), y.ravel())
    tx, ty = true(x.ravel(), y.ravel())
    return float(np.hypot(fx - tx, fy - ty).max()) / SI_PX_NM


def test_correlate_finds_a_driver_and_the_true_transform(run_once, pair):
    result, out = run_once
    _, sim = pair
    assert result.exit_code == 0, result.stderr
    links = pd.read_csv(out / "links.csv")
    assert {"structure", "property", "r", "p", "q", "cv_r2"} <= set(links.columns)
    drivers = sim.truth.parameters["drivers"]
    assert links.loc[0, "structure"] in drivers and links.loc[0, "q"] < 0.01
    err = _max_error_px(out / "transform.json", sim.truth.parameters["transform"], sim)
    assert err <= 0.2, err
    assert (out / "report.html").stat().st_size > 0
    # the printout: registration, the links table, the significant count, the files
    assert "registration: residual" in result.stdout and "rotation 3.0" in result.stdout
    assert links.loc[0, "structure"] in result.stdout and "cv_r2" in result.stdout
    summary = json.loads((out / "correlate.json").read_text())
    assert f"{summary['n_significant']} of {len(links)} links significant at FDR 0.05" in result.stdout
    assert "links.csv" in result.stdout and "transform.json" in result.stdout


@pytest.mark.slow
def test_saved_atoms_folder_gives_the_same_top_link(cli, pair, run_once, atoms_dir, tmp_path):
    path, _ = pair
    first = pd.read_csv(run_once[1] / "links.csv")
    r = cli("correlate", "--atoms", atoms_dir, "--image", path, "--spectra", path, *FAST, "--out", tmp_path / "C")
    assert r.exit_code == 0, r.stderr
    again = pd.read_csv(tmp_path / "C" / "links.csv")
    assert tuple(again.loc[0, ["structure", "property"]]) == tuple(first.loc[0, ["structure", "property"]])
    assert not (tmp_path / "C" / "atoms").exists()  # read, not rerun


def test_given_transform_and_signal(cli, pair, run_once, atoms_dir, tmp_path):
    path, _ = pair
    out = tmp_path / "T"
    assert_user_error(cli("correlate", "--image", path, "--spectra", path, "--signal", "EDS", "--out", out), "EDS")
    r = cli("correlate", "--atoms", atoms_dir, "--image", path, "--spectra", path, "--signal", "EELS",
            "--transform", run_once[1] / "transform.json", *FAST, "--out", out)
    assert r.exit_code == 0, r.stderr
    assert "transform given" in r.stdout
    assert json.loads((out / "correlate.json").read_text())["registration"]["method"] == "given"


def _variant(pair, tmp_path, *, uncalibrated=False, noise_adf=False):
    """The pair's SI + ADF as one Dataset, with pixel coords (uncalibrated) or with an unrelated (noise) ADF."""
    _, sim = pair
    si, adf = sim.data, sim.extra["ADF"]
    if noise_adf:
        adf = adf.copy(data=np.random.default_rng(1).poisson(2000.0, adf.shape).astype(np.float32))
    ds = xr.Dataset({"EELS": si, "ADF": adf})
    if uncalibrated:  # as the data constructors mark an uncalibrated axis: pixel indices in "px"
        ds = ds.assign_coords({d: (d, np.arange(ds.sizes[d], dtype=float), {"units": "px"}) for d in ("y", "x")})
    path = tmp_path / "spectra.nc"
    save(ds, path)
    return path


def _corner(pair, tmp_path):
    """A 3 x 3 nm corner of the HAADF: under a quarter of the SI's field of view lies in it."""
    _, sim = pair
    path = tmp_path / "corner.nc"
    save(sim.extra["HAADF"].isel(y=slice(0, 60), x=slice(0, 60)), path)
    return path


@pytest.mark.parametrize("case, fragment", [
    ("corner", "non-overlapping fields of view"),
    ("uncalibrated", "mismatched calibrations"),
    ("noise_adf", "registration failed"),
])
def test_refused_registrations_write_nothing(cli, pair, atoms_dir, tmp_path, case, fragment):
    path, _ = pair
    out = tmp_path / "out"
    if case == "corner":
        args = ("--image", _corner(pair, tmp_path), "--spectra", path)
    else:
        args = ("--atoms", atoms_dir, "--image", path, "--spectra", _variant(pair, tmp_path, **{case: True}))
    assert_user_error(cli("correlate", *args, *FAST, "--out", out), fragment)
    assert not out.exists()


def test_bad_arguments_are_refused_before_any_work(cli, pair, tmp_path):
    path, _ = pair
    out = tmp_path / "out"
    assert_user_error(cli("correlate", "--image", tmp_path / "nope.nc", "--spectra", path, "--out", out),
                      "--image", "does not exist")
    assert_user_error(cli("correlate", "--image", path, "--spectra", path, "--fdr", "1.5", "--out", out), "--fdr")
    assert_user_error(cli("correlate", "--image", path, "--spectra", path, "--method", "kendall", "--out", out),
                      "--method")
    assert_user_error(cli("correlate", "--spectra", path, "--out", out), "--image")
    assert not out.exists()
    out.mkdir()
    assert_user_error(cli("correlate", "--image", path, "--spectra", path, "--out", out), "exists")
    assert list(out.iterdir()) == []


def test_unmix_folder_needs_the_simultaneous_channel(cli, pair, atoms_dir, tmp_path):
    path, _ = pair
    r = cli("unmix", path, "--out", tmp_path / "U", "-k", "2")
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "out"
    assert_user_error(cli("correlate", "--atoms", atoms_dir, "--image", path, "--spectra", tmp_path / "U", "--out", out),
                      "simultaneous channel", "adf")
    assert not out.exists()
    # with the channel the folder is used as is
    r = cli("correlate", "--atoms", atoms_dir, "--image", path, "--spectra", tmp_path / "U", "--adf",
            _adf_file(pair, tmp_path), "--permutations", "199", "--out", out)
    assert r.exit_code == 0, r.stderr
    assert not (out / "unmix").exists()


def _adf_file(pair, tmp_path):
    _, sim = pair
    path = tmp_path / "adf.nc"
    save(sim.extra["ADF"], path)
    return path


@pytest.mark.slow
def test_simulate_preset_then_correlate(cli, tmp_path):
    data = tmp_path / "pair.nc"
    assert cli("simulate", "pair-haadf-eels", "--out", data).exit_code == 0
    r = cli("correlate", "--image", data, "--spectra", data, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.stderr
    links = pd.read_csv(tmp_path / "o" / "links.csv")
    assert links.loc[0, "structure"] in ("strain_trace", "dopant_fraction") and links.loc[0, "q"] < 0.01
