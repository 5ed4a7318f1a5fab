"""Writing a simulation: data and truth side by side, all or nothing; several signals in one store."""

import numpy as np
import pandas as pd
import pytest

from atomine.data import GroundTruth, Simulation, image, spectrum_image
from atomine.errors import InputError, OutputExistsError
from atomine.workflows import signals_dataset, truth_folder, unique_names, write_simulation


def test_truth_folder_sits_beside_the_data(tmp_path):
    assert truth_folder(tmp_path / "sto.zarr") == tmp_path / "sto.truth"
    assert truth_folder("run/a.b.nc").name == "a.b.truth"


def test_signals_dataset_keeps_every_signal_and_its_attrs(local_presets):
    sim = local_presets["mixture"][1](0)
    ds = signals_dataset(sim.signals())
    assert list(ds.data_vars) == ["EELS", "ADF"]
    np.testing.assert_array_equal(ds["EELS"].values, sim.data.values)
    assert ds["ADF"].attrs["signal"] == "ADF" and ds["energy"].attrs["units"] == "eV"


def test_signals_dataset_names_repeats_and_keeps_different_grids_apart():
    a = image(np.ones((4, 4)), 0.1, name="HAADF")
    b = image(np.zeros((4, 4)), 0.1, name="HAADF")
    assert unique_names([a, b, b]) == ["HAADF", "HAADF_2", "HAADF_3"]
    same = signals_dataset([a, b])
    assert list(same.data_vars) == ["HAADF", "HAADF_2"] and same["HAADF_2"].dims == ("y", "x")
    coarse = image(np.ones((6, 6)), 0.1, name="EDS")       # another size
    shifted = image(np.ones((4, 4)), 0.2, name="ADF")      # same size, another calibration
    ds = signals_dataset([a, coarse, shifted])
    assert ds["EDS"].dims == ("y_EDS", "x_EDS") and ds["EDS"].attrs["atomine_dims"] == ["y", "x"]
    assert ds["ADF"].dims == ("y_ADF", "x_ADF")
    # Every signal keeps its own axis values exactly; nothing is re-gridded or NaN-filled.
    np.testing.assert_allclose(ds["x_ADF"].values, shifted["x"].values)
    np.testing.assert_allclose(ds["x"].values, a["x"].values)
    assert not np.isnan(ds["HAADF"].values).any() and ds["x_EDS"].attrs["units"] == "nm"
    with pytest.raises(InputError):
        signals_dataset([])


def test_core_and_low_loss_share_a_store_with_separate_energy_axes():
    core = spectrum_image(np.ones((3, 3, 20)), 0.1, energy_scale=1.0, energy_offset=400.0, name="EELS")
    low = spectrum_image(np.ones((3, 3, 30)), 0.1, energy_scale=0.1, energy_offset=-1.0, name="EELS_LL")
    ds = signals_dataset([core, low])
    assert ds["EELS"].dims == ("y", "x", "energy")
    assert ds["EELS_LL"].dims == ("y", "x", "energy_EELS_LL")
    assert ds["EELS_LL"].attrs["atomine_dims"] == ["y", "x", "energy"]
    assert ds["energy_EELS_LL"].attrs["units"] == "eV"
    np.testing.assert_allclose(ds["energy_EELS_LL"].values, low["energy"].values)


def test_write_simulation_refuses_before_writing(tmp_path, local_presets):
    sim = local_presets["lattice"][1](0)
    with pytest.raises(InputError, match="Simulation"):
        write_simulation(sim.data, tmp_path / "x.zarr")
    (tmp_path / "x.truth").mkdir()
    with pytest.raises(OutputExistsError, match="x.truth exists"):
        write_simulation(sim, tmp_path / "x.zarr")
    with pytest.raises(OutputExistsError, match="does not exist"):
        write_simulation(sim, tmp_path / "missing" / "x.zarr")
    assert [p.name for p in tmp_path.iterdir()] == ["x.truth"]


def test_write_simulation_round_trips_data_and_truth(tmp_path, local_presets):
    from atomine.io import load_all, load_truth

    sim = local_presets["mixture"][1](2)
    written = write_simulation(sim, tmp_path / "mix.zarr")
    assert written.data == tmp_path / "mix.zarr" and written.truth == tmp_path / "mix.truth" and not written.left_out
    got = {str(s.name): s for s in load_all(written.data)}
    for want in sim.signals():
        np.testing.assert_array_equal(np.asarray(got[str(want.name)].values), want.values)
        np.testing.assert_allclose(got[str(want.name)]["x"].values, want["x"].values)
    truth = load_truth(written.truth)
    np.testing.assert_array_equal(truth.maps["abundance"].values, sim.truth.maps["abundance"].values)
    single = write_simulation(sim, tmp_path / "main_only.npy")
    assert single.left_out == ["ADF"]  # a one-signal format cannot hold the simultaneous ADF image


def test_failed_truth_leaves_no_data_behind(tmp_path):
    bad_table = pd.DataFrame({"mixed": [1, "a", 2.5]})  # no Parquet type holds this column
    sim = Simulation(image(np.ones((8, 8), dtype=np.float32), 0.1), GroundTruth("test", {}, {"bad": bad_table}))
    with pytest.raises(Exception):
        write_simulation(sim, tmp_path / "x.zarr")
    assert list(tmp_path.iterdir()) == []
