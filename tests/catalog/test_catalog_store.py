"""The catalog store on both backends (SQLite and PostgreSQL, see conftest.py): identity by content
hash, bulk add, analyses, ranking, filters, similarity, injection, migrations and concurrent writers
(records built by hand; no ingest)."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import sqlalchemy as sa

from atomine.catalog import _engine, migrations
from atomine.catalog.store import AnalysisRecord, Catalog, DatasetRecord
from atomine.errors import InputError


def rec(i, **kw):
    base = dict(path=f"/data/f{i}.dm4", name="HAADF", signal_index=0, content_hash=f"sha256:{i:064x}:0",
                file_size=100 + i, modified="2024-01-01T00:00:00", kind="image", signal="HAADF", shape=[64, 64],
                dtype="float32")
    base.update(kw)
    return DatasetRecord(**base)


@pytest.fixture
def cat(catalog_url):
    with Catalog(catalog_url) as c:
        yield c


def raw_engine(url):
    """A plain engine on the catalog's database (no catalog code), to build old schema versions."""
    return sa.create_engine(_engine.resolve_url(url))


def _assert_same_entries(one, many, ids):
    """Both catalogs hold the same entries under ``ids``, except for the times they were written."""
    for i in ids:
        a, b = one.get(i), many.get(i)
        for d in (a, b):
            d.pop("added"), d.pop("updated")
            for p in d["paths"]:
                p.pop("seen")
        assert a == b


def test_add_get_remove_and_identity(cat):
    r = rec(1, title="LaMnO3 film", elements=["La", "Mn", "O"], tags=["oxide"], thumbnail_png=b"\x89PNGfake",
            descriptors={"lattice_a_nm": 0.39, "bad": float("nan")}, metadata={"beam": {"energy": 300}},
            energy_range=[400.0, 900.0])
    i, status = cat.add_dataset(r)
    assert status == "added"
    assert cat.add_dataset(r) == (i, "unchanged")
    got = cat.get(i)
    assert got["elements"] == ["La", "Mn", "O"] and got["tags"] == ["oxide"] and got["shape"] == [64, 64]
    assert got["descriptors"] == {"lattice_a_nm": 0.39}   # NaN = unknown, not stored
    assert got["metadata"] == {"beam": {"energy": 300}} and got["energy_range"] == [400.0, 900.0]
    assert got["has_thumbnail"] and cat.thumbnail(i) == b"\x89PNGfake"
    # same content elsewhere: moved, path history kept
    moved = rec(1, path="/archive/f1.dm4", title="LaMnO3 film")
    assert cat.add_dataset(moved) == (i, "moved")
    got = cat.get(i)
    assert got["path"] == "/archive/f1.dm4"
    assert [p["path"] for p in got["paths"]] == ["/data/f1.dm4", "/archive/f1.dm4"]
    assert cat.search("f1")[0]["path"] == "/archive/f1.dm4"    # FTS followed the update
    # new content at the same place: updated in place, same id, children replaced
    changed = rec(2, path="/archive/f1.dm4", title="LaMnO3 film, re-exported", descriptors={"n_phases": 2})
    assert cat.add_dataset(changed) == (i, "updated")
    assert cat.get(i)["descriptors"] == {"n_phases": 2.0} and not cat.get(i)["has_thumbnail"]
    assert cat.stats()["datasets"] == 1
    cat.remove(i)
    assert cat.stats()["datasets"] == 0 and cat.search("LaMnO3") == []
    with pytest.raises(InputError, match="no dataset with id"):
        cat.get(i)
    with pytest.raises(InputError, match="nothing removed"):
        cat.remove(i)


def test_failures_recorded_and_cleared_by_success(cat):
    cat.add_failure("/data/broken.dm3", "CorruptFileError: truncated")
    cat.add_failure("/data/broken.dm3", "CorruptFileError: still truncated")   # replaces, not duplicates
    cat.add_failure("/data/other.emd", "UnsupportedFormatError")
    f = cat.failures()
    assert sorted((x["path"], x["reason"]) for x in f) == [("/data/broken.dm3", "CorruptFileError: still truncated"),
                                                           ("/data/other.emd", "UnsupportedFormatError")]
    cat.add_dataset(rec(5, path="/data/broken.dm3"))
    assert [x["path"] for x in cat.failures()] == ["/data/other.emd"] and cat.stats()["failures"] == 1


