"""The demo's segmentation analysis: only on the STEM presets built for it, scored against their truth."""

import pickle

import pytest

from atomine.report import render_html
from atomine.report.demo_report import RENDERERS, dataset_section
from atomine.workflows import run_demo
from atomine.workflows.demo_analyses import (DATASET_ANALYSES, SEGMENTATION_PRESETS, DatasetContext,
                                             segmentation_analysis)
from atomine.workflows.segment_truth import segmentation_scores


def test_it_is_a_demo_analysis_with_a_renderer():
    assert segmentation_analysis in DATASET_ANALYSES
    assert "segmentation_analysis" in RENDERERS
    assert set(SEGMENTATION_PRESETS) == {"haadf-phases", "haadf-grains", "haadf-dislocation"}


@pytest.mark.parametrize("kind", ["haadf-perovskite", "eels-si", "cits-grid", "phases"])
def test_other_datasets_are_skipped(kind, local_presets):
    sim = local_presets["lattice"][1](0)  # any simulation: the kind alone decides, before any work
    assert segmentation_analysis(DatasetContext(kind, "", 0, sim)) is None


@pytest.fixture(scope="module")
def grains_run():
    result = run_demo(seed=0, kinds=["haadf-grains"], analyses=[segmentation_analysis])
    return result.datasets[0]


def test_grains_summary_meets_the_phase_map_target(grains_run):
    (output,) = grains_run.outputs
    assert output.name == "segmentation_analysis"
    summary = output.summary["segmentation"]
    assert summary["scores"]["ari"] >= 0.9
    assert summary["n_components"] == summary["scores"]["n_regions_true"] == 3
    # the summary's scores are those of the result it keeps for the report
    again = segmentation_scores(output.extra["segment_result"], grains_run.simulation)
    assert again["ari"] == summary["scores"]["ari"]


def test_maps_lie_on_the_data_grid_and_pickle(grains_run):
    (output,) = grains_run.outputs
    data = grains_run.simulation.data
    assert set(output.maps) == {"segment_phase", "segment_abundance", "segment_defect", "segment_rotation",
                                "segment_strain"}
    for m in output.maps.values():
        assert (m.x.values == data.x.values).all() and (m.y.values == data.y.values).all()
    assert output.maps["segment_rotation"].attrs["units"] == "deg"
    assert {"kind", "x", "y", "bx", "by"} <= set(output.tables["defects"].columns)
    back = pickle.loads(pickle.dumps(output))  # the report draws datasets in worker processes
    assert back.extra["segment_result"].summary == output.extra["segment_result"].summary


def test_demo_section_shows_the_segmentation_next_to_truth(grains_run):
    ctx = DatasetContext(grains_run.kind, grains_run.description, 0, grains_run.simulation)
    page = render_html("demo", [dataset_section(ctx, grains_run.outputs)])
    assert ">Phase segmentation</h" in page and ">Ground-truth scores</h" in page
    assert "ground-truth regions: x (nm) / y (nm)" in page
