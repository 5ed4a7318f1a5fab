"""The thermodynamics report: every section with its figure, the truth beside the estimate, size."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.errors import OutputExistsError
from atomine.report import render_html
from atomine.report.thermo_report import candidates_table, parameters_table, thermo_sections, write_thermo_report
from atomine.thermo.montecarlo import sample
from atomine.workflows.thermo import learn_thermodynamics

TRUTH = {"J1": -0.25, "J2": -0.05}
TITLES = ("Model choice", "Parameters", "Configuration histograms: image vs model", "s^2 landscape",
          "Short-range order and heat capacity vs temperature", "Phase diagram", "Most probable local configurations")


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(4)
    spins = -np.ones(32 * 32, dtype=np.int8)
    spins[rng.choice(spins.size, size=400, replace=False)] = 1
    res = sample(spins.reshape(32, 32), (TRUTH["J1"], TRUTH["J2"]), n_chains=1, n_sweeps=1, n_equilibrate=500, seed=4)
    return learn_thermodynamics((res.final[0] > 0).astype(int), model="j1j2", bootstrap=3, t_freeze_k=800.0, seed=4)


def _images(html: str) -> int:
    return html.count("data:image/png;base64,")


def test_every_section_has_its_figure(result):
    sections = thermo_sections(result)
    assert tuple(s.title for s in sections) == TITLES
    html = render_html("t", sections)
    # histograms, landscape, SRO + heat capacity, phase diagram, configurations
    assert _images(html) == 5
    for words in ("chosen: j1j2", "BIC", "bootstrap stderr", "value (meV)", "the image&#x27;s own SRO",
                  "2 stderr ellipses", "configurations.xyz"):
        assert words in html, words


def test_truth_comes_first_with_z_scores(result):
    sections = thermo_sections(result, truth=TRUTH)
    assert sections[0].title == "Ground truth: true couplings"
    table = parameters_table(result, TRUTH)
    p = result.summary["parameters"]
    for name, true in TRUTH.items():
        row = table[table.parameter == name].iloc[0]
        assert float(row["truth"]) == pytest.approx(true)
        assert float(row["z = (value - truth) / stderr"]) == pytest.approx((p[name]["value"] - true) /
                                                                         p[name]["stderr"], abs=0.01)
    # a true coupling the model lacks is shown as left out
    extra = parameters_table(result, {**TRUTH, "J3": 0.01})
    assert extra[extra.parameter == "J3"]["value (k_B T_f)"].iloc[0] == "not in model (0)"
    assert _images(render_html("t", sections)) == 5


def test_candidates_table_marks_the_chosen_model(result):
    table = candidates_table(result)
    assert list(table["model"]) == ["j1j2"] and table["chosen"].iloc[0] == "yes"
    assert float(table["BIC"].iloc[0]) == pytest.approx(result.fit.chi2 + 2 * np.log(result.fit.n_eff), abs=0.01)


def test_without_phase_and_with_a_one_coupling_landscape(result):
    lean = dataclasses.replace(result, scan=pd.DataFrame(), phase_diagram=xr.Dataset(),
                               transition={"temperature": None, "kind": "not computed", "method": ""},
                               landscape=result.landscape.isel(J2=10, drop=True))
    sections = thermo_sections(lean)
    assert tuple(s.title for s in sections) == TITLES
    html = render_html("t", sections)
    assert html.count("not computed") >= 2 and _images(html) == 3


def test_report_file_is_small_and_refuses_to_overwrite(result, tmp_path):
    path = write_thermo_report(result, tmp_path / "report.html", truth=TRUTH)
    assert path.stat().st_size < 1_000_000
    assert "atomine thermodynamics" in path.read_text()
    with pytest.raises(OutputExistsError):
        write_thermo_report(result, path)
