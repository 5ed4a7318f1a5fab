"""Server security against a real catalog: tokens, read-only mode, path traversal, ingest roots,
SQL injection through the search syntax, oversized requests, security headers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from atomine.server import create_app

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def writer(filled):
    with TestClient(create_app(filled.catalog, token=TOKEN, roots=[filled.data], max_request_bytes=10_000)) as c:
        yield c


def _detail(r):
    body = r.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and "\n" not in body["detail"]
    return body["detail"]


# -- read-only unless started with a token ----------------------------------------------------------
def test_read_only_without_token(client, filled):
    sid = filled.ids["sto.nc"]
    r = client.post("/api/ingest", json={"paths": [str(filled.spare)]})
    assert r.status_code == 403 and "read-only" in _detail(r)
    r = client.delete(f"/api/datasets/{sid}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and "read-only" in _detail(r)
    assert client.get(f"/api/datasets/{sid}").status_code == 200  # nothing was deleted


def test_token_required_then_ingest_and_delete_work(writer, filled):
    before = writer.get("/api/stats").json()["datasets"]
    body = {"paths": [str(filled.spare)]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        r = writer.post("/api/ingest", json=body, headers=headers)
        assert r.status_code == 401, headers
        assert "token" in _detail(r) and r.headers["www-authenticate"] == "Bearer"
        assert writer.delete(f"/api/datasets/{filled.ids['sto.nc']}", headers=headers).status_code == 401
    assert writer.get("/api/stats").json()["datasets"] == before
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = writer.post("/api/ingest", json=body, headers=auth)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["added"] == 1 and rep["failed"] == [] and len(rep["ids"]) == 1
    new = rep["ids"][0]
    assert writer.get(f"/api/datasets/{new}").json()["path"] == str(filled.spare)
    assert writer.get("/api/stats").json()["datasets"] == before + 1
    r = writer.delete(f"/api/datasets/{new}", headers=auth)
    assert r.status_code == 200 and r.json() == {"deleted": new}
    assert writer.get(f"/api/datasets/{new}").status_code == 404
    assert writer.delete(f"/api/datasets/{new}", headers=auth).status_code == 404
    assert writer.get("/api/stats").json()["datasets"] == before


def test_ingest_only_under_roots(writer, client, filled):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = writer.get("/api/stats").json()["datasets"]
    outside = filled.outside / "outside.nc"
    for path in (str(outside), str(filled.data / ".." / "outside" / "outside.nc"), "/etc/passwd", "/"):
        r = writer.post("/api/ingest", json={"paths": [path]}, headers=auth)
        assert r.status_code == 403 and "outside the ingest roots" in _detail(r), path
    # a symlink inside the root pointing out of it: refused when named, skipped when found in a folder
    r = writer.post("/api/ingest", json={"paths": [str(filled.data / "spare" / "link_out.nc")]}, headers=auth)
    assert r.status_code == 403
    r = writer.post("/api/ingest", json={"paths": [str(filled.data / "spare")]}, headers=auth)
    assert r.status_code == 200 and r.json()["skipped"] == [str(filled.data / "spare" / "link_out.nc")]
    for new in r.json()["ids"]:
        writer.delete(f"/api/datasets/{new}", headers=auth)
    for bad in ("relative/path.nc", str(filled.data / "missing.nc")):
        assert writer.post("/api/ingest", json={"paths": [bad]}, headers=auth).status_code == 400
    assert writer.post("/api/ingest", json={"paths": []}, headers=auth).status_code == 400
    assert writer.post("/api/ingest", json={"nope": 1}, headers=auth).status_code == 400
    assert str(outside) not in {h["path"] for h in writer.get("/api/search", params={"limit": 200}).json()["hits"]}
    assert writer.get("/api/stats").json()["datasets"] == before
    # a token but no --root: ingest refused
    with TestClient(create_app(filled.catalog, token=TOKEN)) as c:
        r = c.post("/api/ingest", json={"paths": [str(filled.spare)]}, headers=auth)
        assert r.status_code == 403 and "no ingest roots configured" in _detail(r)


# -- path traversal -----------------------------------------------------------------------------------
def _raw_get(app, raw_path: str) -> tuple[int, bytes]:
    """GET a raw request target as uvicorn hands it to the app (percent-decoded path, dot segments kept).

    HTTP clients normalise '..' away before sending; an attacker's raw socket does not.
    """
    import asyncio
    from urllib.parse import unquote

    path, _, query = raw_path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": unquote(path), "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent, status, body = [], 0, b""

    async def receive():
        if not sent:
            sent.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return status, body


PROBES = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
          "%2e%2e", "..", "%2fetc%2fpasswd", "/etc/passwd", "//etc/passwd", "..%5c..%5csecret.json",
          "..%2F..%2Foutside%2Fsecret.json", "../../outside/secret.json", "../../../outside/secret.json",
          "summary.json%00.png", ".", "%2e", "%252e%252e%252fsecret.json", "....//....//etc/passwd"]


def test_analysis_files_never_leave_the_folder(client, filled):
    aid = filled.analysis_id
    base = f"/api/analyses/{aid}/files/"
    probes = PROBES + ["%2F" + str(filled.outside / "secret.json")[1:], "escape.json",
                       "%2e%2e%2F..%2Foutside%2Fsecret.json"]
    for probe in probes:
        status, body = _raw_get(client.app, base + probe)
        assert status in (400, 404), (probe, status)
        assert b"root:" not in body and b"do not serve" not in body, probe
        r = client.get(base + probe)  # the same through an HTTP client (which may normalise dot segments)
        assert b"root:" not in r.content and b"do not serve" not in r.content, probe
        assert r.status_code in (400, 404) or not r.url.path.startswith(base), (probe, r.url)
    assert _raw_get(client.app, base + "summary.json")[0] == 200  # the real file is served


def test_static_files_never_leave_the_folder(client, filled):
    for probe in PROBES + ["../app.py", "..%2Fapp.py", "%2e%2e/app.py", "%2e%2e%2fapp.py", "../_files.py",
                           str(filled.outside / "secret.json")]:
        status, body = _raw_get(client.app, "/static/" + probe)
        assert status in (400, 404), (probe, status)
        assert b"create_app" not in body and b"root:" not in body and b"do not serve" not in body, probe


def test_static_symlink_escape(tmp_path, monkeypatch, filled):
    import atomine.server.app as server_app

    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>t</title>")
    (static / "app.js").write_text("console.log(1)")
    (static / "leak.js").symlink_to(filled.outside / "secret.json")
    monkeypatch.setattr(server_app, "STATIC", static)
    with TestClient(create_app(filled.catalog)) as c:
        assert c.get("/").status_code == 200 and c.get("/static/app.js").text == "console.log(1)"
        assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        r = c.get("/static/leak.js")
        assert r.status_code == 404 and "do not serve" not in r.text
    # no page installed: '/' is a clean 404 with a one-line detail
    monkeypatch.setattr(server_app, "STATIC", tmp_path / "missing")
    with TestClient(create_app(filled.catalog)) as c:
        r = c.get("/")
        assert r.status_code == 404 and "not installed" in _detail(r)


# -- SQL injection through the search syntax -----------------------------------------------------------
INJECTIONS = ["signal:HAADF' OR 1=1 --", "\"; DROP TABLE datasets; --", "lattice_a:1..2) OR (1=1",
              "signal:\"HAADF' OR '1'='1\"", "x' UNION SELECT * FROM datasets --", "element:Mn') OR ('a'='a",
              "signal:HAADF; DELETE FROM datasets", "beam_energy>=0 OR 1=1", "* OR 1", "NEAR(a b) OR \"",
              "title:%' OR '%'='", "date:2024' OR '1'='1", "\" OR \"\"=\"", "sample:*", "kind:image)--"]


@pytest.mark.parametrize("q", INJECTIONS)
def test_sql_injection_through_search(client, filled, q):
    r = client.get("/api/search", params={"q": q, "limit": 200})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        _detail(r)
        return
    hits = r.json()["hits"]
    # never more rows than the honest query: the same query run by the store itself
    from atomine.catalog import Catalog
    with Catalog(filled.catalog) as cat:
        honest = cat.search(q, limit=200)
    assert [h["id"] for h in hits] == [h["id"] for h in honest]
    assert len(hits) < len(filled.ids) or q in ("beam_energy>=0 OR 1=1",)


def test_tables_intact_after_injections(client, filled):
    for q in INJECTIONS:
        client.get("/api/search", params={"q": q})
    from atomine.catalog import _engine
    engine = sa.create_engine(_engine.resolve_url(filled.catalog))
    try:
        with engine.connect() as con:
            assert con.exec_driver_sql("SELECT count(*) FROM datasets").scalar() >= len(filled.ids)
        tables = set(sa.inspect(engine).get_table_names())
        assert {"datasets", "descriptors", "vectors", "thumbnails", "analyses"} <= tables
    finally:
        engine.dispose()
    assert client.get("/api/stats").json()["by_signal"] == {"EELS": 1, "HAADF": 4}


# -- oversized requests ----------------------------------------------------------------------------------
def test_oversized_body_413(writer, filled):
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    big = b'{"paths": ["' + b"a" * 20_000 + b'"]}'
    r = writer.post("/api/ingest", content=big, headers=auth)
    assert r.status_code == 413 and "too large" in _detail(r)

    def chunks():  # streamed without Content-Length: counted as it arrives
        for _ in range(20):
            yield b"a" * 1000

    r = writer.post("/api/ingest", content=chunks(), headers=auth)
    assert r.status_code == 413
    # unauthenticated large bodies are refused before any auth or parsing
    assert writer.post("/api/ingest", content=big).status_code == 413


def test_long_url_414_and_bounds_400(client, filled):
    r = client.get("/api/search", params={"q": "a" * 9000})
    assert r.status_code == 414 and "URL too long" in _detail(r)
    r = client.get("/api/search", params={"q": "a" * 4001})  # under 8 KiB but over the parser's limit
    assert r.status_code == 400 and "too long" in _detail(r)
    assert client.get("/api/search", params={"limit": 201}).status_code == 400
    assert client.get("/api/search", params={"limit": 200}).status_code == 200
    sid = filled.ids["sto.nc"]
    assert client.get(f"/api/similar/{sid}", params={"k": 101}).status_code == 400
    assert client.get(f"/api/similar/{sid}", params={"k": 100}).status_code == 200


# -- headers ----------------------------------------------------------------------------------------------
def test_security_headers_everywhere(client, filled):
    for url in ("/api/stats", "/api/search?q=signal:HAADF", "/api/datasets/999999", "/api/search?limit=0",
                f"/api/datasets/{filled.ids['sto.nc']}/thumbnail.png", "/openapi.json", "/", "/nonexistent"):
        r = client.get(url)
        assert r.headers["content-security-policy"] == "default-src 'self'; img-src 'self' data:", url
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["referrer-policy"] == "no-referrer", url


def test_is_loopback():
    from atomine.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.org", "10.0.0.1"))