def test_analyses_link_by_content_file_or_array_hash(cat):
    a, _ = cat.add_dataset(rec(1))
    b, _ = cat.add_dataset(rec(2, metadata={"array_hash": "sha256:arr2"}))
    c, _ = cat.add_dataset(rec(3))
    file_hash_of_1 = rec(1).content_hash.rsplit(":", 1)[0]
    aid = cat.add_analysis(AnalysisRecord(path="/results/run1", workflow="atoms", atomine_version="0.1",
                                          time="2024-05-01T00:00:00", parameters={"sigma": 1.5},
                                          input_hashes=[file_hash_of_1, "sha256:arr2", "sha256:not-catalogued"],
                                          outputs=["atoms.parquet"], summary={"n": 10}))
    assert cat.analysis(aid)["datasets"] == [a, b]
    assert [x["id"] for x in cat.get(a)["analyses"]] == [aid]
    assert cat.get(a)["analyses"][0]["parameters"] == {"sigma": 1.5}
    assert cat.get(c)["analyses"] == []
    # re-adding the folder replaces it; an input catalogued later links then
    aid2 = cat.add_analysis(AnalysisRecord(path="/results/run1", workflow="atoms",
                                           input_hashes=[rec(3).content_hash, "sha256:later"]))
    assert cat.get(a)["analyses"] == [] and [x["id"] for x in cat.get(c)["analyses"]] == [aid2]
    d, _ = cat.add_dataset(rec(4, content_hash="sha256:later"))
    assert cat.analysis(aid2)["datasets"] == [c, d] and cat.stats()["analyses"] == 1


def test_bm25_title_outranks_one_mention_in_original_metadata(cat):
    weak, _ = cat.add_dataset(rec(1, title="survey image", original_text="\n".join(
        [f"Acquisition.Param{k}: {k}" for k in range(30)] + ["Sample.Description: perovskite film"])))
    strong, _ = cat.add_dataset(rec(2, title="perovskite film overview", original_text="Microscope: Titan"))
    cat.add_dataset(rec(3, title="graphene", original_text="nothing"))
    hits = cat.search("perovskite")
    assert [h["id"] for h in hits] == [strong, weak]
    assert hits[0]["score"] > hits[1]["score"] and "[perovskite]" in hits[0]["snippet"]
    assert [h["id"] for h in cat.search('"film overview"')] == [strong]   # phrase
    assert [h["id"] for h in cat.search("perovskite titan")] == [strong]  # terms are ANDed


def test_filters_numbers_ranges_dates_lists_flags(cat):
    ids = {}
    ids["a"], _ = cat.add_dataset(rec(1, beam_energy_kv=300, instrument="Titan Themis", elements=["Mn", "O"],
                                      acquisition_date="2024-03-15T09:00:00", descriptors={"lattice_a_nm": 0.39}))
    ids["b"], _ = cat.add_dataset(rec(2, beam_energy_kv=200, instrument="ARM200F", elements=["Fe", "O"],
                                      acquisition_date="2024-06-30T23:00:00", descriptors={"lattice_a_nm": 0.41}))
    ids["c"], _ = cat.add_dataset(rec(3, signal="EELS", kind="spectrum_image", beam_energy_kv=80,
                                      acquisition_date="2023-12-31", elements=["Mn"], tags=["Oxide"],
                                      descriptors={"edge:Mn_L23": 1.0}))

    def found(q):
        return sorted(h["id"] for h in cat.search(q))
    assert found("beam_energy>=200") == [ids["a"], ids["b"]]
    assert found("beam_energy:300kV") == [ids["a"]] and found("beam_energy:300000V") == [ids["a"]]
    assert found("beam_energy!=300") == [ids["b"], ids["c"]]
    assert found("lattice_a:0.38..0.40") == [ids["a"]] and found("lattice_a:3.8..4.2A") == [ids["a"], ids["b"]]
    assert found("date:2024-01..2024-06") == [ids["a"], ids["b"]]     # month end is inclusive to the last second
    assert found("date:2023") == [ids["c"]] and found("date<2024-03-15") == [ids["c"]]
    assert found("element:Mn") == [ids["a"], ids["c"]] and found("element:Fe,Mn") == sorted(ids.values())
    assert found("element!=Mn") == [ids["b"]] and found("tag:oxide") == [ids["c"]]
    assert found("signal:haadf") == [ids["a"], ids["b"]] and found("kind:spectrum_image") == [ids["c"]]
    assert found('instrument:"titan"') == [ids["a"]] and found("edge:Mn_L23") == [ids["c"]]
    assert found("signal:HAADF element:Mn beam_energy>=200 lattice_a:3.8..4.0A") == [ids["a"]]
    assert [h["id"] for h in cat.search("", limit=2, offset=1)] == [ids["b"], ids["c"]]
    with pytest.raises(InputError):
        cat.search("nonsense_field:3")
    with pytest.raises(InputError, match="limit"):
        cat.search("", limit=0)


