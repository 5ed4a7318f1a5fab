"""``atomine segment IMAGE --out DIR``: the result folder and the error contract."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cli_helpers import assert_user_error

from atomine.io import save
from atomine.simulate import make


@pytest.fixture(scope="module")
def grains_file(tmp_path_factory):
    sim = make("haadf-grains", seed=0)
    path = tmp_path_factory.mktemp("img") / "grains.zarr"
    save(sim.data, path)
    return path, sim


def test_segment_writes_maps_table_and_report(cli, grains_file, tmp_path):
    path, sim = grains_file
    out = tmp_path / "seg"
    result = cli("segment", path, "--out", out, "--components", "3", "--method", "kmeans")
    assert result.exit_code == 0, result.stderr
    assert "3 phase(s) (kmeans" in result.stdout
    ds = xr.open_zarr(out / "result.zarr")
    assert ds.phase.dims == ("y", "x") and ds.phase.shape == sim.data.shape
    assert ds.abundance.dims == ("component", "y", "x") and ds.sizes["component"] == 3
    assert {"defect", "rotation", "strain"} <= set(ds.data_vars)
    # the phase map matches the grains
    from atomine.workflows.segment_truth import truth_regions
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth_regions(sim).ravel(), ds.phase.values.ravel()) >= 0.9
    table = pd.read_parquet(out / "defects.parquet")
    assert set(table.kind) <= {"dislocation", "grain_boundary", "phase_boundary"}
    html = (out / "report.html").read_text()
    assert "<img" in html and "rotation" in html.lower()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["parameters"]["method"] == "kmeans" and prov["parameters"]["n_components"] == 3


def test_existing_folder_is_refused_before_work(cli, grains_file, tmp_path):
    path, _ = grains_file
    (tmp_path / "seg").mkdir()
    assert_user_error(cli("segment", path, "--out", tmp_path / "seg"), "exists")


@pytest.mark.parametrize("args, fragment", [
    (["--method", "ica"], "--method"),
    (["--window", "4096"], "larger than the image"),
    (["--step", "0"], "step"),
    (["--components", "100000"], "windows"),
])
def test_bad_options_give_one_line(cli, grains_file, tmp_path, args, fragment):
    path, _ = grains_file
    assert_user_error(cli("segment", path, "--out", tmp_path / "seg", *args), fragment)
    assert not (tmp_path / "seg").exists()


def test_nan_image_and_wrong_file_give_one_line(cli, tmp_path):
    img = np.ones((128, 128), np.float32)
    img[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", img)
    assert_user_error(cli("segment", tmp_path / "nan.npy", "--out", tmp_path / "a"), "NaN")
    (tmp_path / "bad.dm3").write_bytes(b"not a dm3 file")
    assert_user_error(cli("segment", tmp_path / "bad.dm3", "--out", tmp_path / "b"))
    np.save(tmp_path / "cube.npy", np.ones((4, 4, 4, 4), np.float32))
    assert_user_error(cli("segment", tmp_path / "cube.npy", "--out", tmp_path / "c"))
