"""Catalog fixtures: every store test runs on SQLite and on a real PostgreSQL server.

``postgres_url_base`` (session): ``$ATOMINE_TEST_POSTGRES_URL`` when set (an existing server where
the URL's user may CREATE DATABASE), else a private server started by :mod:`_pg_server` for this
pytest process (each xdist worker has its own); the PostgreSQL tests skip, with the reason, when
neither is possible. ``catalog_url`` gives a fresh, empty catalog per test on each backend.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # makes _pg_server importable

import _pg_server  # noqa: E402

BACKENDS = ["sqlite", "postgresql"]


def _libpq_url(url: str) -> str:
    """The URL as psycopg reads it (no SQLAlchemy driver suffix)."""
    import sqlalchemy as sa
    parsed = sa.engine.make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url_base():
    """URL of a PostgreSQL server on which tests may create and drop databases."""
    env = os.environ.get("ATOMINE_TEST_POSTGRES_URL")
    if env:
        yield env
        return
    try:
        server = _pg_server.PostgresServer()
        url = server.start()
    except _pg_server.ServerUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def new_catalog_url(backend, tmp_path, request):
    """Factory: each call gives the URL (or path) of a new, empty database on this test's backend."""
    made: list[str] = []
    base = request.getfixturevalue("postgres_url_base") if backend == "postgresql" else None

    def make() -> str:
        if backend == "sqlite":
            made.append(str(tmp_path / f"catalog_{len(made)}.sqlite"))
            return made[-1]
        import psycopg
        name = f"atomine_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        import sqlalchemy as sa
        # plain postgresql:// (no driver): the store must pick psycopg 3 itself
        return sa.engine.make_url(_libpq_url(base)).set(database=name).render_as_string(hide_password=False)

    yield make
    if backend == "postgresql" and made:
        import psycopg
        with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
            for name in made:
                # FORCE: a test that failed may have left a Catalog (and its pool) open
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def catalog_url(new_catalog_url) -> str:
    """A fresh, empty catalog database for this test: a SQLite file path or a postgresql:// URL."""
    return new_catalog_url()
