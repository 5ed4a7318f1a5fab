"""Suite-wide fixtures: the real instrument files (fetched once per session, skipped when offline) and a
PostgreSQL server for the catalog and server tests."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes tests/realdata.py importable everywhere

import pg_server  # noqa: E402
import realdata  # noqa: E402


@pytest.fixture(scope="session")
def hyperspy_io() -> Path:
    """``hyperspy/tests/io`` from the hyperspy 1.7.6 wheel (DM3/DM4, EMD, TIA, MSA, TIFF files)."""
    return realdata.fetch(realdata.HYPERSPY) / "hyperspy" / "tests" / "io"


@pytest.fixture(scope="session")
def exspy_components() -> Path:
    """``exspy/tests/components`` from the exspy 0.3.2 wheel (EELS MSA spectra)."""
    return realdata.fetch(realdata.EXSPY) / "exspy" / "tests" / "components"


@pytest.fixture(scope="session")
def velox_dir(hyperspy_io) -> Path:
    """The Velox EMD files of ``emd_files/fei_emd_files.zip``, extracted once."""
    return realdata.unzip(hyperspy_io / "emd_files" / "fei_emd_files.zip")


@pytest.fixture(scope="session")
def postgres_url_base():
    """URL of a PostgreSQL server on which tests may create and drop databases.

    ``$ATOMINE_TEST_POSTGRES_URL`` when set (an existing server where the URL's user may CREATE
    DATABASE), else a private server started by :mod:`pg_server` for this pytest process (each
    xdist worker has its own); tests that need it skip, with the reason, when neither is possible.
    """
    env = os.environ.get("ATOMINE_TEST_POSTGRES_URL")
    if env:
        yield env
        return
    try:
        server = pg_server.PostgresServer()
        url = server.start()
    except pg_server.ServerUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        yield url
    finally:
        server.stop()
