"""A real catalog for the server tests: simulated files written with atomine.io, ingested, plus a result folder.

Built once per test module (module scope); each module gets its own folder, so a module that
deletes or adds datasets cannot change another's ground truth.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

with warnings.catch_warnings():  # starlette's note about its httpx transport, once, at import: not ours
    warnings.simplefilter("ignore")
    import fastapi.testclient  # noqa: F401


@dataclass
class Filled:
    """The catalog file, its data folder and the ground truth of what went in."""

    catalog: Path
    data: Path           # the ingested data folder (an allowed ingest root)
    outside: Path        # a folder beside it with a secret file (never to be served or ingested)
    spare: Path          # a readable data file inside `data/spare/`, not yet ingested
    analysis: Path       # an atomine result folder linked to small.nc
    ids: dict = field(default_factory=dict)   # file name -> dataset id
    analysis_id: int = 0


def _saved(root: Path, sims: dict) -> dict[str, object]:
    import atomine.io as aio

    mos2 = sims["haadf-mos2"]
    rot = mos2.copy(data=np.ascontiguousarray(np.rot90(mos2.values)))
    rot.attrs = copy.deepcopy(mos2.attrs)
    rot.attrs["metadata"]["title"] = "HAADF monolayer MoS2 rotated by a quarter turn"
    files = {"sto.nc": sims["haadf-perovskite"], "mos2.nc": mos2, "mos2_rot.nc": rot,
             "small.nc": sims["haadf-perovskite"].isel(y=slice(0, 160), x=slice(0, 160))}
    for name, da in files.items():
        aio.save(da, root / name)
    aio.export(sims["eels-si"], root / "eels.hspy")
    files["eels.hspy"] = sims["eels-si"]
    return files


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Filled:
    import atomine.io as aio
    import atomine.simulate as sim
    from atomine.catalog import Catalog, ingest
    from atomine.catalog.ingest import analysis_from_folder
    from atomine.workflows import analyze_atoms

    base = tmp_path_factory.mktemp("server")
    data, outside, results = base / "data", base / "outside", base / "results"
    for p in (data, outside, results, data / "spare"):
        p.mkdir()
    sims = {k: sim.make(k).data for k in ("haadf-perovskite", "haadf-mos2", "eels-si")}
    _saved(data, sims)
    (outside / "secret.json").write_text('{"secret": "do not serve"}')
    aio.save(sims["haadf-perovskite"].isel(y=slice(0, 128), x=slice(0, 128)), outside / "outside.nc")
    spare = data / "spare" / "spare.nc"
    aio.save(sims["haadf-mos2"].isel(y=slice(0, 200), x=slice(0, 200)), spare)
    analysis = results / "atoms_out"
    analyze_atoms(aio.load(data / "small.nc")).save(analysis)
    # a symlink inside the analysis folder pointing out of it: must never be listed or served
    (analysis / "escape.json").symlink_to(outside / "secret.json")
    (data / "spare" / "link_out.nc").symlink_to(outside / "outside.nc")
    cat_path = base / "catalog.sqlite"
    with Catalog(cat_path) as cat:
        report = ingest(cat, [data / n for n in ("sto.nc", "mos2.nc", "mos2_rot.nc", "small.nc", "eels.hspy")])
        assert report.added == 5 and not report.failed, report
        ids = {Path(h["path"]).name: h["id"] for h in cat.search("", limit=100)}
        analysis_id = cat.add_analysis(analysis_from_folder(analysis))
    return Filled(cat_path, data, outside, spare, analysis, ids, analysis_id)


@pytest.fixture(scope="module")
def client(filled):
    """A read-only server over the filled catalog."""
    from fastapi.testclient import TestClient

    from atomine.server import create_app

    with TestClient(create_app(filled.catalog)) as c:
        yield c
