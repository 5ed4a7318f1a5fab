"""The REST API over a real catalog: search, dataset pages, thumbnails, similar, analyses, fields, stats, OpenAPI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest


def _ids(hits):
    return {h["id"] for h in hits}


def test_search_by_signal_text_and_filters(client, filled):
    ids = filled.ids
    haadf = {ids[n] for n in ("sto.nc", "mos2.nc", "mos2_rot.nc", "small.nc")}
    r = client.get("/api/search", params={"q": "signal:HAADF"})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "signal:HAADF" and body["limit"] == 20 and body["offset"] == 0
    assert _ids(body["hits"]) == haadf
    assert _ids(client.get("/api/search", params={"q": "signal:EELS"}).json()["hits"]) == {ids["eels.hspy"]}
    # free text: only the rotated copy's title says "rotated"; "monolayer" is in both MoS2 titles
    assert _ids(client.get("/api/search", params={"q": "rotated"}).json()["hits"]) == {ids["mos2_rot.nc"]}
    assert _ids(client.get("/api/search", params={"q": "monolayer"}).json()["hits"]) == {ids["mos2.nc"],
                                                                                       ids["mos2_rot.nc"]}
    # filters: beam energy (HAADF simulated at 300 kV, EELS at 200 kV), element, edge
    assert _ids(client.get("/api/search", params={"q": "beam_energy>=250"}).json()["hits"]) == haadf
    assert _ids(client.get("/api/search", params={"q": "element:Mn"}).json()["hits"]) == {ids["eels.hspy"]}
    assert _ids(client.get("/api/search", params={"q": "signal:HAADF element:Mo"}).json()["hits"]) == {
        ids["mos2.nc"], ids["mos2_rot.nc"]}
    # paging: two pages of two partition the four HAADF images
    p1 = client.get("/api/search", params={"q": "signal:HAADF", "limit": 2}).json()["hits"]
    p2 = client.get("/api/search", params={"q": "signal:HAADF", "limit": 2, "offset": 2}).json()["hits"]
    assert len(p1) == len(p2) == 2 and _ids(p1) | _ids(p2) == haadf
    hit = next(h for h in body["hits"] if h["id"] == ids["sto.nc"])
    assert Path(hit["path"]) == filled.data / "sto.nc" and hit["kind"] == "image" and hit["shape"] == [512, 512]
    assert hit["thumbnail"] == f"/api/datasets/{ids['sto.nc']}/thumbnail.png"


def test_search_bad_input_is_400_one_line(client):
    for params in ({"q": "nosuchfield:3"}, {"q": "x" * 4001}, {"limit": 0}, {"limit": 201}, {"offset": -1}):
        r = client.get("/api/search", params=params)
        assert r.status_code == 400, params
        assert set(r.json()) == {"detail"} and "\n" not in r.json()["detail"]


def test_dataset_page(client, filled):
    sid = filled.ids["small.nc"]
    r = client.get(f"/api/datasets/{sid}")
    assert r.status_code == 200
    d = r.json()
    assert d["id"] == sid and Path(d["path"]) == filled.data / "small.nc" and d["signal"] == "HAADF"
    assert d["shape"] == [160, 160] and d["beam_energy_kv"] == 300.0 and d["pixel_size_nm"] == pytest.approx(0.02)
    assert d["thumbnail"] == f"/api/datasets/{sid}/thumbnail.png" and d["similar"] == f"/api/similar/{sid}"
    assert d["descriptors"]["lattice_a_nm"] == pytest.approx(0.3905, rel=0.03)
    [a] = d["analyses"]
    assert a["id"] == filled.analysis_id
    names = [rep["name"] for rep in a["reports"]]
    # the .csv/.json files directly in the folder; the symlink out of it is not offered
    assert "summary.json" in names and "atoms.csv" in names and "escape.json" not in names
    assert all(rep["url"] == f"/api/analyses/{a['id']}/files/{rep['name']}" for rep in a["reports"])
    assert client.get("/api/datasets/999999").status_code == 404
    assert client.get("/api/datasets/abc").status_code == 400


def test_thumbnail_is_png_of_right_size(client, filled):
    import matplotlib.image as mpimg

    r = client.get(f"/api/datasets/{filled.ids['sto.nc']}/thumbnail.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(r.content))
    assert img.shape[0] == img.shape[1] and 16 <= img.shape[0] <= 256  # a square image, thumbnail-sized
    assert client.get("/api/datasets/999999/thumbnail.png").status_code == 404


def test_similar_rotated_copy_is_nearest(client, filled):
    ids = filled.ids
    r = client.get(f"/api/similar/{ids['mos2.nc']}", params={"k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["target"] == ids["mos2.nc"] and len(body["hits"]) == 3
    first = body["hits"][0]
    assert first["id"] == ids["mos2_rot.nc"] and first["distance"] < body["hits"][1]["distance"]
    assert first["approximate"] is False and first["thumbnail"] == f"/api/datasets/{first['id']}/thumbnail.png"
    assert ids["mos2.nc"] not in _ids(body["hits"])
    assert client.get(f"/api/similar/{ids['mos2.nc']}", params={"k": 101}).status_code == 400
    assert client.get("/api/similar/999999").status_code == 404


def test_analysis_and_report_files(client, filled):
    r = client.get(f"/api/analyses/{filled.analysis_id}")
    assert r.status_code == 200
    a = r.json()
    assert a["datasets"] == [filled.ids["small.nc"]] and Path(a["path"]) == filled.analysis
    by_name = {rep["name"]: rep["url"] for rep in a["reports"]}
    got = client.get(by_name["summary.json"])
    assert got.status_code == 200 and got.content == (filled.analysis / "summary.json").read_bytes()
    assert got.headers["content-type"].startswith("application/json")
    assert "sandbox" in got.headers["content-security-policy"]  # reports run in an opaque origin
    assert client.get(by_name["atoms.csv"]).content == (filled.analysis / "atoms.csv").read_bytes()
    assert client.get("/api/analyses/999999").status_code == 404
    assert client.get(f"/api/analyses/{filled.analysis_id}/files/nonexistent.html").status_code == 404


def test_fields_and_stats(client, filled):
    from atomine.catalog.query import FIELDS

    fields = client.get("/api/fields").json()
    assert [f["name"] for f in fields] == list(FIELDS)
    lattice = next(f for f in fields if f["name"] == "lattice_a")
    assert lattice["type"] == "number" and lattice["unit"] == "nm" and lattice["help"]
    stats = client.get("/api/stats").json()
    assert stats["datasets"] == 5 and stats["by_signal"] == {"EELS": 1, "HAADF": 4}
    assert stats["analyses"] == 1 and stats["failures"] == 0


def test_openapi_lists_the_endpoints(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {"/api/search": "get", "/api/datasets/{dataset_id}": "delete",
                "/api/datasets/{dataset_id}/thumbnail.png": "get", "/api/similar/{dataset_id}": "get", "/api/analyses/{analysis_id}": "get",
                "/api/analyses/{analysis_id}/files/{name}": "get", "/api/fields": "get", "/api/stats": "get",
                "/api/ingest": "post"}
    for path, method in expected.items():
        assert method in paths[path], path
        assert paths[path][method]["summary"]
    assert {p["name"] for p in paths["/api/search"]["get"]["parameters"]} == {"q", "limit", "offset"}
    assert "SearchHit" in schema["components"]["schemas"]


def test_catalog_object_can_be_shared(filled):
    """An open Catalog passed in is used as is (and left open for its owner)."""
    from fastapi.testclient import TestClient

    from atomine.catalog import Catalog
    from atomine.server import create_app

    with Catalog(filled.catalog) as cat:
        with TestClient(create_app(cat)) as c:
            assert c.get("/api/stats").json()["datasets"] == 5
        assert cat.stats()["datasets"] == 5  # still open after the app shut down


def test_search_reports_a_limited_ranking(client, filled, monkeypatch):
    """/api/search: ranked_over is null when every match was ranked, the window size when only the newest were."""
    from atomine.catalog import _sqlite_fts

    everything = client.get("/api/search", params={"q": "monolayer"}).json()
    assert everything["ranked_over"] is None and len(everything["hits"]) >= 2
    monkeypatch.setattr(_sqlite_fts, "RANK_WINDOW", 1)
    page = client.get("/api/search", params={"q": "monolayer", "limit": 1}).json()
    if filled.backend == "postgresql":   # PostgreSQL ranks every match: no window, whatever SQLite's is
        assert page["ranked_over"] is None and page["hits"][0]["id"] == everything["hits"][0]["id"]
        return
    assert page["ranked_over"] == 1 and len(page["hits"]) == 1
    assert page["hits"][0]["id"] == max(h["id"] for h in everything["hits"])