def test_similar_exact_neighbours(cat):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    truth, vecs = {}, {}
    for i in range(30):
        cls = i % 3
        v = (centres[cls] + 0.05 * rng.normal(size=16)) * (1 + i % 4)   # cosine ignores the scale
        j = cat.add_dataset(rec(i, vector_kind="image_radial_v1", vector=v))[0]
        truth[j], vecs[j] = cls, v.astype(np.float32).astype(float)
    cat.add_dataset(rec(99, vector_kind="spectrum_v1", vector=centres[0]))   # another kind: never returned
    stored = {i: cat.get(i) for i in truth}
    q = next(iter(truth))
    hits = cat.similar(q, k=9)
    assert q not in [h["id"] for h in hits] and all(truth[h["id"]] == truth[q] for h in hits)
    brute = sorted((1 - vecs[q] @ vecs[j] / np.linalg.norm(vecs[q]) / np.linalg.norm(vecs[j]), j)
                   for j in vecs if j != q)[:9]
    assert [h["id"] for h in hits] == [j for _, j in brute]
    assert np.allclose([h["distance"] for h in hits], [dist for dist, _ in brute], atol=1e-9)
    assert stored[q]["vector_kind"] == "image_radial_v1"
    hits_vec = cat.similar(centres[1], k=10, kind="image_radial_v1")
    assert len(hits_vec) == 10 and all(truth[h["id"]] == 1 for h in hits_vec)
    assert hits_vec[0]["distance"] < 0.01
    with pytest.raises(InputError, match="kinds"):
        cat.similar(centres[1], k=3)              # two kinds of length 16: ambiguous
    with pytest.raises(InputError, match="no content descriptor"):
        cat.similar(12345)


@pytest.mark.parametrize("query", ["'; DROP TABLE datasets; --", '"', "*", '"unbalanced', "NEAR(a b)", "-x",
                                   "a:b:c", "title:\"x'); DELETE FROM datasets; --\"", "OR AND NOT", "\\"])
def test_injection_attempts_return_normally_and_drop_nothing(cat, query):
    cat.add_dataset(rec(1, title="DROP TABLE datasets notes"))
    cat.add_dataset(rec(2, title="plain"))
    try:
        hits = cat.search(query)
    except InputError:    # a syntax error is a clear refusal, also fine
        hits = None
    assert hits is None or isinstance(hits, list)
    assert cat.stats()["datasets"] == 2 and len(cat.search("")) == 2


def test_free_text_operators_are_literal(cat):
    a, _ = cat.add_dataset(rec(1, title="drop table datasets"))
    assert [h["id"] for h in cat.search("'; DROP TABLE datasets; --")] == [a]


