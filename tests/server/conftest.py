"""A real catalog for the server tests: simulated files written with atomine.io, ingested, plus a result folder.

Built once per test module (module scope) and per backend: a SQLite file and a database on the
throw-away PostgreSQL server (``postgres_url_base``; those runs skip with the reason when there is
none). Each module gets its own folder and database, so a module that deletes or adds datasets
cannot change another's ground truth.
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

    catalog: Path | str  # a SQLite file, or a postgresql:// URL
    backend: str
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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(tmp_path_factory, request) -> Filled:
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
    pg_base, pg_name = None, None
    if request.param == "postgresql":
        import pg_server
        pg_base = request.getfixturevalue("postgres_url_base")
        pg_name, cat_path = pg_server.create_database(pg_base)
    else:
        cat_path = base / "catalog.sqlite"
    with Catalog(cat_path) as cat:
        report = ingest(cat, [data / n for n in ("sto.nc", "mos2.nc", "mos2_rot.nc", "small.nc", "eels.hspy")])
        assert report.added == 5 and not report.failed, report
        ids = {Path(h["path"]).name: h["id"] for h in cat.search("", limit=100)}
        analysis_id = cat.add_analysis(analysis_from_folder(analysis))
    yield Filled(cat_path, request.param, data, outside, spare, analysis, ids, analysis_id)
    if pg_name is not None:
        pg_server.drop_databases(pg_base, [pg_name])


@pytest.fixture(scope="module")
def client(filled):
    """A read-only server over the filled catalog."""
    from fastapi.testclient import TestClient

    from atomine.server import create_app

    with TestClient(create_app(filled.catalog)) as c:
        yield c
