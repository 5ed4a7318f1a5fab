"""Schema versions of the catalog and the steps between them.

``STEPS[v]`` takes a catalog from version ``v - 1`` to ``v``; a fresh catalog runs
every step from 1. Opening an older catalog runs the missing steps in one
transaction (a failed upgrade leaves the file as it was); a catalog written by a
newer atomine is refused, since this code cannot know what its tables mean.

To change the schema: add a step here, bump nothing else (``LATEST`` follows), and
test the upgrade from the previous version.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ..errors import InputError
from . import schema


def _install_fts(conn: sa.Connection) -> None:
    # dialect-specific: FTS5 table + triggers on SQLite, tsvector column + GIN index on PostgreSQL
    if conn.dialect.name == "sqlite":
        from . import _sqlite_fts as fts
    else:
        from . import _pg_fts as fts
    fts.install(conn)


def _v1_tables(conn: sa.Connection) -> None:
    """Version 1: every table, plus the full-text index."""
    schema.metadata.create_all(conn, checkfirst=True)
    _install_fts(conn)


# Columns that filters hit most; plain B-tree indexes, same DDL on SQLite and PostgreSQL.
_V2_INDEXED = ("signal", "kind", "instrument", "beam_energy_kv", "pixel_size_nm", "acquisition_date", "detector")


def _v2_filter_indexes(conn: sa.Connection) -> None:
    """Version 2: indexes on the filterable dataset columns and on (path, signal_index) for re-ingest."""
    for col in _V2_INDEXED:
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS ix_datasets_{col} ON datasets ({col})")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_datasets_path_signal ON datasets (path, signal_index)")


def _v3_state_and_content_level(conn: sa.Connection) -> None:
    """Version 3: ``catalog_state`` (the vectors generation counter) and ``datasets.content_level``.

    A fresh catalog already has both from version 1 (which creates the current tables), so
    each part is added only where missing; rows of an older catalog are "content".
    """
    schema.catalog_state.create(conn, checkfirst=True)
    columns = {c["name"] for c in sa.inspect(conn).get_columns("datasets")}
    if "content_level" not in columns:
        # same DDL on SQLite and PostgreSQL; the default fills the existing rows
        conn.exec_driver_sql("ALTER TABLE datasets ADD COLUMN content_level VARCHAR(16) NOT NULL DEFAULT 'content'")
    state = schema.catalog_state
    if conn.execute(sa.select(state.c.key).where(state.c.key == "vectors_generation")).first() is None:
        conn.execute(state.insert().values(key="vectors_generation", value=0))
    if conn.dialect.name == "postgresql":
        # a PostgreSQL catalog written before version 3 had no full-text index (install is idempotent)
        _install_fts(conn)


def _v4_covering_indexes(conn: sa.Connection) -> None:
    """Version 4: covering indexes for the term and descriptor filters.

    A filter such as ``element:Mn`` or ``lattice_a:0.38..0.40`` becomes ``id IN (SELECT dataset_id
    FROM terms/descriptors WHERE ...)``; with ``dataset_id`` in the index that subquery is answered
    from the index alone, without a row lookup per match (it matters at 10^5-10^6 entries). They
    replace the two-column (field, value) / (name, value) indexes of version 1, which they cover.
    SQLite also gets its FTS5 bulk-insert setting (:func:`._sqlite_fts.tune`).
    """
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_terms_field_value_id ON terms (field, value, dataset_id)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_descriptors_name_value_id "
                         "ON descriptors (name, value, dataset_id)")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_terms_field_value")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_descriptors_name_value")
    if conn.dialect.name == "sqlite":
        from . import _sqlite_fts
        _sqlite_fts.tune(conn)   # bigger FTS5 pending-term buffer: fewer segments to merge on bulk insert


STEPS: dict[int, Callable[[sa.Connection], None]] = {
    1: _v1_tables,
    2: _v2_filter_indexes,
    3: _v3_state_and_content_level,
    4: _v4_covering_indexes,
}
LATEST = max(STEPS)


def current_version(conn: sa.Connection) -> int:
    """Schema version of the catalog behind ``conn`` (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def upgrade(conn: sa.Connection, target: int | None = None) -> int:
    """Run the steps that bring the catalog to ``target`` (default: the latest); return the version reached.

    Runs inside the caller's transaction. Raises InputError if the catalog is newer
    than this atomine knows.
    """
    target = LATEST if target is None else int(target)
    if conn.dialect.name == "postgresql":
        # two processes opening a fresh database at once must not both create it (SQLite: BEGIN IMMEDIATE)
        from ._engine import lock_for_write
        lock_for_write(conn)
    if not 1 <= target <= LATEST:
        raise InputError(f"schema version {target} does not exist; versions run from 1 to {LATEST}")
    version = current_version(conn)
    if version > LATEST:
        raise InputError(f"this catalog has schema version {version}, newer than this atomine supports "
                         f"({LATEST}); upgrade atomine to open it")
    for v in range(version + 1, target + 1):
        STEPS[v](conn)
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=v))
    return max(version, target)


__all__ = ["STEPS", "LATEST", "current_version", "upgrade"]
