"""The atom-analysis report: every section, calibrated figures, and truth scores equal to an independent count."""

import html
import re

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from atomine.errors import OutputExistsError
from atomine.report import atoms_sections, render_html, write_atoms_report
from atomine.simulate import make
from atomine.workflows.atoms import analyze_atoms

SECTIONS = ("Atom columns", "Vector pair distribution function", "Short-range order", "Order parameters",
            "Atom analysis summary")


@pytest.fixture(scope="module")
def perovskite():
    sim = make("haadf-perovskite", seed=0)
    return sim, analyze_atoms(sim.data)


@pytest.fixture(scope="module")
def page(perovskite, tmp_path_factory):
    sim, result = perovskite
    path = write_atoms_report(result, tmp_path_factory.mktemp("atoms") / "report.html", sim.data, truth=sim)
    return path, path.read_text(encoding="utf-8")


def _cell(page: str, row: str) -> str:
    m = re.search(rf"<td>{re.escape(html.escape(row))}</td>\s*<td>([^<]*)</td>", page)
    assert m, f"no table row {row!r}"
    return m.group(1)


def test_report_has_every_section_with_nm_axes(page):
    path, text = page
    for title in SECTIONS + ("Ground-truth scores",):
        assert f">{html.escape(title)}</h" in text
    alts = [html.unescape(a) for a in re.findall(r'alt="([^"]*)"', text)]
    assert any("columns by sublattice" in a and "x (nm) / y (nm)" in a for a in alts)
    assert any("columns by class" in a for a in alts) and any("ground-truth columns" in a for a in alts)
    assert any("vector PDF" in a and "dx (nm) / dy (nm)" in a for a in alts)
    assert any("sublattice 0 -> 1: dx (nm) / dy (nm)" in a for a in alts)
    assert any("shell (1) / Warren-Cowley alpha (1)" in a for a in alts)
    assert any("polarisation (B-site displacement): x (nm) / y (nm)" in a and "|P| (pm)" in a for a in alts)
    assert any("strain exx: x (nm) / y (nm)" in a and "exy uncertainty" in a for a in alts)
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', text))
    with pytest.raises(OutputExistsError):
        write_atoms_report(None, path, None)  # refused before any drawing


def test_sro_table_shows_the_results_alpha(perovskite, page):
    _, result = perovskite
    _, text = page
    for alpha in result.sro["alpha"]:
        assert f"<td>{alpha:.5g}</td>" in text


def test_scores_equal_an_independent_computation(perovskite, page):
    sim, result = perovskite
    _, text = page
    data, truth = sim.data, sim.truth.tables["atoms"]
    # where the simulation put each column in the image (after scan distortion), inside the field of view
    x = data.x.values[0] + (data.x.values[1] - data.x.values[0]) * truth["x_px"].to_numpy()
    y = data.y.values[0] + (data.y.values[1] - data.y.values[0]) * truth["y_px"].to_numpy()
    inside = (x >= data.x.values.min()) & (x <= data.x.values.max()) & (y >= data.y.values.min()) & (
        y <= data.y.values.max())
    x, y, t = x[inside], y[inside], truth[inside].reset_index(drop=True)
    found = result.atoms[result.atoms["cls"] != "vacancy"]
    dist, idx = cKDTree(np.c_[x, y]).query(found[["x", "y"]].to_numpy())
    near = dist <= 0.05
    for s in (0, 1):
        sel = near & (found["sublattice"].to_numpy() == s) & found["fit_ok"].to_numpy(bool)
        rms = 1e3 * np.sqrt(np.mean(dist[sel] ** 2))
        assert float(_cell(text, f"position RMS error, sublattice {s} (pm)")) == pytest.approx(rms, rel=1e-3)
        assert rms < 5.0  # picometre precision on the A and B columns
    # every found sublattice stands for the true one most of its columns sit on (A, B and the two O)
    tsub, fsub = t["sublattice"].to_numpy()[idx], found["sublattice"].to_numpy()
    mapping = {s: int(pd.Series(tsub[near & (fsub == s)]).mode()[0]) for s in np.unique(fsub[near]) if s >= 0}
    assert sorted(mapping.values()) == [0, 1, 2, 3]
    mapped = np.array([mapping.get(int(s), -1) for s in fsub])
    agree = 100 * np.mean(mapped[near] == tsub[near])
    assert float(_cell(text, "sublattice agreement (%)")) == pytest.approx(agree, rel=1e-3)
    assert int(_cell(text, "true columns on sublattices not found")) == 0
    pred = found["cls"].to_numpy() == "dopant"
    true = t["cls"].to_numpy()[idx] == "dopant"
    tp = int((near & pred & true).sum())
    fp = int((pred & ~(near & true)).sum())
    fn = int((t["cls"] == "dopant").sum()) - tp  # true dopants not found as dopants
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert float(_cell(text, "dopant precision")) == pytest.approx(precision, rel=1e-3)
    assert float(_cell(text, "dopant recall")) == pytest.approx(recall, rel=1e-3)
    assert float(_cell(text, "dopant F1")) == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-3)
    assert _cell(text, "dopants true positive / false positive / missed") == f"{tp} / {fp} / {fn}"


def test_polar_domains_and_skipped_sro_are_explained():
    sim = make("haadf-polar", seed=0)
    result = analyze_atoms(sim.data)
    text = render_html("atoms", atoms_sections(result, sim.data, truth=sim))
    assert "short-range order of sublattice 0: 0 dopant(s)" in text  # no dopants: a one-line reason
    truth = sim.truth.tables["atoms"]
    true_dy = sorted(set(truth.loc[truth["dy_pm"] != 0, "dy_pm"]))
    assert true_dy == [-15.0, 15.0]
    rows = re.findall(r"<td>sign\(dx, dy\) = \(\+0, ([+-]1)\)</td>\s*<td>(\d+)</td>"
                      r"\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", text)
    assert [r[0] for r in rows] == ["-1", "+1"]
    for sign, n, t_dx, f_dx, t_dy, f_dy in rows:
        assert int(n) > 100
        assert float(t_dy) == 15.0 * int(sign)
        assert abs(float(f_dy) - float(t_dy)) < 2.0 and abs(float(f_dx)) < 2.0  # domain means within 2 pm
