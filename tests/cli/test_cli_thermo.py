"""``atomine thermo ATOMS --out DIR``: the result folder from an atom table of known couplings; the error contract."""

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error

from atomine.thermo.montecarlo import sample
from atomine.workflows.thermo import SUMMARY_KEYS

A_NM = 0.39
J1_TRUE = -0.3


def atom_table(occupancy: np.ndarray) -> pd.DataFrame:
    """An atom table as 'atomine atoms' writes it: the A sublattice (0) holds host, dopant and vacancy rows
    (occupancy 0, 1, -1); the B sublattice (1), at the cell centres, holds host rows only."""
    i, j = np.indices(occupancy.shape)
    i, j, occ = i.ravel(), j.ravel(), occupancy.ravel()
    a = pd.DataFrame({"x": A_NM * j, "y": A_NM * i, "site_i": i, "site_j": j, "sublattice": 0,
                      "cls": np.select([occ == 1, occ == 0], ["dopant", "host"], "vacancy")})
    b = pd.DataFrame({"x": A_NM * (j + 0.5), "y": A_NM * (i + 0.5), "site_i": i, "site_j": j, "sublattice": 1,
                      "cls": "host"})
    return pd.concat([a, b], ignore_index=True)


@pytest.fixture(scope="module")
def atoms_folder(tmp_path_factory):
    """A result folder of 'atomine atoms' (atoms.parquet) whose A-site dopants follow J1 = -0.3, c = 0.4."""
    n = 32
    rng = np.random.default_rng(7)
    spins = -np.ones(n * n, dtype=np.int8)
    spins[rng.choice(n * n, size=int(0.4 * n * n), replace=False)] = 1
    res = sample(spins.reshape(n, n), (J1_TRUE,), n_chains=1, n_sweeps=1, n_equilibrate=600, seed=7)
    occ = (res.final[0] > 0).astype(np.int8)
    occ[3, 5] = occ[20, 11] = -1  # two vacancies: masked, not host
    folder = tmp_path_factory.mktemp("atoms")
    atom_table(occ).to_parquet(folder / "atoms.parquet", index=False)
    return folder, occ


def test_atom_table_to_thermo_json(cli, atoms_folder, tmp_path):
    folder, occ = atoms_folder
    out = tmp_path / "t"
    result = cli("thermo", folder / "atoms.parquet", "--out", out, "--model", "j1", "--bootstrap", "0",
                 "--no-phase", "--t-freeze", "900")
    assert result.exit_code == 0, result.stderr
    assert "square lattice" in result.stdout and "meV" in result.stdout
    assert {"thermo.json", "histograms.csv", "scan.csv", "candidates.csv", "result.zarr", "configurations.xyz",
            "provenance.json", "report.html"} == {p.name for p in out.iterdir()}
    s = json.loads((out / "thermo.json").read_text())
    assert tuple(s) == SUMMARY_KEYS
    j1 = s["parameters"]["J1"]
    assert abs(j1["value"] - J1_TRUE) <= 3 * j1["stderr"]
    assert j1["meV"]["value"] == pytest.approx(j1["value"] * 0.0861733 * 900)
    # the A sublattice (the dopants' own) was modelled; the vacancies left the model
    assert s["lattice"] == "square" and s["composition"] == pytest.approx((occ == 1).sum() / (occ >= 0).sum())
    assert s["transition"]["kind"] == "not computed" and s["t_freeze_k"] == 900
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"]["atoms"]["file"] == "atoms.parquet" and prov["parameters"]["bootstrap"] == 0
    # the lattice constant came from the positions: the exported structures are in Angstrom
    xyz = (out / "configurations.xyz").read_text().splitlines()
    assert "a unknown" not in xyz[1]
    first = np.array([ln.split()[1:3] for ln in xyz[2:11]], dtype=float)
    assert np.linalg.norm(first[1] - first[0]) == pytest.approx(10 * A_NM, rel=0.01)
    html = (out / "report.html").read_text()
    assert "Model choice" in html and "not computed" in html


def test_result_folder_of_atomine_atoms_is_accepted(cli, atoms_folder, tmp_path):
    folder, _ = atoms_folder
    out = tmp_path / "t"
    result = cli("thermo", folder, "--out", out, "--model", "j1", "--bootstrap", "2", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    assert "miscibility transition at T/T_f" in result.stdout
    s = json.loads((out / "thermo.json").read_text())
    assert s["transition"]["temperature"] > 0 and "stderr_bootstrap" in s["parameters"]["J1"]
    assert len(pd.read_csv(out / "scan.csv")) >= 10


def test_missing_file(cli, tmp_path):
    assert_user_error(cli("thermo", tmp_path / "nope.parquet", "--out", tmp_path / "t"), "does not exist")
    assert not (tmp_path / "t").exists()


def test_single_species_table(cli, tmp_path):
    table = atom_table(np.zeros((12, 12), dtype=np.int8))
    table = table[table["sublattice"] == 0]  # one sublattice, every site host: nothing to model
    table.to_parquet(tmp_path / "atoms.parquet", index=False)
    assert_user_error(cli("thermo", tmp_path / "atoms.parquet", "--out", tmp_path / "t"), "single species")
    assert not (tmp_path / "t").exists()


def test_sublattice_without_dopants(cli, atoms_folder, tmp_path):
    folder, _ = atoms_folder
    assert_user_error(cli("thermo", folder, "--out", tmp_path / "t", "--sublattice", "1"), "single species")


@pytest.mark.parametrize("args, fragment", [
    (("--model", "j4"), "--model"),
    (("--lattice", "hexagonal"), "--lattice"),
    (("--bootstrap", "1"), "--bootstrap"),
    (("--t-freeze", "-3"), "--t-freeze"),
    (("--interface", "0,0,1"), "--interface"),
    (("--interface", "1,1,1,1"), "distinct"),
    (("--interface", "0,0,5,0", "--field-decay", "0"), "decay_nm"),
    (("--interface", "0,0,5,0", "--model", "j1j2"), "no field term"),
])
def test_bad_options(cli, atoms_folder, tmp_path, args, fragment):
    folder, _ = atoms_folder
    assert_user_error(cli("thermo", folder, "--out", tmp_path / "t", *args), fragment)


def test_not_a_parquet_table(cli, tmp_path):
    (tmp_path / "atoms.csv").write_text("x,y\n1,2\n")
    assert_user_error(cli("thermo", tmp_path / "atoms.csv", "--out", tmp_path / "t"), "Parquet")


def test_existing_folder_is_refused_before_the_work(cli, atoms_folder, tmp_path):
    folder, _ = atoms_folder
    (tmp_path / "taken").mkdir()
    assert_user_error(cli("thermo", folder, "--out", tmp_path / "taken"), "exists")
