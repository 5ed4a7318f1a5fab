"""The demo's atom analysis: only on the column-resolved STEM presets, scored against their truth."""

import pickle

import pytest

from atomine.report import render_html
from atomine.report.demo_report import RENDERERS, dataset_section
from atomine.workflows import run_demo
from atomine.workflows.demo_analyses import ATOM_PRESETS, DATASET_ANALYSES, DatasetContext, atoms_analysis


def test_it_is_a_demo_analysis_with_a_renderer():
    assert atoms_analysis in DATASET_ANALYSES
    assert "atoms_analysis" in RENDERERS
    assert set(ATOM_PRESETS) == {"haadf-perovskite", "abf-perovskite", "haadf-polar", "haadf-mos2", "stm-lcmo"}


def test_stm_demo_scores_the_sub_surface_dopants():
    run = run_demo(seed=0, kinds=["stm-lcmo"], analyses=[atoms_analysis]).datasets[0]
    (output,) = run.outputs
    result = output.extra["result"]
    assert result.parameters["subsurface"] and result.parameters["noise"] == "gaussian"
    scores = output.summary["atoms"]["scores"]
    assert scores["subsurface"]["dopants"]["f1"] >= 0.95
    assert scores["sublattice_agreement"] >= 0.995


@pytest.mark.parametrize("kind", ["haadf-grains", "eels-si", "cits-grid", "lattice"])
def test_other_datasets_are_skipped(kind, local_presets):
    sim = local_presets["lattice"][1](0)  # any simulation: the kind alone decides, before any work
    assert atoms_analysis(DatasetContext(kind, "", 0, sim)) is None


@pytest.fixture(scope="module")
def perovskite_run():
    return run_demo(seed=0, kinds=["haadf-perovskite"], analyses=[atoms_analysis]).datasets[0]


def test_perovskite_scores_in_the_summary(perovskite_run):
    (output,) = perovskite_run.outputs
    assert output.name == "atoms_analysis"
    scores = output.summary["atoms"]["scores"]
    assert scores["sublattice_agreement"] >= 0.995
    assert scores["dopants"]["f1"] >= 0.9
    rms = {int(k): p["rms_pm"] for k, p in scores["position"].items()}
    assert rms[0] < 5.0 and rms[1] < 5.0  # Sr/La and TiO columns
    assert rms[2] < 20.0 and rms[3] < 20.0  # faint O columns, completed at their lattice sites
    assert {"x", "y", "pos_err", "sublattice", "cls", "p_cls", "fit_ok"} <= set(output.tables["atoms"].columns)
    assert {"shell", "alpha", "ci_low", "ci_high"} <= set(output.tables["sro"].columns)
    back = pickle.loads(pickle.dumps(output))  # the report draws datasets in worker processes
    assert back.extra["result"].summary["n_columns"] == output.summary["atoms"]["n_columns"]


def test_demo_section_shows_the_atoms_next_to_truth(perovskite_run):
    ctx = DatasetContext(perovskite_run.kind, perovskite_run.description, 0, perovskite_run.simulation)
    page = render_html("demo", [dataset_section(ctx, perovskite_run.outputs)])
    assert ">Atom columns</h" in page and ">Ground-truth scores</h" in page
    assert "ground-truth columns: x (nm) / y (nm)" in page
