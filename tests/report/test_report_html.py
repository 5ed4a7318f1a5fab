"""The HTML report: self-contained (no network, images as data URIs), escaped, written atomically."""

import base64
import re

import numpy as np
import pandas as pd
import pytest

from atomine.data import image
from atomine.errors import InputError, OutputExistsError
from atomine.report import Figure, Html, Row, Section, Table, Text, plot_image, render_html, write_report


def _sections():
    da = image(np.random.default_rng(0).random((30, 40)).astype(np.float32), 0.05)
    atoms = pd.DataFrame({"x": [0.1, 0.5], "y": [0.2, 0.3], "cls": ["host", "dopant"]})
    return [
        Section("First dataset", [
            Text("plain <script>alert(1)</script> text"),
            Row([Figure(plot_image(da), caption="HAADF image"),
                 Table(atoms, caption="atoms", units={"x": "nm", "y": "nm"})]),
            Section("Nested part", [Html("<p class='ok'>trusted</p>")]),
        ]),
        Section("First dataset", [Text("same title, different section")]),
    ]


def test_render_html_is_self_contained_and_escaped():
    page = render_html("Demo <report>", _sections(), subtitle="seed 0", footer="atomine")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Demo &lt;report&gt;</title>" in page
    assert "<script" not in page  # user text is escaped, and the report needs no scripts
    assert "&lt;script&gt;" in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(href|src)=\"(https?:)?//", page)
    assert "<link" not in page and "@import" not in page
    png = base64.b64decode(srcs[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Calibrated axis labels travel with the image as its text alternative.
    assert re.search(r'alt="[^"]*x \(nm\) / y \(nm\)', page)
    assert "<th>x (nm)</th>" in page and "<th>y (nm)</th>" in page
    assert "<p class='ok'>trusted</p>" in page


def test_sections_get_unique_anchors_listed_in_the_contents():
    page = render_html("r", _sections())
    assert 'id="first-dataset"' in page and 'id="first-dataset-2"' in page
    assert 'href="#first-dataset"' in page and 'href="#first-dataset-2"' in page
    assert "<h3>Nested part</h3>" in page
    assert 'href="#nested-part"' not in page  # only top-level sections in the table of contents


def test_long_tables_are_cut_with_a_note():
    df = pd.DataFrame({"v": np.arange(100.0)})
    page = render_html("r", [Section("t", [Table(df, max_rows=10)])])
    assert page.count("<tr") == 11  # header + 10 rows
    assert "90 more row(s) not shown (100 in all)" in page


def test_bad_blocks_and_titles_are_refused():
    with pytest.raises(InputError, match="blocks must be one of"):
        Section("s", ["just a string"])
    with pytest.raises(InputError, match="title"):
        Section("  ", [])
    with pytest.raises(InputError, match="title"):
        render_html("", [Section("s")])
    with pytest.raises(InputError, match="Section"):
        render_html("r", [Text("not a section")])
    with pytest.raises(InputError, match="PNG"):
        Figure(b"GIF89a")
    with pytest.raises(InputError, match="DataFrame"):
        Table({"a": [1]})
    with pytest.raises(InputError, match="blocks must be one of"):
        Row([42])


def test_write_report_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "report.html"
    assert write_report(path, "r", [Section("s", [Text("one")])]) == path
    assert "one" in path.read_text()
    with pytest.raises(OutputExistsError, match="exists"):
        write_report(path, "r", [Section("s", [Text("two")])])
    assert "one" in path.read_text()
    write_report(path, "r", [Section("s", [Text("two")])], overwrite=True)
    assert "two" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp files left


def test_write_report_bad_targets_leave_nothing(tmp_path):
    with pytest.raises(InputError, match=".html"):
        write_report(tmp_path / "report.txt", "r", [Section("s")])
    with pytest.raises(InputError, match="Section"):
        write_report(tmp_path / "report.html", "r", ["x"])
    with pytest.raises(OutputExistsError, match="does not exist"):
        write_report(tmp_path / "missing" / "report.html", "r", [Section("s")])
    assert list(tmp_path.iterdir()) == []
