"""Database plumbing of the catalog: from what the user gives (nothing, a path, a URL) to an engine.

SQLite gets its pragmas (WAL so readers never wait for a writer; immediate write locks);
PostgreSQL URLs get the psycopg 3 driver when none is named, a connect timeout, and a
one-line InputError when the server cannot be reached.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from ..errors import InputError

# Every catalog writer on a PostgreSQL server takes this transaction-scoped advisory lock, so
# writes are serialised as on SQLite (BEGIN IMMEDIATE): identity by content hash is a
# check-then-insert, and migrations of a fresh database must not race.
PG_WRITE_LOCK = 0x61746F6D   # "atom"
_PG_CONNECT_TIMEOUT_S = 10
_SQLITE_MMAP_BYTES = 1 << 30      # 1 GiB of address space
_SQLITE_CACHE_KIB = 64 * 1024     # 64 MiB page cache


def default_url() -> str:
    env = os.environ.get("ATOMINE_CATALOG")
    if env:
        return env if "://" in env else "sqlite:///" + os.path.abspath(os.path.expanduser(env))
    path = Path.home() / ".local" / "share" / "atomine" / "catalog.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + str(path)


def resolve_url(url) -> sa.engine.URL:
    """A SQLAlchemy URL from None (the per-user file), a path (a SQLite file) or a URL string."""
    if url is None:
        text = default_url()
    else:
        text = os.fspath(url) if isinstance(url, os.PathLike) else url
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"catalog must be a file path or a database URL, got {url!r}")
    if "://" not in text:
        path = Path(text).expanduser().absolute()
        if path.is_dir():
            raise InputError(f"catalog path {text!r} is a folder; give a file name such as {text}/catalog.sqlite")
        if not path.parent.is_dir():
            raise InputError(f"folder {str(path.parent)!r} of the catalog does not exist; create it first")
        text = "sqlite:///" + str(path)
    try:
        parsed = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:   # ValueError: e.g. a port that is not a number
        raise InputError(f"cannot read catalog URL {_hide(text)!r}: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver atomine installs; SQLAlchemy's default would be psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(f"catalog URL {shown(parsed)!r}: only sqlite:// and postgresql:// catalogs are supported")
    return parsed


def _hide(text: str) -> str:
    try:
        return shown(sa.engine.make_url(text))
    except Exception:   # unparsable: show no part that could be a password
        return text.split("://", 1)[0] + "://..."


def shown(url: sa.engine.URL) -> str:
    """The URL as it may be printed: no password."""
    return url.render_as_string(hide_password=True)


def make_engine(url: sa.engine.URL) -> sa.Engine:
    """An engine for ``url`` (from :func:`resolve_url`), connected once to prove the database is reachable."""
    if url.get_backend_name() == "postgresql":
        try:
            engine = sa.create_engine(url, pool_pre_ping=True,
                                      connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S})
        except ImportError as exc:  # no driver, e.g. psycopg
            raise InputError(f"no database driver for {url.drivername!r} ({exc}); install psycopg") from None
    else:
        engine = _sqlite_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        raise InputError(f"cannot connect to {shown(url)}: {reason}") from None
    return engine


def _sqlite_engine(url: sa.engine.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

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
        # large catalogs (10^6 entries, GBs): read through a memory map and keep a bigger page cache
        # per connection, so that repeated searches hit memory instead of copying pages through
        # the default 2 MiB cache; both are upper bounds, touched pages only
        cur.execute(f"PRAGMA mmap_size = {_SQLITE_MMAP_BYTES}")
        cur.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("atomine_write") else "BEGIN")

    return engine


def lock_for_write(conn: sa.Connection) -> None:
    """Serialise writers (PostgreSQL; SQLite already holds its write lock from BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})


__all__ = ["default_url", "lock_for_write", "make_engine", "resolve_url", "shown"]
