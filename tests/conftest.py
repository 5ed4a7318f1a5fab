"""Suite-wide fixtures: the real instrument files (fetched once per session, skipped when offline)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes tests/realdata.py importable everywhere

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
