"""PostgreSQL-specific behaviour of the catalog: full-text weights and snippets, the GIN index,
URL handling, connection errors and concurrent first opens (the shared behaviour is in
test_catalog_store.py, which runs on both backends)."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import sqlalchemy as sa

from atomine.catalog import _engine, _pg_fts, migrations
from atomine.catalog.store import Catalog, DatasetRecord
from atomine.errors import InputError



@pytest.fixture
def backend():
    """Every test here runs on PostgreSQL only (overrides the two-backend fixture of conftest.py)."""
    return "postgresql"


def rec(i, **kw):
    base = dict(path=f"/data/f{i}.dm4", name="HAADF", signal_index=0, content_hash=f"sha256:{i:064x}:0",
                kind="image", signal="HAADF", shape=[8, 8], dtype="float32")
    base.update(kw)
    return DatasetRecord(**base)


@pytest.fixture
def cat(catalog_url):
    with Catalog(catalog_url) as c:
        yield c


def test_weights_order_title_then_signal_then_metadata_then_original(cat):
    word = "bixbyite"
    ids = {
        "original": cat.add_dataset(rec(1, original_text=f"Sample.Note: {word}"))[0],
        "metadata": cat.add_dataset(rec(2, metadata={"note": word}))[0],
        "elements": cat.add_dataset(rec(3, elements=[word]))[0],
        "title": cat.add_dataset(rec(4, title=f"{word} thin film"))[0],
    }
    cat.add_dataset(rec(5, title="unrelated"))
    hits = cat.search(word)
    assert [h["id"] for h in hits] == [ids[k] for k in ("title", "elements", "metadata", "original")]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0 and len(set(scores)) == 4
    # a title hit outranks the same word repeated in a long original-metadata text
    noisy = cat.add_dataset(rec(6, original_text="\n".join(f"Param{k}: {word}" for k in range(3))))[0]
    assert [h["id"] for h in cat.search(word)][0] == ids["title"] and noisy in [h["id"] for h in cat.search(word)]
    assert f"[{word}]" in hits[0]["snippet"] and f"[{word}]" in hits[-1]["snippet"]


def test_tokens_split_like_sqlite_and_tsquery_syntax_is_literal(cat):
    a = cat.add_dataset(rec(1, path="/data/run_7/LaMnO3-film.dm4", original_text="Acquisition.Beam_Energy: 300"))[0]
    b = cat.add_dataset(rec(2, title="a & b | c"))[0]
    found = lambda q: [h["id"] for h in cat.search(q)]   # noqa: E731
    assert found("lamno3") == [a] and found("run") == [a] and found("Beam_Energy") == [a]
    assert found("lamno3-film.dm4") == [a] and found('"film dm4"') == [a] and found('"dm4 film"') == []
    for q in ["a & b", "!c", "b:*", "'; DROP TABLE datasets; --", "(a|b)", "<->", "&", "\\", "a:*"]:
        try:
            assert isinstance(cat.search(q), list)
        except InputError as exc:        # the query syntax may refuse it (b:* names no field): clearly
            assert "field" in str(exc)
    assert found("a & b | c") == [b] and cat.stats()["datasets"] == 2


def test_search_vector_is_indexed_and_follows_updates(cat, catalog_url):
    i = cat.add_dataset(rec(1, title="perovskite"))[0]
    engine = sa.create_engine(_engine.resolve_url(catalog_url))
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        fts = _pg_fts.ranked_matches(_pg_fts.match_expression("perovskite"))
        sql = sa.select(fts.c.id).compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    engine.dispose()
    assert _pg_fts.INDEX in plan
    cat.add_dataset(rec(2, path="/data/f1.dm4", title="graphene"))      # new content at the same place
    assert cat.search("perovskite") == [] and cat.search("graphene")[0]["id"] == i


def test_bulk_add_leaves_statistics_the_planner_can_use(cat, catalog_url):
    # right after a bulk load PostgreSQL had no statistics and a long GIN pending list, and seq-scanned
    # every row for a one-match word; add_datasets now refreshes both, so the index is chosen unforced
    from atomine.catalog import store
    words = [f"serial{i:05d}" for i in range(store._REFRESH_AFTER)]
    cat.add_datasets([rec(i, original_text=f"camera.serial: {w}\n" + "stage.tilt: 0.5\n" * 40)
                      for i, w in enumerate(words)], batch=store._REFRESH_AFTER)
    engine = sa.create_engine(_engine.resolve_url(catalog_url))
    with engine.connect() as conn:
        analysed = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'datasets'").scalar()
        fts = _pg_fts.ranked_matches(_pg_fts.match_expression(words[7]))
        sql = sa.select(fts.c.id).compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    engine.dispose()
    assert analysed == store._REFRESH_AFTER
    assert _pg_fts.INDEX in plan and "Seq Scan" not in plan, plan
    assert [h["id"] for h in cat.search(words[7])] == [8]


def test_plain_url_gets_psycopg3_and_password_is_hidden(catalog_url):
    assert catalog_url.startswith("postgresql://")
    with Catalog(catalog_url) as c:
        assert c.dialect == "postgresql" and c.url.startswith("postgresql+psycopg://")
    assert _engine.resolve_url("postgres://u:pw@h/db").drivername == "postgresql+psycopg"
    assert _engine.resolve_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_unreachable_and_bad_urls_raise_one_line_input_errors(postgres_url_base):
    base = sa.engine.make_url(postgres_url_base)
    with pytest.raises(InputError, match="cannot connect to") as info:
        Catalog(base.set(database="no_such_catalog_db").render_as_string(hide_password=False))
    assert "no_such_catalog_db" in str(info.value) and "\n" not in str(info.value)
    import socket
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match="cannot connect to") as info:
        Catalog(f"postgresql://someone:s3cret@127.0.0.1:{port}/x")
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="cannot read catalog URL"):
        Catalog("postgresql://u@h:notaport/db")


def _open_and_add(url, i, out):
    try:
        with Catalog(url) as c:
            c.add_dataset(rec(i, title=f"opened by {i}"))
        out.put("ok")
    except Exception as exc:   # reported to the parent, which asserts on it
        out.put(repr(exc))


def test_concurrent_first_opens_migrate_once(catalog_url):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_open_and_add, args=(catalog_url, i, out)) for i in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == ["ok"] * 4
    with Catalog(catalog_url) as c:
        assert c.stats()["datasets"] == 4 and c.stats()["schema_version"] == migrations.LATEST
        assert len(c.search("opened")) == 4


def test_missing_server_binaries_give_a_reason(monkeypatch, tmp_path):
    import pg_server
    monkeypatch.setattr(pg_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(pg_server, "_SEARCH", (str(tmp_path / "*" / "bin"), str(tmp_path / "none")))
    with pytest.raises(pg_server.ServerUnavailable, match="no PostgreSQL server binaries"):
        pg_server.PostgresServer()