def _as_v2(conn):
    """Bring an empty database to exactly what atomine wrote at schema version 2."""
    assert migrations.upgrade(conn, target=2) == 2
    conn.exec_driver_sql("ALTER TABLE datasets DROP COLUMN content_level")
    conn.exec_driver_sql("DROP TABLE catalog_state")
    if conn.dialect.name == "postgresql":   # version 2 had no full-text index on PostgreSQL
        conn.exec_driver_sql("ALTER TABLE datasets DROP COLUMN search_vector")


def test_migration_v1_to_latest_and_newer_refused(catalog_url):
    path = catalog_url
    engine = raw_engine(path)
    with engine.begin() as conn:
        assert migrations.upgrade(conn, target=1) == 1
    with engine.connect() as conn:
        assert "ix_datasets_signal" not in {i["name"] for i in sa.inspect(conn).get_indexes("datasets")}
    engine.dispose()
    with Catalog(path) as c:           # opening upgrades
        assert c.stats()["schema_version"] == migrations.LATEST == 4
        c.add_dataset(rec(1, title="kept"))
        assert [h["title"] for h in c.search("kept")] == ["kept"]
    engine = raw_engine(path)
    with engine.connect() as conn:
        names = {i["name"] for i in sa.inspect(conn).get_indexes("datasets")}
        assert {"ix_datasets_signal", "ix_datasets_acquisition_date", "ix_datasets_path_signal"} <= names
        # version 4: covering (field, value, id) / (name, value, id) indexes replace the two-column ones
        terms_ix = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("terms")}
        desc_ix = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("descriptors")}
        assert terms_ix.get("ix_terms_field_value_id") == ["field", "value", "dataset_id"]
        assert desc_ix.get("ix_descriptors_name_value_id") == ["name", "value", "dataset_id"]
        assert "ix_terms_field_value" not in terms_ix and "ix_descriptors_name_value" not in desc_ix
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(InputError, match="newer than this atomine"):
        Catalog(path)


def test_migration_v2_to_v3_adds_state_and_content_level(catalog_url):
    path = catalog_url
    engine = raw_engine(path)
    with engine.begin() as conn:
        _as_v2(conn)
        conn.execute(sa.text("INSERT INTO datasets (content_hash, path, name, signal_index, title) "
                             "VALUES ('h:0', '/old/a.dm4', 'a', 0, 'old perovskite')"))
    engine.dispose()
    with Catalog(path) as c:
        assert c.stats()["schema_version"] == migrations.LATEST and c.vectors_generation() == 0
        (old,) = c.search("perovskite")
        assert old["content_level"] == "content" and c.get(old["id"])["content_level"] == "content"
        c.add_dataset(rec(2, vector_kind="v", vector=[1.0, 0.0]))
        assert c.vectors_generation() == 1


def test_add_datasets_in_batches_matches_one_by_one(new_catalog_url):
    records = [rec(i, title=f"item {i}", descriptors={"lattice_a_nm": 0.3 + i / 100}, elements=["Mn"],
                   vector_kind="v", vector=[1.0, float(i)]) for i in range(7)]
    with Catalog(new_catalog_url()) as one, Catalog(new_catalog_url()) as many:
        singles = [one.add_dataset(r) for r in records]
        bulk = many.add_datasets(iter(records), batch=3)
        assert bulk == singles == [(i + 1, "added") for i in range(7)]
        # a repeat within the input, a copy of record 0 elsewhere (its file is gone: a move) and new
        # content at a known place behave as add_dataset does, in order
        again = [records[1], rec(0, path="/moved/f0.dm4", title="item 0"), rec(50, path="/data/f2.dm4")]
        assert many.add_datasets(again) == [(2, "unchanged"), (1, "moved"), (3, "updated")]
        assert [one.add_dataset(r) for r in again] == [(2, "unchanged"), (1, "moved"), (3, "updated")]
        _assert_same_entries(one, many, range(1, 8))
        assert [h["id"] for h in many.search("item element:Mn lattice_a>0.32", limit=50)] == [4, 5, 6, 7]
        assert many.add_datasets([]) == []
        with pytest.raises(InputError, match="batch"):
            many.add_datasets(records, batch=0)
        with pytest.raises(InputError, match="DatasetRecord"):
            many.add_datasets([{"path": "x"}])
        # a bad record refuses its whole batch, before writing; earlier batches stay
        bad = [rec(60), rec(61), rec(62, vector_kind="v", vector=[np.nan]), rec(63)]
        with pytest.raises(InputError, match="vector"):
            many.add_datasets(bad, batch=2)
        assert many.stats()["datasets"] == 9 and many.search("f61")
        assert not many.search("f62") and not many.search("f63")


