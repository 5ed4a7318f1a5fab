"""Scale of the catalog: bulk insert, keyword/filter search and content search from 10^4 to 10^6 entries.

A synthetic catalog of realistic records (signals HAADF/ABF/BF/EELS/EDS/STM/CITS at lab
frequencies; 40 instruments, 25 operators, 300 samples; elements weighted like an oxide/alloy
lab; beam energies 60/80/200/300 kV; dates over 10 years; lattice descriptors; ~30
"key.path: value" lines of original metadata with a unique camera serial number; a 32-d
``image_radial_v1``-like vector from 300 material clusters + noise) is inserted with
``Catalog.add_datasets`` into a temporary SQLite file, then timed:

- keyword queries (p50/p95 over repeated distinct queries): a rare word (a serial number: 1
  match), a medium word (~1 % of entries), a common word (~20 %), text + 4 filters, filters only;
- content search top-10: the exact scan and the approximate HNSW index (``exact=False``), the
  index build time (cold, no cache) and recall@10 of the index against brute force (200 queries);
- the peers a lab would use without a catalog: ``LIKE '%word%'`` over the metadata text, and a
  numpy brute-force cosine scan of every vector held in memory (load time reported separately).

``ATOMINE_BENCH_CATALOG_MAX`` (default 1000000) caps the largest N for quick runs.
Command: ``python benchmarks/bench_catalog.py`` (or ``make bench``).
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from atomine.catalog import _similar, _sqlite_fts
from atomine.catalog.store import Catalog, DatasetRecord

SIZES = (10_000, 100_000, 1_000_000)
BATCH = 10_000   # records per add_datasets transaction
DIM = 32
SIGNALS = (("HAADF", "image", 0.40), ("ABF", "image", 0.10), ("BF", "image", 0.12), ("EELS", "spectrum_image", 0.15),
           ("EDS", "spectrum_image", 0.10), ("STM", "image", 0.10), ("CITS", "cits", 0.03))
# element weights of a perovskite/oxide + alloy lab (O most common, then the usual cations)
ELEMENTS = dict(O=30, Sr=10, Ti=10, La=6, Mn=5, Fe=6, Co=3, Ni=4, Ba=3, Bi=2, Al=4, Si=5, Ga=3, N=3, Cu=3, Zn=2,
                Mg=2, Ca=3, Nb=2, Pt=1, Au=1, Ag=1, Cr=2, V=1, Ru=1, Ir=1, Pb=1, Zr=2, Hf=1, Y=1, Nd=1, Gd=1, Li=1)
VOCAB = ("stage", "tilt", "alpha", "beta", "holder", "camera", "exposure", "binning", "gain", "offset", "dwell",
         "frame", "scan", "rotation", "defocus", "astigmatism", "aberration", "probe", "current", "aperture",
         "condenser", "objective", "spot", "convergence", "collection", "angle", "drift", "correction", "filter",
         "slit", "dispersion", "channel", "readout", "vacuum", "temperature", "emission", "extraction", "lens")
RARE_SERIAL, MEDIUM_WORD, COMMON_WORD = "serial", "cryotransfer", "monochromated"   # see _text


def _text(rng, i: int, instrument: str) -> str:
    """~30 "key.path: value" lines; a unique serial, 1 % cryotransfer holders, 20 % monochromated."""
    keys = rng.choice(len(VOCAB), size=(27, 2))
    vals = rng.normal(size=27)
    lines = [f"microscope.{VOCAB[a]}.{VOCAB[b]}: {v:.4g}" for (a, b), v in zip(keys, vals)]
    lines.append(f"microscope.name: {instrument}")
    lines.append(f"camera.serial: SN{i * 2654435761 % 2**32:08x}")
    holder = MEDIUM_WORD if rng.random() < 0.01 else ("doubletilt" if rng.random() < 0.5 else "singletilt")
    lines.append(f"stage.holder.type: {holder}")
    if rng.random() < 0.20:
        lines.append(f"gun.mode: {COMMON_WORD}")
    return "\n".join(lines)


def serial(i: int) -> str:
    return f"SN{i * 2654435761 % 2**32:08x}"


class _World:
    """Fixed vocabularies and material clusters shared by every N (seeded)."""

    def __init__(self):
        rng = np.random.default_rng(7)
        self.instruments = [f"{m} {k}" for m, k in zip(
            np.resize(["Titan Themis", "Spectra Ultra", "JEM-ARM200F", "NION UltraSTEM", "Talos F200X",
                       "Createc STM", "Omicron LT-STM", "HF5000"], 40), range(40))]
        self.operators = [f"operator{k:02d}" for k in range(25)]
        self.samples = [f"{c} {kind} {k}" for k, (c, kind) in enumerate(zip(
            np.resize(["LaMnO3", "SrTiO3", "BiFeO3", "GaN", "Si", "NiAl", "Pt/C", "graphene", "MoS2", "LSMO"], 300),
            np.resize(["film", "lamella", "powder", "bulk", "nanoparticle", "film"], 300)))]
        self.material_elements = [list(rng.choice(list(ELEMENTS), size=rng.integers(1, 4), replace=False,
                                                  p=np.array(list(ELEMENTS.values())) / sum(ELEMENTS.values())))
                                  for _ in range(300)]
        q = np.arange(DIM)
        # radial power profiles: a decaying background plus a few Bragg-like peaks per material
        self.centres = np.stack([np.exp(-q / rng.uniform(4, 12)) + sum(
            rng.uniform(0.2, 1.0) * np.exp(-0.5 * ((q - rng.uniform(4, DIM - 2)) / 0.8) ** 2) for _ in range(3))
            for _ in range(300)])
        self.lattice = rng.uniform(0.28, 0.6, 300)


def records(world: _World, n: int, seed: int = 0):
    """Generator of n DatasetRecords (nothing is held whole)."""
    rng = np.random.default_rng(seed)
    sig_p = np.array([s[2] for s in SIGNALS])
    for i in range(n):
        m = int(rng.integers(300))
        sig, kind, _ = SIGNALS[rng.choice(len(SIGNALS), p=sig_p / sig_p.sum())]
        inst = world.instruments[int(rng.integers(40))]
        day = int(rng.integers(3650))
        date = np.datetime64("2015-01-01") + np.timedelta64(day, "D")
        a = world.lattice[m] * (1 + 0.01 * rng.normal())
        vec = world.centres[m] * (1 + 0.05 * rng.normal(size=DIM)) + 0.02 * rng.normal(size=DIM)
        yield DatasetRecord(
            path=f"/lab/data/{str(date)[:7]}/{inst.split()[0].lower()}_{i:07d}.emd", name=sig, signal_index=0,
            content_hash=f"sha256:{i:064x}:0", file_size=int(rng.integers(10**5, 10**9)),
            modified=f"{date}T12:00:00", kind=kind, signal=sig, shape=[1024, 1024], dtype="float32",
            pixel_size_nm=float(rng.choice([0.005, 0.01, 0.02, 0.05])), instrument=inst,
            beam_energy_kv=float(rng.choice([60, 80, 200, 300], p=[0.1, 0.15, 0.35, 0.4])),
            magnification=float(rng.choice([1e5, 5e5, 1e6, 5e6])), detector=sig,
            acquisition_date=f"{date}T12:00:00", operator=world.operators[int(rng.integers(25))],
            sample=world.samples[m], elements=world.material_elements[m], title=f"{world.samples[m]} {sig}",
            original_text=_text(rng, i, inst),
            descriptors={"lattice_a_nm": a, "lattice_b_nm": a * rng.choice([1.0, 1.0, 1.414]),
                         "lattice_angle_deg": float(rng.choice([90.0, 60.0, 120.0]))},
            vector_kind="image_radial_v1", vector=vec.astype(np.float32))


def _pct(times_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(times_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _timed(fn, args_list) -> tuple[float, float]:
    times = []
    for a in args_list:
        t = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t)
    return _pct(times)


def build_catalog(cat: Catalog, n: int, world: _World | None = None) -> dict:
    """Insert the n synthetic records into ``cat``; timings {build_s, build_cpu_s, gen_s}.

    Also usable alone to keep a catalog for iterating on queries, e.g.
    ``with Catalog(path) as cat: build_catalog(cat, 10**6)``.
    """
    world = world or _World()
    out = {"build_s": 0.0, "build_cpu_s": 0.0, "gen_s": 0.0}
    # records are generated in chunks outside the timed insert (generating costs ~130 us each)
    gen = records(world, n)
    while True:
        t = time.perf_counter()
        chunk = list(itertools.islice(gen, BATCH))
        out["gen_s"] += time.perf_counter() - t
        if not chunk:
            break
        t, c = time.perf_counter(), time.process_time()
        cat.add_datasets(chunk, batch=BATCH)
        out["build_s"] += time.perf_counter() - t
        out["build_cpu_s"] += time.process_time() - c
    return out


def query_classes(picks) -> dict[str, list[str]]:
    """The timed query classes, 40 queries each; ``picks``: 40 record numbers whose serials are searched."""
    return {
        "rare word (1 match)": [serial(int(i)) for i in picks],
        "medium word (~1 %)": [MEDIUM_WORD, f"{MEDIUM_WORD} holder"] * 20,
        "common word (~20 %)": [COMMON_WORD] * 40,
        "text + 4 filters": [f"{w} signal:HAADF element:Mn beam_energy>=200 lattice_a:0.38..0.40" for w in
                             np.resize(["film", "LaMnO3", "lamella", COMMON_WORD], 40)],
        "filters only": [f"signal:HAADF element:{e} beam_energy>=200 lattice_a:0.38..0.40" for e in
                         np.resize(["Mn", "Fe", "Ti", "Sr", "O"], 40)],
    }


def _one_size(world: _World, n: int, folder: Path) -> dict:
    path = folder / f"cat{n}.sqlite"
    out: dict = {"n": n}
    rng = np.random.default_rng(n)
    with Catalog(path) as cat:
        out.update(build_catalog(cat, n, world))
        out["db_mb"] = sum(p.stat().st_size for p in folder.glob(f"cat{n}.sqlite*") if p.is_file()) / 2**20
        picks = rng.choice(n, 40, replace=False)
        queries = query_classes(picks)
        cat.search(serial(0))   # warm the connection and page cache the same way for every class
        out["search"] = {k: _timed(lambda q: cat.search(q.strip(), limit=20), v) for k, v in queries.items()}
        out["search_matches"] = {k: len(cat.search(v[0].strip(), limit=10_000)) for k, v in queries.items()}
        out["windowed"] = [k.split(" (")[0] for k, v in queries.items()
                           if any("ranked_over" in h for h in cat.search(v[-1].strip(), limit=20))]
        # the peer: LIKE over the metadata text (no index can serve a leading wildcard)
        con = sqlite3.connect(path)
        like_q = [serial(int(i)) for i in picks[:5 if n <= 100_000 else 3]]   # each scans every row
        out["like_rare"] = _timed(lambda w: con.execute(
            "SELECT id FROM datasets WHERE original_text LIKE ? LIMIT 20", (f"%{w}%",)).fetchall(), like_q)
        out["like_common"] = _timed(lambda w: con.execute(
            "SELECT id FROM datasets WHERE original_text LIKE ? LIMIT 20", (f"%{w}%",)).fetchall(), [COMMON_WORD] * 5)
        # numpy brute force (the peer, and the ground truth for recall)
        t = time.perf_counter()
        ids = np.array([r[0] for r in con.execute("SELECT dataset_id FROM vectors ORDER BY dataset_id")])
        mat = np.frombuffer(b"".join(r[0] for r in con.execute("SELECT blob FROM vectors ORDER BY dataset_id")),
                            dtype="<f4").reshape(-1, DIM)
        unit = mat / np.linalg.norm(mat, axis=1, keepdims=True)
        out["numpy_load_s"] = time.perf_counter() - t
        con.close()
        qids = rng.choice(ids, 200, replace=False)
        pos = np.searchsorted(ids, qids)
        truth, np_times = [], []
        for p in pos:
            t = time.perf_counter()
            s = unit @ unit[p]
            s[p] = -np.inf
            top = np.argpartition(-s, 10)[:10]
            truth.append(set(ids[top[np.argsort(-s[top])]].tolist()))
            np_times.append(time.perf_counter() - t)
        out["numpy"] = _pct(np_times)
        del unit, mat
        n_exact = 40 if n <= 100_000 else 8
        out["exact"] = _timed(lambda q: _similar.nearest(cat, int(q), k=10, exact=True), qids[:n_exact])
        shutil.rmtree(folder / f"cat{n}.sqlite.ann", ignore_errors=True)
        t = time.perf_counter()
        _similar.nearest(cat, int(qids[0]), k=10, exact=False)   # cold: builds and saves the index
        out["index_build_s"] = time.perf_counter() - t
        recall, times = [], []
        for q, tr in zip(qids, truth):
            t = time.perf_counter()
            hits = _similar.nearest(cat, int(q), k=10, exact=False)
            times.append(time.perf_counter() - t)
            recall.append(len(tr & {h["id"] for h in hits}) / 10)
        out["approx"] = _pct(times)
        out["recall"] = float(np.mean(recall))
        out["default_approx"] = _similar.nearest(cat, int(qids[1]), k=10)[0]["approximate"]
    return out


def run() -> str:
    cap = int(os.environ.get("ATOMINE_BENCH_CATALOG_MAX", "1000000"))
    sizes = [n for n in SIZES if n <= cap] or [min(cap, SIZES[0])]
    world = _World()
    results = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="atomine-bench-catalog-") as tmp:
        for n in sizes:
            results.append(_one_size(world, n, Path(tmp)))
            for p in Path(tmp).glob("cat*"):   # each size in turn: disk holds one catalog at a time
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    total = time.perf_counter() - t_all
    classes = list(results[0]["search"])
    lines = [
        "Synthetic catalog inserted with `Catalog.add_datasets` (batch 10,000) into a temporary SQLite file "
        "(rows/s: wall clock of the inserts, records "
        "generated outside it; rows/CPU-s: this process's CPU time, less sensitive to a shared machine); "
        "keyword queries through `Catalog.search(q, limit=20)` (40 distinct queries per class, p50/p95 in ms); "
        "content search top-10 through `_similar.nearest` (exact scan vs the HNSW index, `exact=False`); "
        f"recall@10 of the index against numpy brute force on 200 queries. Total {total:.0f} s.",
        "",
        "| N | insert (s) | rows/s | rows/CPU-s | DB (MiB) | " + " | ".join(f"{c} p50/p95" for c in classes) +
        " | LIKE rare / common p50 |",
        "|---|---|---|---|---|" + "---|" * len(classes) + "---|",
    ]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['build_s']:.0f} | {r['n'] / r['build_s']:,.0f} | "
                     f"{r['n'] / r['build_cpu_s']:,.0f} | {r['db_mb']:,.0f} | " +
                     " | ".join(f"{a:.1f} / {b:.1f}" for a, b in r["search"].values()) +
                     f" | {r['like_rare'][0]:.0f} / {r['like_common'][0]:.1f} |")
    lines += ["", "Matches per class (limit 10,000): " + "; ".join(
        f"N={r['n']:,}: " + ", ".join(f"{k.split(' (')[0]} {v:,}" for k, v in r["search_matches"].items())
        for r in results), "",
        "| N | exact top-10 p50/p95 (ms) | approximate p50/p95 (ms) | index build (s) | recall@10 | "
        "numpy brute force p50/p95 (ms) (+ load s) | default picks approximate |",
        "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['exact'][0]:.1f} / {r['exact'][1]:.1f} | {r['approx'][0]:.2f} / "
                     f"{r['approx'][1]:.2f} | {r['index_build_s']:.1f} | {r['recall']:.3f} | {r['numpy'][0]:.1f} / "
                     f"{r['numpy'][1]:.1f} (+{r['numpy_load_s']:.1f}) | {r['default_approx']} |")
    if len(results) > 1:
        a, b = results[0], results[-1]
        f = b["n"] / a["n"]
        # growth exponent p: latency ~ N^p between the smallest and largest N (0 flat, 1 linear)
        expo = lambda x, y: f"N^{math.log(y / x) / math.log(f):.2f}" if x > 0 and y > 0 else "n/a"  # noqa: E731
        lines += ["", f"Growth from N={a['n']:,} to N={b['n']:,} (x{f:.0f} entries), p95 latency ~ N^p: " + "; ".join(
                      f"{c} {expo(a['search'][c][1], b['search'][c][1])}" for c in classes) +
                  f"; exact top-10 {expo(a['exact'][1], b['exact'][1])}; approximate top-10 "
                  f"{expo(a['approx'][1], b['approx'][1])}; LIKE rare (p50) "
                  f"{expo(a['like_rare'][0], b['like_rare'][0])}"
                  f"; insert rate x{(b['n'] / b['build_s']) / (a['n'] / a['build_s']):.2f}.",
                  f"Ratios at N={b['n']:,}: LIKE rare / FTS rare p50 = "
                  f"{b['like_rare'][0] / max(b['search'][classes[0]][0], 1e-9):.0f}x; numpy brute force / approximate "
                  f"p50 = {b['numpy'][0] / max(b['approx'][0], 1e-9):.1f}x (numpy also holds every vector in memory "
                  f"after a {b['numpy_load_s']:.1f} s load)."]
    lines += ["", f"Ranking window: a word matching more than {_sqlite_fts.RANK_WINDOW:,} entries is ranked over its "
              f"newest {_sqlite_fts.RANK_WINDOW:,} matches only (hits carry `ranked_over`); classes that used it: " +
              "; ".join(f"N={r['n']:,}: " + (", ".join(r["windowed"]) or "none") for r in results) + ".",
              "Record generation (outside the insert time): " +
              ", ".join(f"N={r['n']:,} {r['gen_s']:.0f} s" for r in results) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
