"""The catalog web page end to end: the real app over a real ingested catalog, in headless Chromium.

Ground truth is what the module fixture ingests: three simulated materials x three HAADF images
each (SrTiO3 at 300 kV, monolayer MoS2 at 80 kV, SrTiO3 with NiO inclusions at 200 kV), an EELS
spectrum image, a small SrTiO3 crop with an atom-finding result folder linked to it. Each material
is simulated once; its other two images are that one turned by 90 degrees and at a quarter of the
dose (what "more like this" must see through). Titles,
beam energies and operators are set per file so each search has one known answer.

Needs Playwright's Python package and a Chromium already on the machine ($ATOMINE_CHROMIUM,
/usr/bin/chromium, chromium-browser or google-chrome); skips with the reason otherwise. Nothing
is downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python package) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")

XSS = "<img src=x onerror=alert(1)>"
# (file stem, simulator preset, beam energy kV, title, operator)
FILES = [(f"sto_{i}", "haadf-perovskite", 300.0, f"SrTiO3 substrate survey {i}", "alice") for i in range(3)] + \
        [(f"mos2_{i}", "haadf-mos2", 80.0, f"MoS2 molybdenite flake {i}", "bob") for i in range(3)] + \
        [(f"nio_{i}", "haadf-phases", 200.0, f"NiO inclusions in SrTiO3 {i}", "carol") for i in range(3)]
TIMEOUT_MS = 15_000


def _chromium() -> str | None:
    for candidate in (os.environ.get("ATOMINE_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """Write and ingest the files; return the catalog path and the ground truth by file stem."""
    import atomine.io as aio
    import atomine.simulate as sim
    from atomine.catalog import Catalog, ingest
    from atomine.catalog.ingest import analysis_from_folder
    from atomine.workflows import analyze_atoms

    root = tmp_path_factory.mktemp("web_e2e")
    data = root / "data"
    data.mkdir()
    truth = {}
    rng = np.random.default_rng(7)
    base = {}
    for k, (stem, preset, kv, title, operator) in enumerate(FILES):
        # one simulation per material (the slow part); the other two images are that one turned by
        # 90 degrees and re-counted at a quarter of the dose, as a microscopist's series would be
        if preset not in base:
            base[preset] = sim.make(preset).data
        da = base[preset].copy(deep=False)  # the title etc. set below must not reach the base image
        variant = int(stem[-1])
        if variant == 1:
            da = da.copy(data=np.ascontiguousarray(np.rot90(da.values)))
        elif variant == 2:
            da = da.copy(data=rng.poisson(np.clip(da.values, 0, None) * 0.25).astype(da.dtype))
        da.attrs = {**da.attrs}
        meta = dict(da.attrs["metadata"])
        # the third SrTiO3 image carries a hostile title: the page must show it as text
        meta.update(title=XSS if stem == "sto_2" else title, beam_energy_kv=kv, operator=operator,
                    acquisition_date=f"2024-0{k // 3 + 1}-1{k % 3}")
        da.attrs["metadata"] = meta
        aio.save(da, data / f"{stem}.nc")
        truth[stem] = {"beam_energy_kv": kv, "title": meta["title"],
                       "pixel_size_nm": float(da.x.values[1] - da.x.values[0])}
    eels = sim.make("eels-si").data
    aio.save(eels, data / "eels.nc")
    small = base["haadf-perovskite"].isel(y=slice(0, 160), x=slice(0, 160))
    aio.save(small, data / "small.nc")
    # the result folder lies outside the data folder: ingesting it would also catalogue the signals of
    # its result.zarr; linking the analysis alone keeps the dataset ground truth to the files above
    result = analyze_atoms(aio.load(data / "small.nc"))
    result.save(root / "atoms_out")
    # a report in the result folder, as the reporting workflows write one
    (root / "atoms_out" / "report.html").write_text("<!DOCTYPE html><title>atoms report</title><h1>Atoms</h1>\n")
    db = root / "catalog.sqlite"
    with Catalog(db) as cat:
        rep = ingest(cat, [data])
        assert rep.added == 11 and not rep.failed
        cat.add_analysis(analysis_from_folder(root / "atoms_out"))
        for hit in cat.search("", limit=100):
            truth.setdefault(Path(hit["path"]).stem, {})["id"] = hit["id"]
    return db, truth


@pytest.fixture(scope="module")
def server(truth):
    try:
        from atomine.server import create_app
    except ImportError as exc:  # the server package lands separately; say so instead of failing
        pytest.skip(f"atomine.server.create_app not importable: {exc}")
    db, _ = truth
    app = create_app(str(db))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start the catalog app within 20 s")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found: set $ATOMINE_CHROMIUM or install Debian's chromium")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.dialogs = []  # any alert() means injected script ran
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.console_errors, pg.page_errors = [], []
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.page_errors.append(str(exc)))
    pg.goto(server + "/")
    settled(pg)
    yield pg
    context.close()
    # the page must live within the server's CSP (no inline script/style, no eval)
    assert not [m for m in pg.console_errors if "Content Security Policy" in m]
    assert pg.page_errors == []  # no uncaught exception in the page's scripts


def ids(truth, *stems):
    return {truth[s]["id"] for s in stems}


def card_ids(pg, container="#results"):
    return [int(x) for x in pg.eval_on_selector_all(f"{container} .card[data-id]",
                                                    "els => els.map(e => e.getAttribute('data-id'))")]


def settled(pg):
    """Wait until the page has rendered the route in its address bar."""
    pg.wait_for_function("() => { const m = document.querySelector('main'); "
                         "return m.getAttribute('aria-busy') === 'false' && "
                         "m.getAttribute('data-rendered') === (location.hash || '#/search'); }")


def search(pg, text):
    pg.fill("#q", text)
    pg.press("#q", "Enter")
    settled(pg)


def test_landing_lists_everything_with_stats(page, truth):
    _, t = truth
    assert set(card_ids(page)) == {v["id"] for v in t.values() if "id" in v}
    assert page.text_content("#stats") == "11 datasets · 1 analysis"
    options = page.eval_on_selector_all("#f-signal option", "els => els.map(e => e.value)")
    assert {"HAADF", "EELS"} <= set(options)
    assert page.get_attribute(f".card[data-id='{t['mos2_0']['id']}'] img.thumb", "src").endswith("/thumbnail.png")


def test_free_text_finds_the_right_cards(page, truth):
    _, t = truth
    search(page, "molybdenite")
    assert set(card_ids(page)) == ids(t, "mos2_0", "mos2_1", "mos2_2")
    assert page.text_content("#result-count").startswith("3 ")
    assert "molybdenite" in page.text_content("#effective-query")
    assert "q=molybdenite" in page.evaluate("location.hash")  # bookmarkable


def test_filters_compose_and_narrow(page, truth):
    _, t = truth
    page.select_option("#f-signal", "HAADF")
    page.fill("#f-lattice-min", "0.30")
    page.fill("#f-lattice-max", "0.33")
    assert page.text_content("#effective-query") == "signal:HAADF lattice_a:0.30nm..0.33nm"
    page.click("#search")
    settled(page)
    assert set(card_ids(page)) == ids(t, "mos2_0", "mos2_1", "mos2_2")  # 0.316 nm, the hexagonal cell
    page.fill("#f-lattice-min", "")
    page.fill("#f-lattice-max", "")
    page.fill("#f-beam-min", "250")
    page.click("#search")
    settled(page)
    assert set(card_ids(page)) == ids(t, "sto_0", "sto_1", "sto_2", "small")  # 300 kV HAADF only
    page.fill("#f-beam-min", "")
    page.fill("#f-date-from", "2024-02")
    page.fill("#f-date-to", "2024-02")
    assert page.text_content("#effective-query") == "signal:HAADF date:2024-02"
    page.click("#search")
    settled(page)
    assert set(card_ids(page)) == ids(t, "mos2_0", "mos2_1", "mos2_2")  # acquired in February
    page.fill("#f-date-from", "")
    page.fill("#f-date-to", "")
    page.select_option("#f-signal", "EELS")
    page.click("#search")
    settled(page)
    assert card_ids(page) == [t["eels"]["id"]]


def test_dataset_page_shows_metadata_and_analyses(page, truth, server):
    _, t = truth
    mos = t["mos2_1"]
    page.click(f"#results .card[data-id='{mos['id']}']")
    settled(page)
    assert page.evaluate("location.hash") == f"#/dataset/{mos['id']}"
    assert page.text_content("#dataset-title") == mos["title"]
    assert page.text_content("#dataset-meta tr[data-field='beam_energy_kv'] td") == f"{mos['beam_energy_kv']:g} kV"
    pixel = page.text_content("#dataset-meta tr[data-field='pixel_size_nm'] td")
    assert float(pixel.split()[0]) == pytest.approx(mos["pixel_size_nm"], rel=1e-5) and pixel.endswith(" nm")
    assert page.text_content("#dataset-meta tr[data-field='operator'] td") == "bob"
    lattice = page.text_content("#dataset-descriptors tr[data-field='lattice_a_nm'] td")
    assert float(lattice.split()[0]) == pytest.approx(0.316, rel=0.02)
    assert page.text_content("#dataset-paths").count("mos2_1.nc") == 1
    # the cropped SrTiO3 image has the atom-finding analysis, with its report opening in a new tab
    page.goto(f"{server}/#/dataset/{t['small']['id']}")
    settled(page)
    link = page.query_selector("#dataset-analyses a[href$='/report.html']")
    assert link.get_attribute("target") == "_blank"
    with page.context.expect_page() as new_tab:
        link.click()
    report = new_tab.value
    report.wait_for_load_state()
    assert report.text_content("h1") == "Atoms"
    report.close()


def test_more_like_this_puts_same_material_first(page, truth):
    _, t = truth
    page.goto(page.url.split("#")[0] + f"#/dataset/{t['mos2_0']['id']}")
    settled(page)
    page.click("#more-like-this")
    settled(page)
    assert page.evaluate("location.hash") == f"#/similar/{t['mos2_0']['id']}"
    got = card_ids(page, "#similar")
    assert t["mos2_0"]["id"] not in got
    assert set(got[:2]) == ids(t, "mos2_1", "mos2_2")
    assert "distance" in page.text_content(f"#similar .card[data-id='{got[0]}'] .card-meta")
    page.click(f"#similar .card[data-id='{got[0]}']")  # a similar card opens that dataset
    settled(page)
    assert page.text_content("#dataset-title") in {t["mos2_1"]["title"], t["mos2_2"]["title"]}
    assert page.evaluate("location.hash") == f"#/dataset/{got[0]}"


def test_hostile_title_renders_as_text(page, truth):
    _, t = truth
    sid = t["sto_2"]["id"]
    page.wait_for_selector(f"#results .card[data-id='{sid}']")
    assert page.text_content(f".card[data-id='{sid}'] .card-title") == XSS
    assert page.eval_on_selector_all("#results .card-title img, #results img:not(.thumb)", "els => els.length") == 0
    page.click(f"#results .card[data-id='{sid}']")
    settled(page)
    assert page.text_content("#dataset-title") == XSS
    assert page.eval_on_selector_all("#dataset-title *", "els => els.length") == 0
    page.wait_for_timeout(200)  # an onerror handler would fire as soon as the broken image loads
    assert page.dialogs == []


def test_invalid_query_shows_one_line_error(page):
    search(page, "bogus:1")
    msg = page.text_content("#error")
    assert "unknown search field 'bogus'" in msg and "\n" not in msg.strip()
    assert card_ids(page) == []
    search(page, "molybdenite")  # a good search clears the error
    assert page.is_hidden("#error")
    page.goto(page.url.split("#")[0] + "#/dataset/99999")  # the server's 404 detail, not a blank page
    settled(page)
    assert "no dataset with id 99999" in page.text_content("#error")


def test_back_returns_to_results(page, truth):
    _, t = truth
    search(page, "molybdenite")
    results_hash = page.evaluate("location.hash")
    first = card_ids(page)[0]
    page.click(f"#results .card[data-id='{first}']")
    settled(page)
    page.go_back()
    settled(page)
    assert page.evaluate("location.hash") == results_hash
    assert page.input_value("#q") == "molybdenite"
    assert set(card_ids(page)) == ids(t, "mos2_0", "mos2_1", "mos2_2")
    assert page.is_hidden("#view-dataset")


def test_more_button_pages_through_results(page, truth, server):
    _, t = truth
    everything = {v["id"] for v in t.values() if "id" in v}
    page.goto(f"{server}/#/search?limit=4")
    settled(page)
    seen = card_ids(page)
    assert len(seen) == 4 and page.is_visible("#more") and page.text_content("#result-count") == "4+ datasets"
    for expected in (8, 11):
        page.click("#more")
        page.wait_for_function("n => document.querySelectorAll('#results .card').length === n", arg=expected)
        seen = card_ids(page)
    assert len(seen) == len(set(seen)) == 11 and set(seen) == everything and seen == sorted(seen)
    assert page.is_hidden("#more") and page.text_content("#result-count") == "11 datasets"
