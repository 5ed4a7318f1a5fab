"""Ground-truth folders: a real simulator's truth comes back identical; bad folders are clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.data import GroundTruth
from atomine.errors import CorruptFileError, InputError, OutputExistsError
from atomine.io import load_truth, save_truth


@pytest.fixture(scope="module")
def perovskite():
    from atomine.simulate import make, presets

    assert "haadf-perovskite" in presets()
    return make("haadf-perovskite", seed=0)


def test_simulator_truth_round_trips_exactly(tmp_path, perovskite):
    truth = perovskite.truth
    folder = save_truth(truth, tmp_path / "sto.truth")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["parameters.json", "maps.zarr", *(f"{n}.parquet" for n in truth.tables)])
    back = load_truth(folder)
    assert back.kind == truth.kind and back.parameters == truth.parameters
    assert list(back.tables) == list(truth.tables)  # order kept
    for name, table in truth.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], table)
    assert set(back.maps.data_vars) == set(truth.maps.data_vars)
    for name, m in truth.maps.data_vars.items():
        assert back.maps[name].dtype == m.dtype, name
        np.testing.assert_array_equal(back.maps[name].values, m.values)
    # the atoms' positions are the truth the analyses are checked against: exact, in nm
    np.testing.assert_array_equal(back.tables["atoms"][["x", "y"]].to_numpy(),
                                  truth.tables["atoms"][["x", "y"]].to_numpy())
    np.testing.assert_array_equal(back.maps["x"].values, truth.maps["x"].values)
    assert back.maps["x"].attrs.get("units") == truth.maps["x"].attrs.get("units")


def test_parameters_json_is_plain_json_with_numpy_converted(tmp_path):
    truth = GroundTruth("test", {"n": np.int64(3), "scale_nm": np.float32(0.5), "shape": np.array([2, 3]),
                                 "nested": {"flag": True, "t": (1, 2)}})
    save_truth(truth, tmp_path / "t")
    record = json.loads((tmp_path / "t" / "parameters.json").read_text())
    assert record["kind"] == "test" and record["tables"] == []
    assert record["parameters"] == {"n": 3, "scale_nm": 0.5, "shape": [2, 3], "nested": {"flag": True, "t": [1, 2]}}
    back = load_truth(tmp_path / "t")
    assert back.tables == {} and not back.maps.data_vars  # no maps: no maps.zarr written
    assert not (tmp_path / "t" / "maps.zarr").exists()


def test_lazy_maps(tmp_path):
    maps = xr.Dataset({"phase": (("y", "x"), np.arange(12, dtype=np.int16).reshape(3, 4))})
    save_truth(GroundTruth("t", {}, {}, maps), tmp_path / "t")
    back = load_truth(tmp_path / "t", lazy=True)
    assert hasattr(back.maps["phase"].data, "dask")
    np.testing.assert_array_equal(back.maps["phase"].values, maps["phase"].values)


def test_overwrite_and_atomicity(tmp_path):
    folder = tmp_path / "t.truth"
    save_truth(GroundTruth("first"), folder)
    with pytest.raises(OutputExistsError, match="overwrite"):
        save_truth(GroundTruth("second"), folder)
    bad = GroundTruth("second", {}, {"bad": pd.DataFrame({"mixed": [1, "a", 2.5]})})
    with pytest.raises(InputError, match="'bad' cannot be written as Parquet"):
        save_truth(bad, folder, overwrite=True)
    assert load_truth(folder).kind == "first"  # the old folder survived the failed write
    assert [p.name for p in tmp_path.iterdir()] == ["t.truth"]  # and no temp folder is left
    save_truth(GroundTruth("second"), folder, overwrite=True)
    assert load_truth(folder).kind == "second"


@pytest.mark.parametrize("truth, match", [
    ("not truth", "GroundTruth"),
    (GroundTruth("t", {}, {"../escape": pd.DataFrame({"a": [1]})}), "file name"),
    (GroundTruth("t", {}, {".hidden": pd.DataFrame({"a": [1]})}), "file name"),
    (GroundTruth("t", {}, {"atoms": [1, 2, 3]}), "not a pandas DataFrame"),
    (GroundTruth("t", {}, {"A": pd.DataFrame({"a": [1]}), "a": pd.DataFrame({"a": [1]})}), "clash"),
    (GroundTruth("t", {}, {}, {"not": "a dataset"}), "xarray Dataset"),
])
def test_bad_truth_is_refused_before_writing(tmp_path, truth, match):
    with pytest.raises(InputError, match=match):
        save_truth(truth, tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_folders(tmp_path):
    with pytest.raises(InputError, match="no such"):
        load_truth(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        load_truth(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptFileError, match="parameters.json is missing"):
        load_truth(tmp_path / "empty")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "parameters.json").write_text("{kind: oops")
    with pytest.raises(CorruptFileError, match="not a valid ground-truth record"):
        load_truth(tmp_path / "badjson")
    save_truth(GroundTruth("t", {}, {"atoms": pd.DataFrame({"x": [0.1, 0.2]})}), tmp_path / "t")
    (tmp_path / "t" / "atoms.parquet").write_bytes(b"PAR1 broken")
    with pytest.raises(CorruptFileError, match="unreadable Parquet"):
        load_truth(tmp_path / "t")
    (tmp_path / "t" / "atoms.parquet").unlink()
    with pytest.raises(CorruptFileError, match="atoms.parquet is missing"):
        load_truth(tmp_path / "t")