def test_vectors_generation_counts_every_vector_change(cat):
    g = cat.vectors_generation
    assert g() == 0 and cat.dialect in ("sqlite", "postgresql")
    a, _ = cat.add_dataset(rec(1, vector_kind="v", vector=[1.0, 0.0]))
    assert g() == 1
    cat.add_dataset(rec(1, vector_kind="v", vector=[1.0, 0.0]))           # unchanged: no vector written
    cat.add_dataset(rec(2))                                               # no vector at all
    assert g() == 1
    cat.add_datasets([rec(3, vector_kind="v", vector=[0.0, 1.0]), rec(4, vector_kind="v", vector=[1.0, 1.0])])
    assert g() == 2                                                       # one transaction, one step
    cat.add_dataset(rec(5, path="/data/f1.dm4"))                          # replaces a's vector by none
    assert g() == 3 and cat.similar([1.0, 0.0], kind="v", k=5)[0]["id"] == 4
    cat.remove(a)                                                          # a has no vector now
    assert g() == 3
    cat.remove(4)
    assert g() == 4
    with pytest.raises(InputError):
        cat.add_dataset(rec(6, vector_kind="v", vector=[np.inf, 0.0]))
    assert g() == 4                                                       # the refused add wrote nothing


def test_metadata_only_record_is_replaced_by_content(cat, tmp_path):
    quick = rec(1, content_level="metadata", title="header only")
    i, _ = cat.add_dataset(quick)
    assert cat.get(i)["content_level"] == "metadata" and cat.search("header")[0]["content_level"] == "metadata"
    assert cat.add_dataset(quick) == (i, "unchanged")
    full = rec(1, title="full", descriptors={"n_phases": 1}, thumbnail_png=b"png", vector_kind="v", vector=[1.0])
    assert cat.add_dataset(full) == (i, "updated")
    got = cat.get(i)
    assert got["content_level"] == "content" and got["descriptors"] == {"n_phases": 1.0} and got["has_thumbnail"]
    assert cat.vectors_generation() == 1 and cat.stats()["datasets"] == 1
    # content is never downgraded to metadata-only, and a content record stays as it is
    assert cat.add_dataset(quick) == (i, "unchanged") and cat.add_dataset(full) == (i, "unchanged")
    assert cat.get(i)["content_level"] == "content" and cat.search("full")[0]["id"] == i
    with pytest.raises(InputError, match="content_level"):
        cat.add_dataset(rec(2, content_level="partial"))


def test_bad_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Catalog(tmp_path / "missing" / "c.sqlite")
    with pytest.raises(InputError, match="folder"):
        Catalog(tmp_path)
    with pytest.raises(InputError, match="only sqlite"):
        Catalog("mysql://u@localhost/db")


def test_bad_records(catalog_url):
    with Catalog(catalog_url) as c:
        with pytest.raises(InputError, match="content hash"):
            c.add_dataset(rec(1, content_hash=""))
        with pytest.raises(InputError, match="vector"):
            c.add_dataset(rec(1, vector_kind="v", vector=np.array([np.nan, 1.0])))
        assert c.stats()["datasets"] == 0     # the failed add left nothing behind


def _writer(path, start, n):
    with Catalog(path) as c:
        for i in range(start, start + n):
            c.add_dataset(rec(i, title=f"item{i}", descriptors={"lattice_a_nm": 0.3 + i * 1e-3}))


def _reader(path, rounds, out):
    seen = []
    with Catalog(path) as c:
        for _ in range(rounds):
            seen.append(len(c.search("", limit=10_000)))
            c.search("item1 lattice_a>0")
    out.put(seen)


