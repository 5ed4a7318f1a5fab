"""The catalog on PostgreSQL: bulk insert, keyword/filter search and content search at 10^4 and 10^5 entries.

The same synthetic records and query classes as ``bench_catalog`` (SQLite), inserted through a
``postgresql://`` URL into a throw-away server started on loopback in a temporary data folder
(the catalog tests' ``tests/pg_server.py``, so this benchmark runs from a checkout; it
needs Debian's ``postgresql`` package, which ``tools/system-deps.sh`` installs). The server runs
with ``fsync=off`` like the tests' server: insert rates are an upper bound for a lab server that
syncs to disk. Set ``ATOMINE_BENCH_POSTGRES_URL`` to measure an existing server instead (a database
is created and dropped on it). ``ATOMINE_BENCH_CATALOG_PG_MAX`` (default 100000) caps N.

Command: ``python benchmarks/bench_catalog_pg.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from atomine.catalog import _similar
from atomine.catalog.store import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import bench_catalog as sq  # noqa: E402  the records, queries and timers of the SQLite benchmark

SIZES = (10_000, 100_000)


def _admin(url: str):
    import psycopg
    import sqlalchemy as sa
    return psycopg.connect(sa.engine.make_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False), autocommit=True)


def _database_url(base: str, name: str) -> str:
    import sqlalchemy as sa
    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)


def _one_size(world, n: int, base: str) -> dict:
    name = f"atomine_bench_{uuid.uuid4().hex[:12]}"
    with _admin(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    out: dict = {"n": n}
    rng = np.random.default_rng(n)
    try:
        with Catalog(_database_url(base, name)) as cat:
            out.update(sq.build_catalog(cat, n, world))
            with _admin(_database_url(base, name)) as conn:
                out["db_mb"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20
            picks = rng.choice(n, 40, replace=False)
            queries = sq.query_classes(picks)
            cat.search(sq.serial(0))   # warm the pool and the server's cache alike for every class
            out["search"] = {k: sq._timed(lambda q: cat.search(q.strip(), limit=20), v) for k, v in queries.items()}
            out["search_matches"] = {k: len(cat.search(v[0].strip(), limit=10_000)) for k, v in queries.items()}
            ids = [h["id"] for h in cat.search("signal:HAADF", limit=200)]
            out["exact"] = sq._timed(lambda q: _similar.nearest(cat, int(q), k=10, exact=True), ids[:20])
            t = time.perf_counter()
            _similar.nearest(cat, int(ids[0]), k=10, exact=False)   # cold: builds the index
            out["index_build_s"] = time.perf_counter() - t
            out["approx"] = sq._timed(lambda q: _similar.nearest(cat, int(q), k=10, exact=False), ids[1:101])
    finally:
        with _admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def run() -> str:
    cap = int(os.environ.get("ATOMINE_BENCH_CATALOG_PG_MAX", "100000"))
    sizes = [n for n in SIZES if n <= cap] or [min(cap, SIZES[0])]
    base, server = os.environ.get("ATOMINE_BENCH_POSTGRES_URL"), None
    if not base:
        import pg_server
        try:
            server = pg_server.PostgresServer()
            base = server.start()
        except pg_server.ServerUnavailable as exc:
            return f"Skipped: {exc}"
    t_all = time.perf_counter()
    try:
        world = sq._World()
        results = [_one_size(world, n, base) for n in sizes]
    finally:
        if server is not None:
            server.stop()
    total = time.perf_counter() - t_all
    classes = list(results[0]["search"])
    where = "an existing server (ATOMINE_BENCH_POSTGRES_URL)" if server is None else \
        "a throw-away local PostgreSQL server (fsync off)"
    lines = [
        f"The `bench_catalog` records and query classes on {where}, through `Catalog(url)`: "
        "`add_datasets` (batch 10,000), `Catalog.search(q, limit=20)` (40 queries per class, p50/p95 in ms, "
        "PostgreSQL full text: `tsvector` + GIN, `ts_rank_cd`), content search top-10 through "
        f"`_similar.nearest` (exact scan vs the HNSW index). Total {total:.0f} s.",
        "",
        "| N | insert (s) | rows/s | DB (MiB) | " + " | ".join(f"{c} p50/p95" for c in classes) +
        " | exact top-10 p50/p95 | approximate p50/p95 | index build (s) |",
        "|---|---|---|---|" + "---|" * len(classes) + "---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['build_s']:.0f} | {r['n'] / r['build_s']:,.0f} | {r['db_mb']:,.0f} | " +
                     " | ".join(f"{a:.1f} / {b:.1f}" for a, b in r["search"].values()) +
                     f" | {r['exact'][0]:.1f} / {r['exact'][1]:.1f} | {r['approx'][0]:.2f} / {r['approx'][1]:.2f}"
                     f" | {r['index_build_s']:.1f} |")
    lines += ["", "Matches per class (limit 10,000): " + "; ".join(
        f"N={r['n']:,}: " + ", ".join(f"{k.split(' (')[0]} {v:,}" for k, v in r["search_matches"].items())
        for r in results) + ".",
        "Unlike SQLite, the PostgreSQL path has no ranking window and no filter-id-set planner "
        "(`_plan`): a common word ranks every match."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
