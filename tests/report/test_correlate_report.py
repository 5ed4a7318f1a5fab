"""The correlation report of a real run on a small simulated HAADF + EELS pair, graded against its truth."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from atomine.correlate import AffineTransform
from atomine.errors import InputError, OutputExistsError
from atomine.report.correlate_report import correlate_sections, links_table, write_correlate_report
from atomine.report.html import Figure, Section
from atomine.simulate.correlated_pair import simulate_pair
from atomine.workflows.correlate import correlate
from atomine.workflows.correlate_truth import correlate_scores, driver_ranks, registration_error_px


@pytest.fixture(scope="module")
def pair():
    sim = simulate_pair(seed=0, shape_si=(32, 32))
    result = correlate(sim.extra["HAADF"], xr.Dataset({"EELS": sim.data, "ADF": sim.extra["ADF"]}))
    return sim, result


@pytest.fixture(scope="module")
def page(pair, tmp_path_factory):
    sim, result = pair
    path = write_correlate_report(result, tmp_path_factory.mktemp("corr") / "report.html", truth=sim.truth.parameters)
    return path, path.read_text(encoding="utf-8")


def _sections(page_text: str) -> list[str]:
    return re.findall(r"<h[2-6]>([^<]*)</h[2-6]>", page_text)


def _table_after(page_text: str, heading: str) -> str:
    start = page_text.index(f">{heading}</h")
    return page_text[start:page_text.index("</table>", start)]


def test_report_has_every_section(page):
    path, text = page
    assert path.exists() and path.stat().st_size > 10_000
    titles = _sections(text)
    for title in ("Against ground truth", "Registration", "Links", "Top links", "Multivariate: CCA and PLS",
                  "Descriptors"):
        assert title in titles
    # the page is self-contained and small enough to sit inside the demo report
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', text))
    assert path.stat().st_size < 1_500_000


def test_links_table_lists_the_true_drivers_first(pair, page):
    sim, result = pair
    _, text = page
    links_html = _table_after(text, "Links")
    drivers = sim.truth.parameters["drivers"]
    assert drivers  # the driven preset has drivers to find
    for d in drivers:
        assert d in links_html
    scores = correlate_scores(result, sim.truth.parameters)
    assert scores["drivers_first"], scores["drivers"]
    assert all(r["rank"] <= len(drivers) and r["q"] < 0.01 for r in scores["drivers"])
    # the significant links are marked, the others not
    top = links_table(result)
    fdr = result.summary.get("fdr", 0.05)
    assert list(top["q < fdr"] == "yes") == list(result.links["q"].head(len(top)) < fdr)


def test_truth_table_reports_registration_below_a_fifth_of_a_pixel(pair, page):
    sim, result = pair
    _, text = page
    truth_html = _table_after(text, "Against ground truth")
    err = float(re.search(r"([0-9.]+) spectral px", truth_html).group(1))
    assert err < 0.2
    assert err == pytest.approx(registration_error_px(result, sim.truth.parameters["transform"]), abs=1e-4)
    assert "true drivers ranked first with q &lt; 0.01" in truth_html or "true drivers ranked first" in truth_html


def test_registration_error_is_exact_for_a_known_offset(pair):
    """An estimate off by half a spectral pixel reads back as 0.5 px."""
    sim, result = pair
    true = AffineTransform.from_dict(sim.truth.parameters["transform"])
    pitch = float(result.adf.x[1] - result.adf.x[0])
    # the estimate moved by half a spectral pixel along the spectral x axis, in the spectral frame
    moved = replace(result, transform=result.transform @ AffineTransform.from_params(shift_nm=(0.5 * pitch, 0.0)))
    assert registration_error_px(moved, result.transform.to_dict()) == pytest.approx(0.5, abs=1e-9)
    assert registration_error_px(result, true.to_dict()) < 0.2


def test_driver_ranks_on_a_hand_made_table():
    import pandas as pd

    links = pd.DataFrame({"structure": ["a_dopant_fraction", "noise", "strain_trace", "strain_trace"],
                          "property": ["abundance_1", "abundance_1", "abundance_1", "gap"],
                          "r": [0.8, 0.3, 0.6, 0.1], "q": [0.001, 0.002, 0.004, 0.5], "effect": [1.0, 2.0, 3.0, 4.0]})
    rows, prop = driver_ranks(links, ["strain_trace", "dopant_fraction"])
    assert prop == "abundance_1"
    assert [(r["descriptor"], r["rank"]) for r in rows] == [("strain_trace", 3), ("a_dopant_fraction", 1)]


def test_figures_are_described_with_physical_axes(pair):
    sim, result = pair
    sections = correlate_sections(result, truth=sim.truth.parameters)
    figures = {}

    def walk(blocks, where):
        for b in blocks:
            if isinstance(b, Section):
                walk(b.blocks, b.title)
            elif isinstance(b, Figure):
                figures.setdefault(where, []).append(b)
            elif hasattr(b, "blocks"):
                walk(b.blocks, where)

    for s in sections:
        walk(s.blocks, s.title)
    registration = figures["Registration"][0].alt
    assert "x (nm)" in registration and "y (nm)" in registration and "registered" in registration
    top = figures["Top links"]
    assert top and all("x (nm)" in f.alt and "r = " in f.alt for f in top)
    first = result.links.iloc[0]
    assert first["structure"] in top[0].alt and first["property"] in top[0].alt
    assert figures["Descriptors"] and all(f.alt for f in figures["Descriptors"])


def test_given_transform_and_bad_input(pair, tmp_path):
    sim, result = pair
    path = tmp_path / "r.html"
    path.write_text("keep")
    with pytest.raises(OutputExistsError):
        write_correlate_report(result, path)
    assert path.read_text() == "keep"
    with pytest.raises(InputError):
        correlate_sections(object())
    with pytest.raises(InputError):
        correlate_sections(result, top=0)
    with pytest.raises(InputError):
        correlate_scores(result, truth=["not", "a", "dict"])
    sections = correlate_sections(result)
    assert "Against ground truth" not in [s.title for s in sections]
    assert "registered" in sections[0].blocks[0].text
    given = correlate_sections(replace(result, registration=None))  # as after correlate(..., transform=T)
    assert "the transform was given" in given[0].blocks[0].text
    assert np.isfinite(result.links["q"]).all()
