"""learn_thermodynamics: a known J1 model recovered from one of its configurations, the result folder, meV.

Ground truth: configurations drawn by Monte Carlo at a known J1 (the estimate must lie within 3
standard errors of it), Onsager's transition t_c = 2.269 |J1| of the square-lattice Ising model at
c = 1/2 (clustering J1 < 0 maps onto the ferromagnet with K = -J1), and k_B = 0.0861733 meV/K.
"""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.errors import InputError, OutputExistsError
from atomine.thermo.montecarlo import sample
from atomine.workflows.thermo import K_B_MEV_PER_K, SUMMARY_KEYS, learn_thermodynamics

J1_TRUE = -0.25
ONSAGER = 2.0 / np.log(1.0 + np.sqrt(2.0))
T_FREEZE = 1000.0


def draw_occupancy(n: int, c: float, couplings, seed: int) -> np.ndarray:
    """(n, n) occupancy (1 dopant, 0 host) equilibrated at t = 1 from a random start."""
    rng = np.random.default_rng(seed)
    spins = -np.ones(n * n, dtype=np.int8)
    spins[rng.choice(n * n, size=int(round(c * n * n)), replace=False)] = 1
    res = sample(spins.reshape(n, n), couplings, n_chains=1, n_sweeps=1, n_equilibrate=600, seed=seed)
    return (res.final[0] > 0).astype(np.int8)


@pytest.fixture(scope="module")
def j1_run():
    occ = draw_occupancy(48, 0.5, (J1_TRUE,), seed=3)
    before = occ.copy()
    result = learn_thermodynamics(occ, model="j1", bootstrap=4, t_freeze_k=T_FREEZE, seed=1)
    assert np.array_equal(occ, before)  # inputs are never modified
    return occ, result


def test_a_known_j1_model_is_recovered_within_three_standard_errors(j1_run):
    _, result = j1_run
    p = result.summary["parameters"]["J1"]
    assert p["stderr"] > 0 and abs(p["value"] - J1_TRUE) <= 3 * p["stderr"]
    assert p["stderr"] < 0.05  # 2,200 sites pin a nearest-neighbour coupling to a few hundredths
    assert result.summary["model"] == "j1" and result.selection is None
    assert [r["model"] for r in result.summary["candidates"]] == ["j1"] and result.summary["candidates"][0]["chosen"]
    assert result.summary["lattice"] == "square" and result.summary["composition"] == pytest.approx(0.5)
    assert len(result.fit.bootstrap) == 4 and p["stderr_bootstrap"] > 0


def test_transition_of_the_fitted_model_is_onsagers(j1_run):
    _, result = j1_run
    j1 = result.summary["parameters"]["J1"]["value"]
    tr = result.transition
    assert tr["kind"] == "miscibility"  # J1 < 0: like neighbours, phase separation on cooling
    # a 32 x 32 canonical box puts the heat-capacity peak within a few % of the infinite lattice's t_c
    assert tr["temperature"] == pytest.approx(ONSAGER * abs(j1), rel=0.08)
    assert tr["temperature_k"] == pytest.approx(tr["temperature"] * T_FREEZE)
    scan = result.scan
    assert 1.0 in scan["temperature"].to_numpy() and scan["temperature"].is_monotonic_increasing
    assert scan["temperature"].min() < tr["temperature"] < scan["temperature"].max()
    # clustering: positive Warren-Cowley alpha_1 that grows on cooling; the model at t = 1 matches the image
    assert np.all(np.diff(scan["sro_1"].to_numpy()) < 0.05) and scan["sro_1"].iloc[0] > 0.5
    at_one = float(scan.loc[scan["temperature"] == 1.0, "sro_1"].iloc[0])
    assert at_one == pytest.approx(result.details["sro_image"][0], abs=0.04)
    ds = result.phase_diagram
    assert ds.sizes == {"composition": 9, "temperature": 12}
    # zero field: c and 1 - c are the same model
    np.testing.assert_allclose(ds["transition_temperature"].values, ds["transition_temperature"].values[::-1])


def test_mev_conversion(j1_run):
    _, result = j1_run
    p = result.summary["parameters"]["J1"]
    scale = K_B_MEV_PER_K * T_FREEZE  # 86.17 meV per k_B T_f at 1000 K
    assert p["meV"]["value"] == pytest.approx(p["value"] * scale, rel=1e-12)
    assert p["meV"]["stderr"] == pytest.approx(p["stderr"] * scale, rel=1e-12)
    assert p["meV"]["stderr_bootstrap"] == pytest.approx(p["stderr_bootstrap"] * scale, rel=1e-12)
    assert result.summary["t_freeze_k"] == T_FREEZE and "meV" in result.summary["units"]


def test_landscape_is_lowest_near_the_estimate(j1_run):
    _, result = j1_run
    land = result.landscape
    assert land.dims == ("J1",) and np.isfinite(land.values).mean() > 0.8
    est = result.summary["parameters"]["J1"]
    j_min = float(land["J1"][int(np.nanargmin(land.values))])
    assert abs(j_min - est["value"]) <= 1.5 * est["stderr"]
    # s^2 grows away from the minimum by about (delta / stderr)^2 / (4 n_eff) per unit chi^2
    chi2 = 4 * land.attrs["n_eff"] * land.values
    assert np.nanmax(chi2[[0, -1]]) - np.nanmin(chi2) > 5


