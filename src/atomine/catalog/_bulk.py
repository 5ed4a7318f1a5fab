"""The write path of the catalog store: many datasets per transaction, with the identity rules.

:meth:`Catalog.add_datasets <atomine.catalog.store.Catalog.add_datasets>` calls :func:`add_many`
inside its write transaction. A dataset is identified by its content hash; the rules (added,
unchanged, moved, copy, updated) live in :func:`add_one`; the set-wise fast path for new
records in :func:`add_many`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from . import schema as S
from .records import DatasetRecord, child_rows, insert_children, now_iso

VECTORS_GENERATION = "vectors_generation"


def bump_vectors_generation(conn: sa.Connection) -> None:
    # one UPDATE of one row: concurrent writers serialise on its lock, none loses an increment
    st = S.catalog_state
    conn.execute(st.update().where(st.c.key == VECTORS_GENERATION).values(value=st.c.value + 1))


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


def add_many(conn: sa.Connection, records: list[DatasetRecord], rows: list[dict]) -> tuple[list, bool]:
    """Store a batch inside ``conn``'s transaction with a few set-wise statements; (id, status) per record.

    The common case, a record whose content hash and (path, signal index) are new both to the
    database and to the batch so far, is queued and inserted with one executemany per table.
    Any other record (a hash or place seen before: unchanged, moved, copy, updated) goes through
    :func:`add_one` after the queue is flushed, so each record sees exactly the state that
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
            dataset_id, status, vec_changed = add_one(conn, record, row)
            out[j] = (dataset_id, status)
            changed |= vec_changed
        else:
            pending.append(j)
        # every later record that shares this hash or place takes the careful path
        known_hashes.add(record.content_hash)
        known_places.add(place)
    flush()
    return out, changed


def add_one(conn: sa.Connection, record: DatasetRecord, row: dict) -> tuple[int, str, bool]:
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


__all__ = ["add_many", "add_one", "bump_vectors_generation", "VECTORS_GENERATION"]
