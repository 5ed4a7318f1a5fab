"""The unmixing report: spectra with their features, abundances on one 0..1 scale, truth and scores, size."""

import numpy as np
import pytest

from atomine.errors import OutputExistsError
from atomine.report.unmix_report import score_table, unmix_sections, write_unmix_report
from atomine.report import render_html
from atomine.simulate import make
from atomine.workflows import unmix_scores, unmix_spectra


@pytest.fixture(scope="module")
def cits_run():
    sim = make("cits-grid-mixed", seed=0)
    return unmix_spectra(sim.data, method="fcls", n_components=3), sim


def test_sections_with_truth_put_the_scores_first(cits_run):
    result, sim = cits_run
    sections = unmix_sections(result, truth=sim)
    titles = [s.title for s in sections]
    assert titles[0] == "Ground-truth scores"
    assert {"Component spectra", "Abundance maps", "Residual and preprocessing maps", "Component annotations",
            "Preprocessing and number of components"} <= set(titles)
    html = render_html("t", sections)
    assert html.count("data:image/png;base64,") >= 4  # spectra, abundances, truth abundances, residual


def test_score_table_reports_the_targets(cits_run):
    result, sim = cits_run
    scores = unmix_scores(result, sim)
    table = score_table(scores)
    row = table[table.score == "abundance RMSE"].iloc[0]
    assert float(row.value) == pytest.approx(scores["abundance_rmse"], abs=1e-4) and row.target == "<= 0.05"
    assert (table.score.str.startswith("spectral angle")).sum() == 3
    assert table[table.score == "all targets met"].value.iloc[0] == "yes"


def test_bayes_intervals_add_uncertainty_maps(cits_run):
    result, _ = cits_run
    maps = result.maps.copy()
    maps["abundance_lo"] = np.clip(maps["abundance"] - 0.05, 0, 1)
    maps["abundance_hi"] = np.clip(maps["abundance"] + 0.05, 0, 1)
    maps["endmember_lo"] = maps["endmember"] * 0.95
    maps["endmember_hi"] = maps["endmember"] * 1.05
    fake = type(result)(maps, result.annotations, result.summary, result.parameters, result.inputs, result.started,
                        result.elapsed_s)
    html = render_html("t", unmix_sections(fake))
    assert "width of the 95 % credible interval" in html and html.count("data:image/png;base64,") == 4


def test_report_file_is_small_and_refuses_to_overwrite(cits_run, tmp_path):
    result, sim = cits_run
    path = write_unmix_report(result, tmp_path / "report.html", truth=sim)
    assert path.stat().st_size < 1_000_000  # the demo report must not grow by more than ~1 MB per dataset
    html = path.read_text()
    assert "gap" in html or "annotate" in html  # the semiconductor's gap is drawn and tabulated (when annotated)
    with pytest.raises(OutputExistsError):
        write_unmix_report(result, path)
