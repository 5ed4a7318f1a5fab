"""analyze_atoms end to end against simulated ground truth (the workflow; its CLI and report come later)."""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from atomine.errors import InputError
from atomine.simulate import make
from atomine.workflows.atoms import analyze_atoms
from atomine.workflows.atoms_truth import truth_columns

CONTRACT = ["x", "y", "x_px", "y_px", "x_err", "y_err", "pos_err", "amplitude", "sigma_x", "sigma_y", "theta",
            "background", "sublattice", "site_i", "site_j", "cls", "p_cls", "fit_ok"]


def _matched(result, sim):
    """Fitted atoms on lattice sites and the nearest true column of each."""
    truth = sim.truth.tables["atoms"]
    atoms = result.atoms[(result.atoms.sublattice >= 0) & (result.atoms.cls != "vacancy")]
    dist, idx = cKDTree(truth[["x", "y"]].to_numpy()).query(atoms[["x", "y"]].to_numpy())
    return atoms, truth.iloc[idx], dist


@pytest.fixture(scope="module")
def perovskite():
    sim = make("haadf-perovskite", seed=0)
    return sim, analyze_atoms(sim.data)


def test_sublattices_and_dopants_match_the_simulation(perovskite):
    sim, r = perovskite
    atoms, truth, dist = _matched(r, sim)
    cations = atoms.sublattice.isin([0, 1]).to_numpy()
    assert np.all(dist[cations] < 0.05)  # every indexed cation column is a true column
    assert np.mean(dist[~cations] < 0.05) >= 0.995  # and the faint O columns nearly all
    table = pd.crosstab(atoms.sublattice.to_numpy(), truth.sublattice.to_numpy())
    assert np.trace(table.to_numpy()) / table.to_numpy().sum() >= 0.995  # sublattice 0 = brightest = Sr/La
    cls = atoms.cls.isin(["host", "dopant"]).to_numpy()
    found, true = atoms.cls.to_numpy()[cls] == "dopant", truth.cls.to_numpy()[cls] == "dopant"
    f1 = 2 * np.sum(found & true) / (np.sum(found) + np.sum(true))
    assert f1 >= 0.95  # La vs Sr differ by ~9 host sd in the disk intensity: the issue's >= 5 sd regime
    assert np.allclose(r.lattice["a1_nm"], [0.3905, 0.0], atol=0.002)
    assert len(r.sro) == 3 and set(r.sro.sublattice) == {0}  # La on the A sites only
    # the faint O columns, seeded at only ~8 % of their sites, become two complete sublattices
    sparse = r.lattice["sparse_sublattices"]
    assert sum(k["kept"] for k in sparse) == 2
    o = r.atoms[r.atoms.sublattice.isin([2, 3]) & r.atoms.imaged]
    true_o = truth_columns(sim.truth.tables["atoms"], sim.data).query("sublattice >= 2")
    assert len(o) >= 0.97 * len(true_o) and (r.atoms.sublattice == -1).sum() == 0
    # faint O sites whose refit fails but whose disk shows a column are unknown, not vacancies
    assert ((r.atoms.sublattice >= 2) & (r.atoms.cls == "vacancy")).sum() <= 2
    assert set(truth.sublattice[atoms.sublattice.isin([2, 3]).to_numpy()]) == {2, 3}  # all on true O sites


def test_polar_domains_come_out_at_the_simulated_displacement():
    sim = make("haadf-polar", seed=0)
    r = analyze_atoms(sim.data)
    pol = r.polarisation[r.polarisation.ok]
    left, right = pol[pol.x < 5.12].dy_pm.median(), pol[pol.x > 5.12].dy_pm.median()
    assert left == pytest.approx(-15.0, abs=1.0) and right == pytest.approx(15.0, abs=1.0)
    assert np.median(pol.dy_err_pm) < 5.0


