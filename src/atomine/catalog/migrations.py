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


def _v1_tables(conn: sa.Connection) -> None:
    """Version 1: every table, plus the full-text index where the backend has one here."""
    schema.metadata.create_all(conn, checkfirst=True)
    if conn.dialect.name == "sqlite":
        from . import _sqlite_fts
        _sqlite_fts.install(conn)


# Columns that filters hit most; plain B-tree indexes, same DDL on SQLite and PostgreSQL.
_V2_INDEXED = ("signal", "kind", "instrument", "beam_energy_kv", "pixel_size_nm", "acquisition_date", "detector")


def _v2_filter_indexes(conn: sa.Connection) -> None:
    """Version 2: indexes on the filterable dataset columns and on (path, signal_index) for re-ingest."""
    for col in _V2_INDEXED:
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS ix_datasets_{col} ON datasets ({col})")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_datasets_path_signal ON datasets (path, signal_index)")


STEPS: dict[int, Callable[[sa.Connection], None]] = {
    1: _v1_tables,
    2: _v2_filter_indexes,
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