def test_two_writers_and_a_reader_lose_nothing(catalog_url):
    path = catalog_url
    Catalog(path).close()
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, 0, 50)), ctx.Process(target=_writer, args=(path, 50, 50)),
             ctx.Process(target=_reader, args=(path, 40, out))]
    for p in procs:
        p.start()
    seen = out.get(timeout=120)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert seen == sorted(seen)                 # the reader never sees rows disappear
    with Catalog(path) as c:
        assert c.stats()["datasets"] == 100
        assert sorted(h["id"] for h in c.search("", limit=1000)) == list(range(1, 101))
        assert len(c.search("lattice_a>0", limit=1000)) == 100


def test_a_copy_beside_its_original_is_one_dataset_with_two_paths(cat, tmp_path):
    first, copy = tmp_path / "a.dm4", tmp_path / "copy_of_a.dm4"
    first.write_bytes(b"x")
    copy.write_bytes(b"x")
    i, _ = cat.add_dataset(rec(7, path=str(first)))
    # the original is still there: the copy joins the path history, the current path stays
    assert cat.add_dataset(rec(7, path=str(copy))) == (i, "unchanged")
    assert cat.add_dataset(rec(7, path=str(first))) == (i, "unchanged")
    assert cat.add_dataset(rec(7, path=str(copy))) == (i, "unchanged")
    got = cat.get(i)
    assert got["path"] == str(first) and [p["path"] for p in got["paths"]] == [str(first), str(copy)]
    # once the original is gone, the same content elsewhere is a move
    first.unlink()
    assert cat.add_dataset(rec(7, path=str(tmp_path / "moved.dm4"))) == (i, "moved")


def test_one_batch_mixing_new_repeated_moved_and_replaced_records(new_catalog_url):
    # the fast path (set-wise inserts) and the careful path (add_dataset rules) interleave within
    # one transaction: each record must see exactly what one-by-one insertion would show it
    items = [rec(1, title="one"), rec(2, title="two"), rec(1, title="one"),            # repeat: unchanged
             rec(2, path="/elsewhere/f2.dm4", title="two"),                              # f2 is gone: moved
             rec(3, path="/data/f1.dm4", title="three", elements=["Fe"]),                # new hash at f1: updated
             rec(4, title="four", vector_kind="v", vector=[0.0, 1.0]), rec(5, path="/data/f2.dm4", title="five")]
    with Catalog(new_catalog_url()) as one, Catalog(new_catalog_url()) as many:
        one.add_failure("/data/f4.dm4", "unreadable")
        many.add_failure("/data/f4.dm4", "unreadable")
        singles = [one.add_dataset(r) for r in items]
        assert many.add_datasets(items, batch=100) == singles == [
            (1, "added"), (2, "added"), (1, "unchanged"), (2, "moved"), (1, "updated"), (3, "added"), (4, "added")]
        assert one.failures() == many.failures() == []
        assert many.vectors_generation() == one.vectors_generation() == 1
        _assert_same_entries(one, many, range(1, 5))
        assert many.get(2)["paths"][-1]["path"] == "/elsewhere/f2.dm4"
        assert [h["id"] for h in many.search("element:fe")] == [1]