def test_saved_folder_holds_the_atom_table(perovskite, tmp_path):
    _, r = perovskite
    out = r.save(tmp_path / "atoms")
    table = pd.read_parquet(out / "atoms.parquet")
    assert set(CONTRACT) <= set(table.columns)
    assert set(table.cls.unique()) <= {"host", "dopant", "vacancy", "unknown"}
    assert {"sro.parquet", "result.zarr", "provenance.json", "summary.json"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize("data, fragment", [
    (np.full((128, 128), 5.0), "lattice|flat|blank|no "),
    (np.zeros((4, 32, 32)), "2-D"),
])
def test_bad_images_are_refused(data, fragment):
    with pytest.raises(InputError, match=fragment):
        analyze_atoms(data)


def test_empty_columns_of_mos2_are_the_vacancies():
    sim = make("haadf-mos2", seed=0)
    r = analyze_atoms(sim.data)
    span = float(sim.data.x[-1])
    truth = sim.truth.tables["atoms"]
    true_vac = truth[(truth.cls == "vacancy") & truth.x.between(0.05, span - 0.05) & truth.y.between(0.05, span - 0.05)]
    found = r.atoms[r.atoms.cls == "vacancy"]
    recall = np.mean(cKDTree(found[["x", "y"]].to_numpy()).query(true_vac[["x", "y"]].to_numpy())[0] < 0.1)
    precision = np.mean(cKDTree(true_vac[["x", "y"]].to_numpy()).query(found[["x", "y"]].to_numpy())[0] < 0.1)
    assert len(true_vac) > 50 and recall == 1.0 and precision >= 0.95
    assert found.p_cls.min() >= 0.9  # an empty S2 site is clearly empty
    # W on Mo sites: the dopants of the brightest sublattice
    mo = r.atoms[(r.atoms.sublattice == 0) & r.atoms.cls.isin(["host", "dopant"])]
    idx = cKDTree(truth[["x", "y"]].to_numpy()).query(mo[["x", "y"]].to_numpy())[1]
    found_d, true_d = (mo.cls == "dopant").to_numpy(), (truth.cls.to_numpy()[idx] == "dopant")
    assert 2 * np.sum(found_d & true_d) / (found_d.sum() + true_d.sum()) >= 0.95
    # no dopants on the S2 sublattice: its skewed intensity tail is no second species
    assert not ((r.atoms.sublattice == 1) & (r.atoms.cls == "dopant")).any()


@pytest.mark.parametrize("preset", ["stm-lcmo", "stm-lcmo-segregated"])
def test_stm_dopants_are_found_below_the_oxygen_hollows(preset):
    """The seed case: Ca under the LCMO (001) surface shows only as bumps between the oxygen."""
    from atomine.workflows.atoms_truth import atom_scores

    sim = make(preset, seed=0)
    r = analyze_atoms(sim.data)  # STM: gaussian noise and sub-surface sites by default
    assert r.parameters["noise"] == "gaussian" and r.parameters["subsurface"]
    sub = r.summary["subsurface"]
    assert sub["sublattice"] == 2  # after the two imaged oxygen sublattices
    sites = r.atoms[r.atoms.sublattice == 2]
    assert not sites.imaged.any() and not sites.fit_ok.any()
    assert set(r.atoms[r.atoms.imaged & (r.atoms.sublattice >= 0)].cls) == {"host"}
    scores = atom_scores(r, sim)["subsurface"]
    assert scores["matched"] >= 0.97 * scores["true_sites"]  # the A sites, not the equally hollow Mn sites
    assert scores["dopants"]["f1"] >= 0.95
    assert scores["vacancy_sites"]["recall"] >= 0.8 and scores["vacancy_sites"]["precision"] >= 0.8
    alpha = r.sro[r.sro.shell == 1].iloc[0]
    true_alpha = sim.truth.parameters["alpha1_in_image"]
    assert abs(alpha.alpha - true_alpha) < 0.1  # random ~0, clustered ~0.6


def test_abf_has_no_false_dopants_and_few_false_vacancies():
    """ABF: La barely changes a dark A column; skewed O dips must not become a dopant class, and
    O columns the seeds missed are refitted before an empty site is called a vacancy."""
    sim = make("abf-perovskite", seed=0)
    r = analyze_atoms(sim.data, dark_columns=True)
    assert r.summary["lattice"]["atoms_per_sublattice"].__len__() == 4
    assert not (r.atoms.cls == "dopant").any()
    n_true = int((sim.truth.tables["atoms"].cls == "vacancy").sum())
    assert (r.atoms.cls == "vacancy").sum() <= 2 * n_true + 2
    assert (r.atoms.found_by == "lattice").sum() > 50  # missed O columns recovered at their sites


def test_noise_without_a_lattice_is_refused_or_explained():
    """Pure Poisson noise: no lattice of columns, so a clear error (never a made-up lattice)."""
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="lattice|flat|column|period"):
        analyze_atoms(rng.poisson(100.0, (256, 256)).astype(float))


@pytest.mark.parametrize("separation, fragment", [(-1.0, "separation"), (0.0, "separation"),
                                                  (np.nan, "separation"), (1e4, "separation|larger|image")])
def test_absurd_separation_is_refused(perovskite, separation, fragment):
    sim, _ = perovskite
    with pytest.raises(InputError, match=fragment):
        analyze_atoms(sim.data, separation)
