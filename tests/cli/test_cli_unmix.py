"""``atomine unmix FILE --out DIR``: the result folder from a simulated file, and the error contract."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cli_helpers import assert_user_error

from atomine.io import save
from atomine.simulate import make


@pytest.fixture(scope="module")
def eels_file(tmp_path_factory):
    """What ``atomine simulate eels-si-mixed --out FILE.zarr`` writes (the SI plus its simultaneous ADF)."""
    from atomine.workflows import write_simulation

    sim = make("eels-si-mixed", seed=0)
    path = tmp_path_factory.mktemp("si") / "eels.zarr"
    write_simulation(sim, path)
    return path, sim


@pytest.fixture(scope="module")
def cits_crop(tmp_path_factory):
    sim = make("cits-grid-mixed", seed=0)
    crop = sim.data.isel(y=slice(0, 16), x=slice(0, 16))
    path = tmp_path_factory.mktemp("cits") / "cits.zarr"
    save(crop, path)
    return path, sim


def test_simulate_then_unmix_writes_the_result_folder(cli, tmp_path):
    data = tmp_path / "mixed.zarr"
    result = cli("simulate", "eels-si-mixed", "--out", data)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "unmix"
    result = cli("unmix", data, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "3 component(s) by fcls (bi-cross-validation)" in result.stdout
    assert {"result.zarr", "summary.json", "provenance.json", "annotations.csv", "report.html"} <= \
        {p.name for p in out.iterdir()}
    ds = xr.open_zarr(out / "result.zarr")
    assert ds.abundance.dims == ("component", "y", "x") and ds.sizes["component"] == 3
    assert ds.endmember.dims == ("component", "energy") and ds.energy.attrs["units"] == "eV"
    # the abundances are the simulation's, up to the order of the components
    from atomine.workflows import unmix_scores
    from atomine.workflows.unmix import UnmixResult

    summary = json.loads((out / "summary.json").read_text())
    sim = make("eels-si-mixed", seed=0)
    scores = unmix_scores(UnmixResult(ds.load(), pd.DataFrame(), summary, {}, {}, "", 0.0), sim)
    assert scores["abundance_rmse"] <= 0.05 and max(scores["angle_deg"]) <= 3.0
    html = (out / "report.html").read_text()
    assert "Abundance maps" in html and "Component spectra" in html and "bi-cross-validation" in html


def test_unmix_cits_with_nmf(cli, cits_crop, tmp_path):
    path, _ = cits_crop
    out = tmp_path / "c"
    result = cli("unmix", path, "--out", out, "--components", "3", "--method", "nmf")
    assert result.exit_code == 0, result.stderr
    ds = xr.open_zarr(out / "result.zarr")
    assert ds.endmember.dims == ("component", "bias") and ds.endmember.attrs["units"] == "A/V"
    assert float(ds.endmember.min()) >= 0.0
    assert json.loads((out / "summary.json").read_text())["preprocessing"]["didv"]["polyorder"] == 3


def test_existing_folder_is_refused_before_the_work(cli, cits_crop, tmp_path):
    path, _ = cits_crop
    (tmp_path / "taken").mkdir()
    assert_user_error(cli("unmix", path, "--out", tmp_path / "taken", "-k", "3"), "exists")


def test_references_on_another_axis_are_resampled(cli, eels_file, tmp_path):
    path, sim = eels_file
    T = sim.truth.maps["endmembers"]
    fine = np.arange(395.0, 905.0, 0.5)
    refs = []
    for i in range(3):
        ref = xr.DataArray(np.interp(fine, T.energy.values, T.isel(component=i).values), dims=("energy",),
                           coords={"energy": ("energy", fine, {"units": "eV"})}, name=f"phase{i}",
                           attrs={"signal": "EELS", "units": "counts"})
        refs.append(tmp_path / f"ref{i}.zarr")
        save(ref, refs[-1])
    out = tmp_path / "r"
    args = [a for r in refs for a in ("--references", r)]
    result = cli("unmix", path, "--out", out, *args)
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_components"] == 3 and all("resampled" in n for n in summary["references"]["notes"])


def test_references_not_covering_the_axis_exit_2(cli, eels_file, tmp_path):
    path, _ = eels_file
    ref = xr.DataArray(np.ones(50), dims=("energy",), coords={"energy": ("energy", np.arange(500.0, 550.0),
                                                                         {"units": "eV"})}, name="short")
    save(ref, tmp_path / "short.zarr")
    assert_user_error(cli("unmix", path, "--out", tmp_path / "o", "--references", tmp_path / "short.zarr"),
                      "covers 500..549")


def test_nan_channels_exit_2(cli, cits_crop, tmp_path):
    path, _ = cits_crop
    da = xr.open_zarr(path)
    grid = da[list(da.data_vars)[0]].load()
    grid[..., 5] = np.nan
    save(grid, tmp_path / "nan.zarr")
    assert_user_error(cli("unmix", tmp_path / "nan.zarr", "--out", tmp_path / "o", "-k", "3"), "NaN")


def test_fewer_pixels_than_components_exit_2(cli, cits_crop, tmp_path):
    path, _ = cits_crop
    ds = xr.open_zarr(path)
    tiny = ds[list(ds.data_vars)[0]].isel(y=slice(0, 1), x=slice(0, 2)).load()
    save(tiny, tmp_path / "tiny.zarr")
    assert_user_error(cli("unmix", tmp_path / "tiny.zarr", "--out", tmp_path / "o", "-k", "3"), "pixels")


def test_bad_method_exit_2(cli, cits_crop, tmp_path):
    path, _ = cits_crop
    assert_user_error(cli("unmix", path, "--out", tmp_path / "o", "--method", "ica"), "--method")


def test_non_monotonic_energy_axis_exit_2(cli, eels_file, tmp_path):
    path, sim = eels_file
    e = sim.data.energy.values.copy()
    e[10], e[11] = e[11], e[10]
    bad = sim.data.isel(y=slice(0, 8), x=slice(0, 8)).assign_coords(energy=("energy", e, {"units": "eV"}))
    save(bad, tmp_path / "bad.zarr")
    assert_user_error(cli("unmix", tmp_path / "bad.zarr", "--out", tmp_path / "o", "-k", "3"))