def test_sqlite_ranked_page_matches_the_joined_ranking_and_the_window(tmp_path, monkeypatch):
    from atomine.catalog import _search, _sqlite_fts
    monkeypatch.setattr(_search, "USE_PLAN", False)   # this test is about ranked_page; the plan has its own
    words = ["perovskite"] * 30
    records = [rec(i, title=f"{'perovskite ' * (1 + i % 4)}{i}", sample="film" if i % 3 else "lamella",
                   beam_energy_kv=200.0 if i % 2 else 80.0, original_text=" ".join(words[: i % 7]))
               for i in range(30)]
    with Catalog(tmp_path / "c.sqlite") as c:
        c.add_datasets(records)
        for q in ("perovskite", "perovskite film beam_energy>=100", "perovskite lamella"):
            parsed = __import__("atomine.catalog.query", fromlist=["parse"]).parse(q)
            from atomine.catalog._filters import where_clause
            expr = _sqlite_fts.match_expression(parsed.terms)
            fts = _sqlite_fts.ranked_matches(expr)
            d = __import__("atomine.catalog.schema", fromlist=["datasets"]).datasets
            stmt = sa.select(d.c.id, fts.c.rank, fts.c.snippet).join(fts, fts.c.id == d.c.id).where(
                *[where_clause(f) for f in parsed.filters]).order_by(fts.c.rank, d.c.id)
            with c._read() as conn:
                joined = [(r.id, r.rank, r.snippet) for r in conn.execute(stmt.limit(7).offset(2))]
            hits = c.search(q, limit=7, offset=2)
            assert [(h["id"], -h["score"], h["snippet"]) for h in hits] == joined and joined
            assert not any("ranked_over" in h for h in hits)
        narrow_q = "perovskite sample:lamella beam_energy<100"   # 30 text matches, 5 pass, 1 in the window
        narrow_full = c.search(narrow_q, limit=20)
        # a window of 10: only the 10 newest matches (ids 21..30) are ranked, and the hits say so
        monkeypatch.setattr(_sqlite_fts, "RANK_WINDOW", 10)
        hits = c.search("perovskite", limit=5)
        assert len(hits) == 5 and all(h["id"] > 20 and h["ranked_over"] == 10 for h in hits)
        full = [h for h in c.search("perovskite", limit=30) if h["id"] > 20]
        assert [h["id"] for h in hits] == [h["id"] for h in full[:5]]   # same order within the window
        # filters that leave less than a page in the window: everything is ranked, nothing hidden
        # (the older matches are ranked and merged: the same hits, order and scores as with no window)
        narrow = c.search(narrow_q, limit=20)
        assert sorted(h["id"] for h in narrow) == [i + 1 for i in range(30) if i % 3 == 0 and i % 2 == 0]
        assert narrow == narrow_full and not any("ranked_over" in h for h in narrow)
        # a smaller page that the window fills is ranked within the window (and says so)
        small = c.search(narrow_q, limit=1)
        assert [(h["id"], h["ranked_over"]) for h in small] == [(25, 10)]


def _random_catalog_records(rng, n):
    signals, words = ["HAADF", "ABF", "EELS", "STM", None], ["film", "lamella", "perovskite", "oxide", "wire"]
    elements = ["O", "Mn", "Fe", "Ti", "Sr", "La"]
    out = []
    for i in range(n):
        desc = {"lattice_a_nm": float(rng.uniform(0.3, 0.5))} if rng.random() < 0.8 else {}
        if rng.random() < 0.3:
            desc["edge:Mn_L23"] = float(rng.integers(0, 2))
        out.append(rec(i, signal=signals[i % 5], kind="image" if i % 3 else "spectrum_image",
                       beam_energy_kv=None if i % 11 == 0 else float(rng.choice([60, 80, 200, 300])),
                       pixel_size_nm=float(rng.choice([0.01, 0.02, 0.05])),
                       acquisition_date=f"20{rng.integers(15, 25)}-0{rng.integers(1, 10)}-1{rng.integers(0, 9)}",
                       instrument=str(rng.choice(["Titan 1", "ARM 2", "Nion 3"])),
                       elements=list(rng.choice(elements, size=int(rng.integers(0, 3)), replace=False)),
                       tags=["good"] if i % 4 == 0 else [], descriptors=desc,
                       title=" ".join(rng.choice(words, size=int(rng.integers(1, 4)))) + f" {i}",
                       original_text=" ".join(rng.choice(words, size=int(rng.integers(0, 5))))))
    return out


_RANDOM_FILTERS = ["element:Mn", "element:Fe,Ti", "element!=O", "beam_energy>=200", "beam_energy<100",
                   "beam_energy:70..250", "pixel_size<=0.02nm", "date:2018..2021", "date>=2020-05",
                   "lattice_a:0.35..0.42", "lattice_a>0.45", "lattice_a!=0.4", "edge:Mn_L23", "edge!=Mn_L23",
                   "tag:good", "tag!=good", "signal:HAADF", "signal:haadf,abf", "signal!=EELS", "kind:image",
                   "instrument:titan", "title:film"]


