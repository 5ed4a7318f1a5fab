"""The catalog store: datasets, their descriptors, thumbnails and the analyses that used them.

One :class:`Catalog` wraps a database reached through SQLAlchemy Core: a SQLite file by
default (embedded, WAL mode so that readers never wait for a writer), or a PostgreSQL
URL for a lab server. Every write is one transaction; a dataset is identified by its
content hash, so re-adding an unchanged file is a no-op and a moved file is recognised.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ..errors import InputError
from . import migrations
from . import schema as S
from .records import (AnalysisRecord, DatasetRecord, dataset_row, insert_children, to_json, now_iso,
                      public_analysis, public_dataset)

_MAX_LIMIT = 10_000


def _default_url() -> str:
    env = os.environ.get("ATOMINE_CATALOG")
    if env:
        return env if "://" in env else "sqlite:///" + os.path.abspath(os.path.expanduser(env))
    path = Path.home() / ".local" / "share" / "atomine" / "catalog.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + str(path)


def _resolve_url(url) -> str:
    if url is None:
        return _default_url()
    text = os.fspath(url) if isinstance(url, os.PathLike) else url
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"catalog must be a file path or a database URL, got {url!r}")
    if "://" in text:
        return text
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        raise InputError(f"catalog path {text!r} is a folder; give a file name such as {text}/catalog.sqlite")
    if not path.parent.is_dir():
        raise InputError(f"folder {str(path.parent)!r} of the catalog does not exist; create it first")
    return "sqlite:///" + str(path)


def _make_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InputError(f"cannot read catalog URL {url!r}: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except ImportError as exc:  # no driver, e.g. psycopg
            raise InputError(f"no database driver for {parsed.drivername!r} ({exc}); install it") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control from the driver so that writes can BEGIN IMMEDIATE
        # (a deferred writer that upgrades its lock gets SQLITE_BUSY without waiting).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("atomine_write") else "BEGIN")

    return engine


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
        self._url = _resolve_url(url)
        self.url = sa.engine.make_url(self._url).render_as_string(hide_password=True)
        self._engine = _make_engine(self._url)
        self._fts = None
        if self._engine.dialect.name == "sqlite":
            from . import _sqlite_fts
            self._fts = _sqlite_fts
        try:
            with self._write() as conn:
                self.schema_version = migrations.upgrade(conn)
        except sa.exc.DatabaseError as exc:
            self._engine.dispose()
            raise InputError(f"cannot open catalog {self.url}: {exc.orig}") from None
        except BaseException:
            self._engine.dispose()
            raise

    # -- plumbing -------------------------------------------------------------------------------
    @contextmanager
    def _write(self):
        with self._engine.connect() as conn:
            conn.execution_options(atomine_write=True)
            with conn.begin():
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

        Same content hash at the same path: nothing changes ("unchanged"). Same hash at a
        new path while the stored file is gone: the path is updated and the old one kept in the
        history ("moved"); while the stored file is still there, the new path is a copy, added
        to the path history ("unchanged"). New
        hash at a known (path, signal index): the record is replaced, id kept ("updated").
        """
        row = dataset_row(record)
        d = S.datasets
        with self._write() as conn:
            conn.execute(S.failures.delete().where(S.failures.c.path == record.path))
            old = conn.execute(sa.select(d.c.id, d.c.path).where(d.c.content_hash == record.content_hash)).first()
            if old is not None:
                if old.path == record.path:
                    return old.id, "unchanged"
                known = conn.execute(sa.select(S.dataset_paths.c.id).where(
                    S.dataset_paths.c.dataset_id == old.id, S.dataset_paths.c.path == record.path)).first()
                if Path(old.path).exists() or known is not None:
                    # a copy beside a file that is still there (or a copy seen before): one dataset, several
                    # places; the current path stays, the copy joins the path history once
                    if known is None:
                        conn.execute(S.dataset_paths.insert().values(dataset_id=old.id, path=record.path,
                                                                     seen=now_iso()))
                    return old.id, "unchanged"
                conn.execute(d.update().where(d.c.id == old.id).values(path=record.path, modified=row["modified"],
                                                                        updated=row["updated"]))
                conn.execute(S.dataset_paths.insert().values(dataset_id=old.id, path=record.path, seen=now_iso()))
                return old.id, "moved"
            same_place = conn.execute(sa.select(d.c.id).where(
                d.c.path == record.path, d.c.signal_index == record.signal_index)).scalar()
            if same_place is not None:
                row.pop("added")
                conn.execute(d.update().where(d.c.id == same_place).values(**row))
                for table in (S.terms, S.descriptors, S.vectors, S.thumbnails):
                    conn.execute(table.delete().where(table.c.dataset_id == same_place))
                dataset_id, status = same_place, "updated"
            else:
                dataset_id, status = conn.execute(d.insert().values(**row)).inserted_primary_key[0], "added"
                conn.execute(S.dataset_paths.insert().values(dataset_id=dataset_id, path=record.path, seen=now_iso()))
            insert_children(conn, dataset_id, record)
        return dataset_id, status

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

    def remove(self, dataset_id: int) -> None:
        """Delete a dataset and everything stored with it (the file is not touched)."""
        dataset_id = _as_id(dataset_id)
        with self._write() as conn:
            # explicit child deletes: PostgreSQL honours ON DELETE CASCADE, but an old SQLite
            # file opened without foreign_keys would not
            for table in (S.terms, S.descriptors, S.vectors, S.thumbnails, S.dataset_paths):
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

        Free text is ranked by BM25 (title outweighs original metadata), ties and
        filter-only queries by id. Each hit: id, path, name, signal, kind, shape, title,
        score (higher is better; 0 without free text), snippet.
        """
        from . import query as _query
        from ._filters import where_clause
        q = _query.parse(query) if isinstance(query, str) else query
        limit, offset = _bounded(limit, "limit", 1, _MAX_LIMIT), _bounded(offset, "offset", 0, None)
        d = S.datasets
        cols = [d.c.id, d.c.path, d.c.name, d.c.signal, d.c.kind, d.c.shape, d.c.title]
        expression = None
        if q.terms or q.text:
            if self._fts is None:
                raise InputError(f"free-text search is not available on {self._engine.dialect.name} yet; "
                                 "search with field filters only")
            expression = self._fts.match_expression(q.terms if q.terms else q.text)
        if expression is not None:
            fts = self._fts.ranked_matches(expression)
            stmt = (sa.select(*cols, fts.c.rank, fts.c.snippet).join(fts, fts.c.id == d.c.id)
                    .order_by(fts.c.rank, d.c.id))
        else:
            stmt = sa.select(*cols, sa.literal(0.0).label("rank"), sa.literal("").label("snippet")).order_by(d.c.id)
        clauses = [where_clause(f) for f in q.filters]
        if clauses:
            stmt = stmt.where(*clauses)
        with self._read() as conn:
            rows = conn.execute(stmt.limit(limit).offset(offset)).mappings().all()
        return [{"id": r["id"], "path": r["path"], "name": r["name"], "signal": r["signal"], "kind": r["kind"],
                 "shape": json.loads(r["shape"] or "[]"), "title": r["title"],
                 "score": -float(r["rank"] or 0.0) + 0.0, "snippet": r["snippet"] or ""} for r in rows]

    def similar(self, target, *, k: int = 10, kind: str | None = None) -> list[dict]:
        """Exact nearest neighbours by cosine distance of the content descriptor vectors.

        ``target`` is a dataset id (compared within its descriptor kind, itself excluded)
        or a vector (give ``kind`` when vectors of several kinds share its length). Each
        hit: id, path, name, signal, kind, distance (1 - cosine similarity, 0 = same direction).
        """
        from ._similar import nearest
        return nearest(self, target, k=k, kind=kind)

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