def test_configurations_are_the_models_most_probable_classes(j1_run):
    _, result = j1_run
    confs = result.configurations
    probs = [c["probability"] for c in confs]
    assert len(confs) == 10 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    # clustering: the uniform 3x3 blocks are far more likely than in the random alloy (1 / 2**9 each at c = 1/2),
    # and at c = 1/2 without a field all-host and all-dopant are equally likely (sigma -> -sigma)
    desc, q = result.config_descriptor, result.config_probabilities
    host, dopant = (q[desc.labels.index(lab)] for lab in ("c=0 n1=0 n2=0", "c=1 n1=4 n2=4"))
    assert host * 2**9 > 5 and dopant * 2**9 > 5
    assert host == pytest.approx(dopant, rel=0.25)
    for c in confs:  # the model reproduces the image's own local configurations
        assert c["probability_image"] == pytest.approx(c["probability"], abs=0.015)


def test_save_writes_the_result_folder(j1_run, tmp_path):
    _, result = j1_run
    out = result.save(tmp_path / "t", report=lambda res, p: p.write_text("<html></html>"))
    names = {p.name for p in out.iterdir()}
    assert names == {"thermo.json", "histograms.csv", "scan.csv", "candidates.csv", "result.zarr",
                     "configurations.xyz", "provenance.json", "report.html"}
    summary = json.loads((out / "thermo.json").read_text())
    assert tuple(summary) == SUMMARY_KEYS
    assert set(summary["parameters"]["J1"]) == {"value", "stderr", "stderr_bootstrap", "meV"}
    assert summary["chi2_per_dof"] == pytest.approx(summary["chi2"] / summary["dof"])
    hist = pd.read_csv(out / "histograms.csv")
    assert list(hist.columns) == ["class_index", "label", "bin", "count_image", "p_image", "q_model"]
    assert hist["count_image"].sum() == summary["n_sites"] and hist["q_model"].sum() == pytest.approx(1.0)
    ds = xr.open_zarr(out / "result.zarr")
    occ, _ = j1_run
    assert np.array_equal(ds["occupancy"].values, np.where(occ == 1, 1, -1))
    assert {"s2_landscape", "phase_heat_capacity", "phase_transition_temperature"} <= set(ds.data_vars)
    xyz = (out / "configurations.xyz").read_text().splitlines()
    assert xyz[0] == "9" and "probability=" in xyz[1]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["workflow"].endswith("learn_thermodynamics") and "thermo.json" in prov["outputs"]
    assert prov["inputs"]["atoms"]["kind"] == "occupancy array"
    with pytest.raises(OutputExistsError):
        result.save(out)


def test_vacancies_and_unknown_sites_are_masked():
    occ = draw_occupancy(24, 0.4, (-0.2,), seed=5).astype(np.int8)
    occ[::5, ::7] = -1  # vacancy / unknown sites
    result = learn_thermodynamics(occ, model="j1", bootstrap=0, phase=False, seed=2)
    assert result.lattice.n_sites == int(np.count_nonzero(occ >= 0))
    assert result.summary["composition"] == pytest.approx(np.count_nonzero(occ == 1) / np.count_nonzero(occ >= 0))
    assert len(result.scan) == 0 and result.transition["kind"] == "not computed"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"t_freeze_k": -5.0}, "t_freeze_k"),
    ({"bootstrap": 1}, "bootstrap=1"),
    ({"model": "j4"}, "unknown model"),
    ({"model": "j1", "site_field": np.zeros((8, 8))}, "no field term"),
    ({"seed": -1}, "seed"),
])
def test_bad_parameters_are_refused_before_the_work(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        learn_thermodynamics(np.zeros((8, 8), dtype=int), **kwargs)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="single species"):
        learn_thermodynamics(np.zeros((16, 16), dtype=int), model="j1")
    with pytest.raises(InputError, match="does not exist"):
        learn_thermodynamics(tmp_path / "missing.parquet")
    with pytest.raises(InputError, match="holds no atoms.parquet"):
        learn_thermodynamics(tmp_path)
    with pytest.raises(InputError, match="occupancy array"):
        learn_thermodynamics({"a": 1})


def test_demo_runs_on_the_preset_drawn_from_a_known_model():
    from atomine.simulate import make
    from atomine.workflows.demo_analyses import DATASET_ANALYSES, THERMO_PRESETS, DatasetContext, thermo_analysis

    assert thermo_analysis in DATASET_ANALYSES
    assert thermo_analysis(DatasetContext("haadf-phases", "", 0, None)) is None
    (kind,) = THERMO_PRESETS
    model = make(kind, seed=0).truth.parameters["lattice_model"]
    # the demo sets its estimate beside these couplings: clustering, as Ca segregation in LCMO
    assert model["names"] == ["J1", "J2"] and all(j < 0 for j in model["couplings"])


def test_auto_chooses_among_the_nested_models_and_bootstraps_the_choice():
    from atomine.report.thermo_report import candidates_table

    occ = draw_occupancy(32, 0.4, (-0.2, -0.06), seed=5)
    result = learn_thermodynamics(occ, bootstrap=2, phase=False, seed=0)
    rows = result.summary["candidates"]
    assert [r["model"] for r in rows] == ["j1", "j1j2", "j1j2j3"] and sum(r["chosen"] for r in rows) == 1
    chosen = next(r["model"] for r in rows if r["chosen"])
    assert result.summary["model"] == chosen == result.selection.chosen and result.summary["reason"]
    # the reported estimate is the selection's own (its scores are the table's), with the bootstrap spread
    np.testing.assert_array_equal(result.fit.value, result.selection.best.value)
    assert result.fit.stderr_bootstrap is not None and len(result.fit.bootstrap) == 2
    assert list(candidates_table(result)["chosen"]) == ["yes" if r["chosen"] else "" for r in rows]
