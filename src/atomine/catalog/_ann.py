"""Approximate content search: an HNSW index (usearch, cosine, float32) per descriptor kind.

The index is derived data: it is built from the ``vectors`` table, cached on disk and
keyed by ``(kind, dim, Catalog.vectors_generation())``. Any insert, replacement or
deletion of a vector bumps the generation, so a cached index that does not carry the
current generation is stale and is rebuilt, never used. A cache file whose size or
SHA-256 does not match its sidecar (a crash mid-write, a truncated copy) is rebuilt too.

Where the cache lives:

- a SQLite catalog ``X.sqlite``: the folder ``X.sqlite.ann/`` beside it;
- any other URL (PostgreSQL): ``$XDG_CACHE_HOME/atomine/ann/<sha256 of the URL>/``
  (``~/.cache`` when XDG_CACHE_HOME is unset);
- an in-memory SQLite catalog: nowhere (the index lives in memory only).

Loaded indexes are memory-mapped (usearch ``view``), so opening a 10^6-entry index
costs one checksum, not a copy. Builds are serialised by a lock; queries on a built
index run concurrently (usearch searches are read-only on the graph).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from . import schema as S

Progress = Callable[[int, int, str], None]

# HNSW parameters: connectivity 16 and expansion 128/64 give recall@10 >= 0.99 on
# clustered 32-d descriptors at 10^6 entries (benchmarks/bench_catalog.py measures it).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 64
CHUNK = 50_000          # rows streamed from the database per step of a build
_FORMAT = 1             # bump when the cache layout changes: old caches are then rebuilt

_lock = threading.Lock()
# catalog -> {(kind, dim): (generation, usearch Index)}; shared by the threads that use that catalog
_loaded: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_builds = 0


def build_count() -> int:
    """How many indexes this process has built (not loaded) so far; tests use it to see cache reuse."""
    return _builds


def _usearch():
    from usearch.index import Index   # imported late: only the approximate path needs it
    return Index


def generation(catalog) -> int:
    """The catalog's vector generation (changes whenever any stored vector changes)."""
    gen = getattr(catalog, "vectors_generation", None)
    if gen is not None:
        return int(gen())
    # Older store without the counter: a fingerprint of the vectors table (count, id sum, max id).
    # It sees additions and removals; an in-place replacement keeps the id, so vectors_generation
    # is the real key.
    v = S.vectors
    with catalog._read() as conn:
        n, total, top = conn.execute(sa.select(sa.func.count(), sa.func.sum(v.c.dataset_id),
                                               sa.func.max(v.c.dataset_id))).one()
    return hash((int(n or 0), int(total or 0), int(top or 0)))


def cache_dir(catalog) -> Path | None:
    """Folder of the cached indexes of ``catalog`` (None for an in-memory SQLite catalog)."""
    url = catalog._engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file::memory:"):
            return None
        return Path(url.database).with_name(Path(url.database).name + ".ann")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(catalog.url.encode()).hexdigest()[:32]
    return Path(base) / "atomine" / "ann" / digest


def _stem(kind: str, dim: int) -> str:
    # kinds are free strings: keep a readable part and make the name unique with a short hash
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", kind)[:60]
    return f"{safe}-{hashlib.sha256(kind.encode()).hexdigest()[:8]}-{dim}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _load_cached(folder: Path | None, kind: str, dim: int, gen: int, count: int | None):
    """The cached index when its sidecar says (kind, dim, generation) and its bytes check out; else None."""
    if folder is None:
        return None
    stem = _stem(kind, dim)
    meta_path, index_path = folder / f"{stem}.json", folder / f"{stem}.usearch"
    try:
        meta = json.loads(meta_path.read_text())
        if (meta.get("format") != _FORMAT or meta.get("kind") != kind or meta.get("dim") != dim
                or meta.get("generation") != gen or meta.get("size") != index_path.stat().st_size
                or meta.get("sha256") != _sha256(index_path)):
            return None
        index = _usearch().restore(str(index_path), view=True)
        if index is None or index.ndim != dim or len(index) != meta.get("count") or (
                count is not None and len(index) != count):
            return None
        return index
    except (OSError, ValueError, RuntimeError, TypeError, AttributeError):
        return None   # missing, unreadable or corrupt: the caller rebuilds