def test_filter_first_plan_equals_the_straightforward_sql_on_random_queries(tmp_path, monkeypatch):
    """Every route of the SQLite plan (sets read or probed, chunked checks, fallback) returns exactly
    what one plain statement returns: the same ids in the same order, the same BM25 scores."""
    from atomine.catalog import _plan, _sqlite_fts, query
    from atomine.catalog import schema as S
    from atomine.catalog._filters import where_clause
    rng = np.random.default_rng(11)
    d = S.datasets
    with Catalog(tmp_path / "c.sqlite") as c:
        c.add_datasets(_random_catalog_records(rng, 600))

        def truth(parsed):
            clauses = [where_clause(f) for f in parsed.filters]
            with c._read() as conn:
                if not parsed.terms:
                    return [(i, 0.0) for i in conn.execute(sa.select(d.c.id).where(*clauses).order_by(d.c.id))
                            .scalars()]
                fts = _sqlite_fts.ranked_matches(_sqlite_fts.match_expression(parsed.terms))
                return [(r.id, -r.rank + 0.0) for r in conn.execute(sa.select(d.c.id, fts.c.rank).join(
                    fts, fts.c.id == d.c.id).where(*clauses).order_by(fts.c.rank, d.c.id))]
        routes = {"plan": 0, "plain": 0}
        real_candidates = _plan.candidates

        def spy(conn, filters):
            ids, rest = real_candidates(conn, filters)
            routes["plain" if ids is None else "plan"] += 1
            return ids, rest
        monkeypatch.setattr(_plan, "candidates", spy)
        checked = nonempty = windowed = 0
        for trial in range(160):
            # each trial its own plan settings: read every set / probe them / tiny chunks / fall back
            monkeypatch.setattr(_plan, "PROBE_RATIO", [20, 0, 1][trial % 3])
            monkeypatch.setattr(_plan, "SET_CAP", [150_000, 40][trial % 4 == 3])
            monkeypatch.setattr(_plan, "TEXT_CANDIDATES_MAX", [5000, 30][trial % 5 == 4])
            filters = list(rng.choice(_RANDOM_FILTERS, size=int(rng.integers(1, 5)), replace=False))
            text = list(rng.choice(["film", "perovskite", "oxide wire", "lamella"], size=int(rng.integers(0, 2))))
            q = " ".join(text + filters)
            expected = truth(query.parse(q))
            got = [(h["id"], h["score"]) for h in c.search(q, limit=10_000)]
            assert [i for i, _ in got] == [i for i, _ in expected], q
            assert np.allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12, atol=0), q
            offset = int(rng.integers(0, 8))
            page = [h["id"] for h in c.search(q, limit=3, offset=offset)]
            assert page == [i for i, _ in expected][offset:offset + 3], q
            if text:
                # a small ranking window: a page served from the window holds the best of the newest
                # `window` word matches that pass the filters, and says so; otherwise it is the full ranking
                window = int(rng.choice([10, 40, 120]))
                monkeypatch.setattr(_sqlite_fts, "RANK_WINDOW", window)
                hits = c.search(q, limit=5, offset=offset)
                monkeypatch.setattr(_sqlite_fts, "RANK_WINDOW", 50_000)
                if hits and "ranked_over" in hits[0]:
                    with c._read() as conn:
                        cutoff = _sqlite_fts.window_cutoff(conn, _sqlite_fts.match_expression(query.parse(q).terms),
                                                             window)
                    assert cutoff is not None and all(h["ranked_over"] == window for h in hits), q
                    newer = [i for i, _ in expected if i >= cutoff]
                    assert [h["id"] for h in hits] == newer[offset:offset + 5], q
                    windowed += 1
                else:
                    assert [h["id"] for h in hits] == [i for i, _ in expected][offset:offset + 5], q
            checked += 1
            nonempty += bool(expected)
        assert checked == 160 and nonempty > 80   # the queries are not vacuous
        assert routes["plan"] > 150 and routes["plain"] > 20 and windowed > 5   # every route was taken
