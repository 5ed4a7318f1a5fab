"""The catalog store: datasets, their descriptors, thumbnails and the analyses that used them.

One :class:`Catalog` wraps a database reached through SQLAlchemy Core: a SQLite file by
default (embedded, WAL mode so that readers never wait for a writer), or a PostgreSQL
URL for a lab server (plumbing in :mod:`._engine`, full text in :mod:`._sqlite_fts` /
:mod:`._pg_fts`). Every write is one transaction; a dataset is identified by its
content hash, so re-adding an unchanged file is a no-op and a moved file is recognised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager

import numpy as np
import sqlalchemy as sa

from ..errors import InputError
from . import _engine, migrations
from . import schema as S
from ._bulk import VECTORS_GENERATION, add_many, bump_vectors_generation
from .records import AnalysisRecord, DatasetRecord, dataset_row, now_iso, public_analysis, public_dataset, to_json


_REFRESH_AFTER = 1000   # rows a bulk add must write before PostgreSQL statistics are refreshed


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
        if self.dialect == "postgresql" and sum(status != "unchanged" for _, status in out) >= _REFRESH_AFTER:
            # a fresh bulk load leaves PostgreSQL without table statistics and the GIN index with a
            # long pending list: the planner then seq-scans (24 ms instead of 0.04 ms for a rare word
            # at 10^4 rows) until autovacuum comes by; refresh both now
            with self._write() as conn:
                self._fts.refresh_after_bulk(conn)
        return out

    def _add_batch(self, records: list[DatasetRecord]) -> list[tuple[int, str]]:
        rows = [dataset_row(r) for r in records]   # validates every record before writing any
        with self._write() as conn:
            out, vectors_changed = add_many(conn, records, rows)
            if vectors_changed:
                bump_vectors_generation(conn)
        return out

    def vectors_generation(self) -> int:
        """A counter that changes (in the same transaction) whenever any content vector is added, replaced or removed.

        Caches of vector indexes key on it: an equal value means the same vectors.
        """
        st = S.catalog_state
        with self._read() as conn:
            return int(conn.execute(sa.select(st.c.value).where(st.c.key == VECTORS_GENERATION)).scalar() or 0)

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
                bump_vectors_generation(conn)
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
        On SQLite, a query with a narrowing filter (an element, a tag, a descriptor range, a
        number range: one whose ids an index holds) is answered filter-first (:mod:`._plan`):
        the same hits as the plain statement, the same window rule. Body in :mod:`._search`.
        """
        from ._search import search
        return search(self, query, limit=limit, offset=offset)

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
