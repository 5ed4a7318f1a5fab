"""The whole tests/io folder of the hyperspy 1.7.6 wheel ingests without a crash and is searchable."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
import realdata  # noqa: E402

from atomine.catalog import Catalog, ingest  # noqa: E402


@pytest.mark.network
@pytest.mark.slow
def test_hyperspy_io_folder_ingests_and_searches(tmp_path):
    try:
        folder = realdata.hyperspy_io()
    except realdata.RealDataUnavailable as exc:
        pytest.skip(str(exc))
    with Catalog(tmp_path / "cat.sqlite") as cat:
        rep = ingest(cat, [folder])
        # every readable signal is in (hundreds), the few unreadable files are recorded with a reason
        assert rep.added > 200
        # byte-identical copies in the folder are one dataset with several paths, not "moved" back and forth
        assert len(rep.failed) == len(cat.failures()) < 10
        assert all(reason.strip() for _, reason in rep.failed)
        eels = cat.search("signal:EELS", limit=500)
        assert eels and all(cat.get(h["id"])["signal"] == "EELS" for h in eels)
        high = cat.search("beam_energy>=300", limit=500)
        assert high and all(cat.get(h["id"])["beam_energy_kv"] >= 300 for h in high)
        assert {h["id"] for h in high}.isdisjoint(h["id"] for h in cat.search("beam_energy<300", limit=500))
        # free text reaches the original metadata: the Velox files name their instrument
        titan = cat.search("Titan", limit=500)
        assert titan and any("Titan" in (cat.get(h["id"])["instrument"] or "") for h in titan)
        again = ingest(cat, [folder])
        assert again.added == 0 and again.moved == 0 and again.unchanged == rep.added + rep.unchanged
