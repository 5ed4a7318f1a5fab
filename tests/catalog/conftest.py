"""Catalog fixtures: every store test runs on SQLite and on a real PostgreSQL server.

``postgres_url_base`` (session, ``tests/conftest.py``): the server; the PostgreSQL tests skip, with
the reason, when there is none. ``catalog_url`` gives a fresh, empty catalog per test on each backend.
"""

from __future__ import annotations

import pg_server  # tests/pg_server.py (tests/ is put on sys.path by tests/conftest.py)
import pytest

BACKENDS = ["sqlite", "postgresql"]


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
        name, url = pg_server.create_database(base)
        made.append(name)
        return url

    yield make
    if backend == "postgresql" and made:
        pg_server.drop_databases(base, made)


@pytest.fixture
def catalog_url(new_catalog_url) -> str:
    """A fresh, empty catalog database for this test: a SQLite file path or a postgresql:// URL."""
    return new_catalog_url()
