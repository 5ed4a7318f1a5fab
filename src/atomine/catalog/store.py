"""The catalog store: datasets, their descriptors, thumbnails and the analyses that used them.

One :class:`Catalog` wraps a database reached through SQLAlchemy Core: a SQLite file by
default (embedded, WAL mode so that readers never wait for a writer), or a PostgreSQL
URL for a lab server (plumbing in :mod:`._engine`, full text in :mod:`._sqlite_fts` /
:mod:`._pg_fts`). Every write is one transaction; a dataset is identified by its
content hash, so re-adding an unchanged file is a no-op and a moved file is recognised.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ..errors import InputError
from . import _engine, migrations
from . import schema as S
from .records import (AnalysisRecord, DatasetRecord, child_rows, dataset_row, insert_children, to_json, now_iso,
                      public_analysis, public_dataset)

_MAX_LIMIT = 10_000

class Catalog:
    """A searchable catalog of datasets and analyses.

    Parameters
    ----------
    url : str, path or None
        ``None``: the per-user SQLite file (``$ATOMINE_CATALOG`` or
        ``~/.local/share/atomine/catalog.sqlite``); a path: a SQLite file there; a
        ``sqlite://...`` or ``postgresql://...`` URL as given. The schema is created or
        upgraded on open; a catalog from a newer atomine is refused.
    """

    def __init__(self, url: str | os.PathLike | None = None):
        parsed = _engine.resolve_url(url)
        self.url = _engine.shown(parsed)
        self._engine = _engine.make_engine(parsed)
        if self._engine.dialect.name == "sqlite":
            from . import _sqlite_fts as fts
        else:
            from . import _pg_fts as fts
        self._fts = fts
        try:
            with self._write() as conn:
                self.schema_version = migrations.upgrade(conn)
        except sa.exc.DatabaseError as exc:
            self._engine.dispose()
            raise InputError(f"cannot open catalog {self.url}: {' '.join(str(exc.orig).split())}") from None
        except BaseException:
            self._engine.dispose()
            raise

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _write(self):
        with self._engine.connect() as conn:
            conn.execution_options(atomine_write=True)
            with conn.begin():
                _engine.lock_for_write(conn)
                yield conn

    @contextmanager
    def _read(self):
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"

    # -- datasets -------------------------------------------------------------------------------
    def add_dataset(self, record: DatasetRecord) -> tuple[int, str]:
        """Store one dataset; return ``(id, status)`` with status added, unchanged, moved or updated.

        Same content hash at the same path: nothing changes ("unchanged"), unless the stored
        record is metadata-only and the new one has content: then it is replaced, id kept
        ("updated"). Same hash at a new path while the stored file is gone: the path is
        updated and the old one kept in the history ("moved"); while the stored file is still
        there, the new path is a copy, added to the path history ("unchanged"). New hash at a
        known (path, signal index): the record is replaced, id kept ("updated").
        """
        return self.add_datasets([record], batch=1)[0]

    def add_datasets(self, records: Iterable[DatasetRecord], *, batch: int = 500) -> list[tuple[int, str]]:
        """Store many datasets, ``batch`` per transaction; return ``(id, status)`` for each, in order.

        Each record follows the rules of :meth:`add_dataset` (a record repeated within the
        input is "unchanged" the second time). Every record of a batch is checked before its
        transaction opens; a bad one raises InputError and nothing of its batch is stored
        (earlier batches stay).
        """
        batch = _bounded(batch, "batch", 1, None)
        out: list[tuple[int, str]] = []
        chunk: list[DatasetRecord] = []
        for record in records:
            if not isinstance(record, DatasetRecord):
                raise InputError(f"add_datasets takes DatasetRecord objects, got {type(record).__name__}")
            chunk.append(record)
            if len(chunk) == batch:
                out += self._add_batch(chunk)
                chunk = []
        if chunk:
            out += self._add_batch(chunk)
        return out

    def _add_batch(self, records: list[DatasetRecord]) -> list[tuple[int, str]]:
        rows = [dataset_row(r) for r in records]   # validates every record before writing any
        with self._write() as conn:
            out, vectors_changed = _add_many(conn, records, rows)
            if vectors_changed:
                _bump_vectors_generation(conn)
        return out

    def vectors_generation(self) -> int:
        """A counter that changes (in the same transaction) whenever any content vector is added, replaced or removed.

        Caches of vector indexes key on it: an equal value means the same vectors.
        """
        st = S.catalog_state
        with self._read() as conn:
            return int(conn.execute(sa.select(st.c.value).where(st.c.key == _VECTORS_GENERATION)).scalar() or 0)

    @property
    def dialect(self) -> str:
        """The database backend: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def get(self, dataset_id: int) -> dict:
        """Every stored field of one dataset, with descriptors, path history, analyses and has_thumbnail."""
        d = S.datasets
        with self._read() as conn:
            row = conn.execute(sa.select(d).where(d.c.id == _as_id(dataset_id))).mappings().first()
            if row is None:
                raise InputError(f"no dataset with id {dataset_id} in the catalog; search it to find ids")
            out = public_dataset(row)
            out["descriptors"] = {r.name: r.value for r in conn.execute(
                sa.select(S.descriptors.c.name, S.descriptors.c.value).where(S.descriptors.c.dataset_id == row["id"])
                .order_by(S.descriptors.c.name))}
            out["paths"] = [{"path": r.path, "seen": r.seen} for r in conn.execute(
                sa.select(S.dataset_paths).where(S.dataset_paths.c.dataset_id == row["id"])
                .order_by(S.dataset_paths.c.id))]
            out["has_thumbnail"] = conn.execute(sa.select(sa.func.count()).where(
                S.thumbnails.c.dataset_id == row["id"])).scalar() > 0
            a, ai, t = S.analyses, S.analysis_inputs, S.terms
            linked = (sa.select(a).distinct().join(ai, ai.c.analysis_id == a.c.id)
                      .join(t, sa.and_(t.c.field == "hash", t.c.value == ai.c.input_hash))
                      .where(t.c.dataset_id == row["id"]).order_by(a.c.id))
            out["analyses"] = [public_analysis(r) for r in conn.execute(linked).mappings()]
        return out

    def thumbnail(self, dataset_id: int) -> bytes | None:
        """The PNG thumbnail of a dataset, or None when it has none."""
        with self._read() as conn:
            return conn.execute(sa.select(S.thumbnails.c.png).where(
                S.thumbnails.c.dataset_id == _as_id(dataset_id))).scalar()

    def thumbnail_ids(self, dataset_ids) -> set[int]:
        """Which of ``dataset_ids`` have a thumbnail (one query, for a page of search hits)."""
        ids = [_as_id(i) for i in dataset_ids]
        if not ids:
            return set()
        with self._read() as conn:
            return set(conn.execute(sa.select(S.thumbnails.c.dataset_id).where(
                S.thumbnails.c.dataset_id.in_(ids))).scalars())

    def remove(self, dataset_id: int) -> None:
        """Delete a dataset and everything stored with it (the file is not touched)."""
        dataset_id = _as_id(dataset_id)
        with self._write() as conn:
            # explicit child deletes: PostgreSQL honours ON DELETE CASCADE, but an old SQLite
            # file opened without foreign_keys would not
            if conn.execute(S.vectors.delete().where(S.vectors.c.dataset_id == dataset_id)).rowcount:
                _bump_vectors_generation(conn)
            for table in (S.terms, S.descriptors, S.thumbnails, S.dataset_paths):
                conn.execute(table.delete().where(table.c.dataset_id == dataset_id))
            if conn.execute(S.datasets.delete().where(S.datasets.c.id == dataset_id)).rowcount == 0:
                raise InputError(f"no dataset with id {dataset_id} in the catalog; nothing removed")

    # -- failures and analyses ------------------------------------------------------------------
    def add_failure(self, path: str, reason: str) -> None:
        """Record a file that could not be read, with the reason (replaces an earlier failure of that path)."""
        if not path or not isinstance(path, str):
            raise InputError(f"failure path must be a non-empty string, got {path!r}")
        with self._write() as conn:
            conn.execute(S.failures.delete().where(S.failures.c.path == path))
            conn.execute(S.failures.insert().values(path=path, reason=str(reason), time=now_iso()))

    def failures(self) -> list[dict]:
        """Files that could not be read: id, path, reason, time."""
        with self._read() as conn:
            return [dict(r) for r in conn.execute(sa.select(S.failures).order_by(S.failures.c.id)).mappings()]

    def add_analysis(self, record: AnalysisRecord) -> int:
        """Store an atomine result folder, linked to its inputs by content hash; return its id.

        Re-adding the same folder replaces its entry. Inputs not (yet) in the catalog link
        as soon as a dataset with that hash is added.
        """
        if not record.path or not isinstance(record.path, str):
            raise InputError(f"analysis path must be a non-empty string, got {record.path!r}")
        a = S.analyses
        with self._write() as conn:
            old = conn.execute(sa.select(a.c.id).where(a.c.path == record.path)).scalar()
            if old is not None:
                conn.execute(S.analysis_inputs.delete().where(S.analysis_inputs.c.analysis_id == old))
                conn.execute(a.delete().where(a.c.id == old))
            new = conn.execute(a.insert().values(
                path=record.path, workflow=record.workflow, atomine_version=record.atomine_version,
                time=record.time, parameters=to_json(record.parameters), outputs=to_json(list(record.outputs)),
                summary=to_json(record.summary))).inserted_primary_key[0]
            hashes = sorted({str(h) for h in record.input_hashes if h})
            if hashes:
                conn.execute(S.analysis_inputs.insert(), [{"analysis_id": new, "input_hash": h} for h in hashes])
        return new

    def analysis(self, analysis_id: int) -> dict:
        """One analysis with the ids of the catalogued datasets among its inputs."""
        a, ai, t = S.analyses, S.analysis_inputs, S.terms
        with self._read() as conn:
            row = conn.execute(sa.select(a).where(a.c.id == _as_id(analysis_id))).mappings().first()
            if row is None:
                raise InputError(f"no analysis with id {analysis_id} in the catalog")
            out = public_analysis(row)
            out["input_hashes"] = list(conn.execute(sa.select(ai.c.input_hash).where(ai.c.analysis_id == row["id"])
                                                    .order_by(ai.c.input_hash)).scalars())
            out["datasets"] = sorted(set(conn.execute(sa.select(t.c.dataset_id).join(
                ai, sa.and_(t.c.field == "hash", t.c.value == ai.c.input_hash)).where(
                ai.c.analysis_id == row["id"])).scalars()))
        return out

    # -- search ---------------------------------------------------------------------------------
    def search(self, query="", *, limit: int = 20, offset: int = 0) -> list[dict]:
        """Datasets matching a query (see :mod:`atomine.catalog.query`), best first.

        Free text is ranked by BM25 on SQLite and by ts_rank_cd over a weighted tsvector on
        PostgreSQL (title outweighs original metadata on both), ties and
        filter-only queries by id. Each hit: id, path, name, signal, kind, shape, title,
        pixel_size_nm, beam_energy_kv, content_level, score (higher is better; 0 without free
        text), snippet.

        Very common words on SQLite: when more than ``_sqlite_fts.RANK_WINDOW`` (50,000) datasets
        match the words, only the newest 50,000 matches are ranked (BM25 costs ~0.8 us a match)
        and every hit carries ``"ranked_over": 50000``; every hit still matches the query, and a
        query whose filters leave less than a page in that window is ranked in full (see
        :func:`._sqlite_fts.ranked_page`). Without that key, every match was ranked.
        """
        from . import query as _query
        from ._filters import where_clause
        q = _query.parse(query) if isinstance(query, str) else query
        limit, offset = _bounded(limit, "limit", 1, _MAX_LIMIT), _bounded(offset, "offset", 0, None)
        d = S.datasets
        cols = [d.c.id, d.c.path, d.c.name, d.c.signal, d.c.kind, d.c.shape, d.c.title, d.c.pixel_size_nm,
                d.c.beam_energy_kv, d.c.content_level]
        expression = None
        if q.terms or q.text:
            expression = self._fts.match_expression(q.terms if q.terms else q.text)
        clauses = [where_clause(f) for f in q.filters]
        window = None
        with self._read() as conn:
            if expression is not None and hasattr(self._fts, "ranked_page"):
                # SQLite: rank and cut to the page inside the FTS5 query, then read only the page's rows
                page = self._fts.ranked_page(conn, expression, clauses, limit=limit, offset=offset,
                                             window=self._fts.RANK_WINDOW)
                by_id = {r["id"]: r for r in conn.execute(sa.select(*cols).where(
                    d.c.id.in_([i for i, _, _ in page]))).mappings()} if page else {}
                rows = [dict(by_id[i], rank=rank, snippet=snippet) for i, rank, snippet in page if i in by_id]
                window = self._fts.last_window()
            else:
                if expression is not None:
                    fts = self._fts.ranked_matches(expression)
                    stmt = (sa.select(*cols, fts.c.rank, fts.c.snippet).join(fts, fts.c.id == d.c.id)
                            .order_by(fts.c.rank, d.c.id))
                else:
                    stmt = (sa.select(*cols, sa.literal(0.0).label("rank"), sa.literal("").label("snippet"))
                            .order_by(d.c.id))
                if clauses:
                    stmt = stmt.where(*clauses)
                rows = conn.execute(stmt.limit(limit).offset(offset)).mappings().all()
        hits = [{"id": r["id"], "path": r["path"], "name": r["name"], "signal": r["signal"], "kind": r["kind"],
                 "shape": json.loads(r["shape"] or "[]"), "title": r["title"],
                 "pixel_size_nm": r["pixel_size_nm"], "beam_energy_kv": r["beam_energy_kv"],
                 "score": -float(r["rank"] or 0.0) + 0.0, "snippet": r["snippet"] or "",
                 "content_level": r["content_level"]} for r in rows]
        if window is not None:
            for hit in hits:
                hit["ranked_over"] = window
        return hits

    def similar(self, target, *, k: int = 10, kind: str | None = None, exact: bool | None = None,
                progress=None) -> list[dict]:
        """Nearest neighbours by cosine distance of the content descriptor vectors.

        ``target`` is a dataset id (compared within its descriptor kind, itself excluded)
        or a vector (give ``kind`` when vectors of several kinds share its length).
        ``exact``: True scans every vector, False uses the approximate index, None (default)
        picks the index only for large kinds (see :mod:`._similar`). Each hit: id, path, name,
        signal, kind, distance (1 - cosine similarity, 0 = same direction), approximate.
        ``progress(done, total, message)``, if given, is called while an approximate index is
        built (minutes at 10^6 vectors; instant once cached).
        """
        from ._similar import nearest
        return nearest(self, target, k=k, kind=kind, exact=exact, progress=progress)

    def stats(self) -> dict:
        """Counts of datasets (total, per signal, per kind), analyses and failures; the schema version."""
        d = S.datasets
        with self._read() as conn:
            count = lambda table: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()  # noqa: E731
            by = lambda col: {(r[0] if r[0] is not None else "unknown"): r[1] for r in conn.execute(  # noqa: E731
                sa.select(col, sa.func.count()).group_by(col).order_by(col))}
            return {"datasets": count(d), "by_signal": by(d.c.signal), "by_kind": by(d.c.kind),
                    "analyses": count(S.analyses), "failures": count(S.failures),
                    "schema_version": migrations.current_version(conn), "url": self.url}