def _save(folder: Path | None, kind: str, dim: int, gen: int, index) -> None:
    """Write index + sidecar atomically (temp file + rename, sidecar last); a failed write leaves no cache."""
    if folder is None:
        return
    stem = _stem(kind, dim)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
        os.close(fd)
        index.save(tmp)
        meta = {"format": _FORMAT, "kind": kind, "dim": dim, "generation": gen, "count": len(index),
                "size": os.path.getsize(tmp), "sha256": _sha256(Path(tmp))}
        os.replace(tmp, folder / f"{stem}.usearch")
        fd, tmp_meta = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(meta, fh)
        os.replace(tmp_meta, folder / f"{stem}.json")
    except OSError:
        # a read-only place: the index still serves this process, it is just not cached
        for leftover in folder.glob(f".{stem}.*.tmp") if folder.is_dir() else ():
            leftover.unlink(missing_ok=True)


def _build(catalog, kind: str, dim: int, progress: Progress | None):
    """Stream the kind's vectors in chunks into a fresh HNSW index."""
    global _builds
    v = S.vectors
    where = (v.c.kind == kind, v.c.dim == dim)
    index = _usearch()(ndim=dim, metric="cos", dtype="f32", connectivity=CONNECTIVITY,
                       expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
    with catalog._read() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar() or 0
        done = 0
        result = conn.execution_options(yield_per=CHUNK).execute(
            sa.select(v.c.dataset_id, v.c.blob).where(*where).order_by(v.c.dataset_id))
        for rows in result.partitions(CHUNK):
            keys = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
            # one join per chunk: the blobs exist as Python bytes only for this chunk
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
            del rows
            index.add(keys, matrix, threads=os.cpu_count() or 1)
            done += len(keys)
            if progress is not None:
                progress(done, total, f"building the similarity index ({kind})")
    _builds += 1
    return index


def get_index(catalog, kind: str, dim: int, *, gen: int | None = None, count: int | None = None,
              progress: Progress | None = None):
    """The HNSW index of (kind, dim) at the catalog's current generation: memoised, cached or built.

    ``count`` (the number of vectors of that kind, when the caller knows it) is checked
    against a cached index as well: a catalog file recreated at the same path and
    generation must not inherit the old file's index.
    """
    gen = generation(catalog) if gen is None else gen
    hit = _loaded.get(catalog, {}).get((kind, dim))
    if hit is not None and hit[0] == gen:
        return hit[1]
    with _lock:   # one build at a time; a thread that waited finds the other's result
        mine = _loaded.setdefault(catalog, {})
        hit = mine.get((kind, dim))
        if hit is not None and hit[0] == gen:
            return hit[1]
        folder = cache_dir(catalog)
        index = _load_cached(folder, kind, dim, gen, count)
        if index is None:
            index = _build(catalog, kind, dim, progress)
            _save(folder, kind, dim, gen, index)
        mine[(kind, dim)] = (gen, index)
        return index


def search(catalog, kind: str, query: np.ndarray, k: int, *, exclude: int | None = None, gen: int | None = None,
           count: int | None = None, progress: Progress | None = None) -> list[tuple[int, float]]:
    """Approximate ``k`` nearest (dataset id, cosine distance) pairs, best first, ``exclude`` left out."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    index = get_index(catalog, kind, int(query.size), gen=gen, count=count, progress=progress)
    n = len(index)
    if n == 0:
        return []
    count = min(n, k + (exclude is not None))
    matches = index.search(query, count, threads=1)
    pairs = [(int(i), float(np.clip(dist, 0.0, 2.0))) for i, dist in zip(matches.keys, matches.distances)
             if int(i) != exclude]
    pairs.sort(key=lambda p: (p[1], p[0]))   # ties by id, as on the exact path
    return pairs[:k]


__all__ = ["build_count", "cache_dir", "generation", "get_index", "search", "CONNECTIVITY", "EXPANSION_ADD",
           "EXPANSION_SEARCH"]
