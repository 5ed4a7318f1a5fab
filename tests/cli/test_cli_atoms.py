"""``atomine atoms IMAGE --out DIR``: the result folder and the error contract."""

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error
from scipy.spatial import cKDTree

from atomine.io import save
from atomine.simulate import make


@pytest.fixture(scope="module")
def perovskite_file(tmp_path_factory):
    sim = make("haadf-perovskite", seed=0)
    path = tmp_path_factory.mktemp("img") / "sto.zarr"
    save(sim.data, path)
    return path, sim


def test_atoms_writes_the_table_maps_and_report(cli, perovskite_file, tmp_path):
    path, sim = perovskite_file
    out = tmp_path / "atoms"
    result = cli("atoms", path, "--out", out)
    assert result.exit_code == 0, result.stderr
    # 26 x 26 A and B sites in the field; 6 A columns are missing (the simulated vacancies)
    assert "1458 columns" in result.stdout and "sublattices: 670, 676" in result.stdout
    table = pd.read_parquet(out / "atoms.parquet")
    assert (table.sublattice == 0).sum() == 676 and ((table.sublattice == 0) & (table.cls == "vacancy")).sum() == 6
    fitted = table[table.fit_ok]
    truth = sim.truth.tables["atoms"]
    dist, _ = cKDTree(truth[["x", "y"]].to_numpy()).query(fitted[["x", "y"]].to_numpy())
    assert np.median(dist) < 0.02  # nm: the columns are where the simulation put them
    cations = fitted.sublattice.isin([0, 1])
    assert (fitted.pos_err > 0).all() and (fitted.pos_err[cations] < 0.02).all()
    assert (fitted.pos_err[~cations] < 0.1).all()  # faint O columns (~1/15 of Sr in HAADF)
    assert (out / "result.zarr").is_dir() and (out / "report.html").stat().st_size > 10_000
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"]["image"]["content_hash"].startswith("sha256:")


def test_existing_folder_is_refused(cli, perovskite_file, tmp_path):
    path, _ = perovskite_file
    (tmp_path / "atoms").mkdir()
    assert_user_error(cli("atoms", path, "--out", tmp_path / "atoms"), "exists")


@pytest.mark.parametrize("args, fragment", [
    (["--noise", "laplace"], "--noise"),
    (["--separation", "-1"], "--separation"),
])
def test_bad_options_give_one_line(cli, perovskite_file, tmp_path, args, fragment):
    path, _ = perovskite_file
    assert_user_error(cli("atoms", path, "--out", tmp_path / "a", *args), fragment)
    assert not (tmp_path / "a").exists()


def test_blank_and_nan_images_give_one_line(cli, tmp_path):
    np.save(tmp_path / "blank.npy", np.full((128, 128), 3.0, np.float32))
    assert_user_error(cli("atoms", tmp_path / "blank.npy", "--out", tmp_path / "a"))
    img = np.ones((128, 128), np.float32)
    img[5, 5] = np.nan
    np.save(tmp_path / "nan.npy", img)
    assert_user_error(cli("atoms", tmp_path / "nan.npy", "--out", tmp_path / "b"), "NaN")