# -- rows ---------------------------------------------------------------------------------------
_VECTORS_GENERATION = "vectors_generation"


def _bump_vectors_generation(conn: sa.Connection) -> None:
    # one UPDATE of one row: concurrent writers serialise on its lock, none loses an increment
    st = S.catalog_state
    conn.execute(st.update().where(st.c.key == _VECTORS_GENERATION).values(value=st.c.value + 1))


# SQLite's default cap on bound parameters is 32766 (3.32+); 900 values per IN list stays far below
_IN_CHUNK = 900


def _chunks(values: list, size: int = _IN_CHUNK):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _insert_rows(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """One executemany of ``rows`` (dicts with the same keys, every value ready for the driver).

    On SQLite the statement goes straight to the driver: SQLAlchemy's per-row parameter
    processing cost as much as the insert itself (~40 us a row for the 37 columns of
    ``datasets``). PostgreSQL keeps SQLAlchemy's batched multi-row VALUES.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), rows)
        return
    cols = list(rows[0])
    sql = (f"INSERT INTO {table.name} ({', '.join(cols)}) "   # names from the schema, never from input
           f"VALUES ({', '.join('?' * len(cols))})")
    conn.exec_driver_sql(sql, [tuple(r[c] for c in cols) for r in rows])


def _add_many(conn: sa.Connection, records: list[DatasetRecord], rows: list[dict]) -> tuple[list, bool]:
    """Store a batch inside ``conn``'s transaction with a few set-wise statements; (id, status) per record.

    The common case, a record whose content hash and (path, signal index) are new both to the
    database and to the batch so far, is queued and inserted with one executemany per table.
    Any other record (a hash or place seen before: unchanged, moved, copy, updated) goes through
    :func:`_add_one` after the queue is flushed, so each record sees exactly the state that
    inserting one by one would give it. Returns the statuses and whether any vector changed.
    """
    d = S.datasets
    paths = sorted({r.path for r in records})
    hashes = sorted({r.content_hash for r in records})
    for part in _chunks(paths):
        conn.execute(S.failures.delete().where(S.failures.c.path.in_(part)))
    # what the database already holds of this batch: one indexed lookup per IN chunk
    known_hashes, known_places = set(), set()
    for part in _chunks(hashes):
        known_hashes |= set(conn.execute(sa.select(d.c.content_hash).where(d.c.content_hash.in_(part))).scalars())
    for part in _chunks(paths):
        known_places |= {(p, i) for p, i in conn.execute(sa.select(d.c.path, d.c.signal_index)
                                                          .where(d.c.path.in_(part)))}
    out: list = [None] * len(records)
    pending: list[int] = []   # positions of queued new records
    changed = False

    def flush():
        nonlocal changed
        if not pending:
            return
        _insert_rows(conn, d, [rows[j] for j in pending])
        # ids back by content hash (unique): the same on SQLite and PostgreSQL, one indexed query per chunk
        ids = {}
        for part in _chunks([records[j].content_hash for j in pending]):
            ids.update(conn.execute(sa.select(d.c.content_hash, d.c.id).where(d.c.content_hash.in_(part))).all())
        seen = rows[pending[0]]["added"]
        children = {S.dataset_paths: [], S.terms: [], S.descriptors: [], S.vectors: [], S.thumbnails: []}
        for j in pending:
            dataset_id = ids[records[j].content_hash]
            out[j] = (dataset_id, "added")
            children[S.dataset_paths].append({"dataset_id": dataset_id, "path": records[j].path, "seen": seen})
            for table, child in child_rows(dataset_id, records[j]).items():
                children[table] += child
            changed |= records[j].vector is not None
        for table, child in children.items():
            _insert_rows(conn, table, child)
        pending.clear()

    for j, (record, row) in enumerate(zip(records, rows)):
        place = (record.path, int(record.signal_index))
        if record.content_hash in known_hashes or place in known_places:
            flush()
            dataset_id, status, vec_changed = _add_one(conn, record, row)
            out[j] = (dataset_id, status)
            changed |= vec_changed
        else:
            pending.append(j)
        # every later record that shares this hash or place takes the careful path
        known_hashes.add(record.content_hash)
        known_places.add(place)
    flush()
    return out, changed


def _add_one(conn: sa.Connection, record: DatasetRecord, row: dict) -> tuple[int, str, bool]:
    """The identity rules of :meth:`Catalog.add_dataset` inside ``conn``'s transaction.

    Returns (id, status, whether any row of ``vectors`` changed).
    """
    d = S.datasets
    conn.execute(S.failures.delete().where(S.failures.c.path == record.path))
    old = conn.execute(sa.select(d.c.id, d.c.path, d.c.content_level)
                       .where(d.c.content_hash == record.content_hash)).first()
    replace = None
    if old is not None:
        if old.path == record.path:
            if not (old.content_level == "metadata" and record.content_level == "content"):
                return old.id, "unchanged", False
            replace = old.id   # a full ingest of a file first catalogued from its headers only
        else:
            known = conn.execute(sa.select(S.dataset_paths.c.id).where(
                S.dataset_paths.c.dataset_id == old.id, S.dataset_paths.c.path == record.path)).first()
            if Path(old.path).exists() or known is not None:
                # a copy beside a file that is still there (or a copy seen before): one dataset, several
                # places; the current path stays, the copy joins the path history once
                if known is None:
                    conn.execute(S.dataset_paths.insert().values(dataset_id=old.id, path=record.path, seen=now_iso()))
                return old.id, "unchanged", False
            conn.execute(d.update().where(d.c.id == old.id).values(path=record.path, modified=row["modified"],
                                                                    updated=row["updated"]))
            conn.execute(S.dataset_paths.insert().values(dataset_id=old.id, path=record.path, seen=now_iso()))
            return old.id, "moved", False
    if replace is None:
        replace = conn.execute(sa.select(d.c.id).where(
            d.c.path == record.path, d.c.signal_index == record.signal_index)).scalar()
    changed = record.vector is not None
    if replace is not None:
        row = {k: v for k, v in row.items() if k != "added"}
        conn.execute(d.update().where(d.c.id == replace).values(**row))
        changed |= bool(conn.execute(S.vectors.delete().where(S.vectors.c.dataset_id == replace)).rowcount)
        for table in (S.terms, S.descriptors, S.thumbnails):
            conn.execute(table.delete().where(table.c.dataset_id == replace))
        dataset_id, status = replace, "updated"
    else:
        dataset_id, status = conn.execute(d.insert().values(**row)).inserted_primary_key[0], "added"
        conn.execute(S.dataset_paths.insert().values(dataset_id=dataset_id, path=record.path, seen=now_iso()))
    insert_children(conn, dataset_id, record)
    return dataset_id, status, changed


def _as_id(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"a catalog id is an integer, got {value!r}")
    return int(value)


def _bounded(value, name, low, high) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        raise InputError(f"{name} must be an integer from {low}" + (f" to {high}" if high else "") + f", got {value!r}")
    return int(value)



__all__ = ["AnalysisRecord", "Catalog", "DatasetRecord"]
