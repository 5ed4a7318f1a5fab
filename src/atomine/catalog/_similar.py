"""Content search: cosine nearest neighbours among the stored descriptor vectors of one kind.

Exact (a chunked scan of that kind's vectors) for small catalogs or when asked;
approximate (the HNSW index of :mod:`atomine.catalog._ann`) beyond
``EXACT_MAX`` vectors of the kind. Every hit says which one answered.
"""

from __future__ import annotations

import weakref

import numpy as np
import sqlalchemy as sa

from ..errors import InputError
from . import _ann
from . import schema as S

EXACT_MAX = 100_000   # vectors of one kind up to which the exact scan answers by default
CHUNK = 20_000        # rows per step of the exact scan

# catalog -> (generation, {(kind, dim): count}): counting a 10^6-row table per query would
# cost more than the approximate search itself, and the generation says when it changes
_counts: "weakref.WeakKeyDictionary[object, tuple[int, dict]]" = weakref.WeakKeyDictionary()


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    # a zero vector has no direction: it stays zero, so its cosine to anything is 0 (distance 1)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _kind_counts(catalog, gen: int) -> dict:
    hit = _counts.get(catalog)
    if hit is not None and hit[0] == gen:
        return hit[1]
    v = S.vectors
    with catalog._read() as conn:
        counts = {(r[0], int(r[1])): int(r[2]) for r in conn.execute(
            sa.select(v.c.kind, v.c.dim, sa.func.count()).group_by(v.c.kind, v.c.dim))}
    _counts[catalog] = (gen, counts)   # a plain replace: a racing thread writes the same answer
    return counts


def _exact(conn, kind: str, query: np.ndarray, k: int, exclude: int | None) -> list[tuple[int, float]]:
    """Chunked exact scan: keep per chunk every row that could still be in the top k (ties included)."""
    v = S.vectors
    stmt = sa.select(v.c.dataset_id, v.c.blob).where(v.c.kind == kind, v.c.dim == query.size)
    if exclude is not None:
        stmt = stmt.where(v.c.dataset_id != exclude)
    unit_query = _unit_rows(query)
    keep_ids, keep_dist = [], []
    for rows in conn.execution_options(yield_per=CHUNK).execute(stmt).partitions(CHUNK):
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), query.size)
        dist = np.clip(1.0 - _unit_rows(matrix.astype(np.float64)) @ unit_query, 0.0, 2.0)
        if dist.size > k:
            kth = np.partition(dist, k - 1)[k - 1]
            mask = dist <= kth
            ids, dist = ids[mask], dist[mask]
        keep_ids.append(ids)
        keep_dist.append(dist)
    if not keep_ids:
        return []
    ids, dist = np.concatenate(keep_ids), np.concatenate(keep_dist)
    order = np.lexsort((ids, dist))[:k]   # ties broken by id, so results are reproducible
    return [(int(ids[i]), float(dist[i])) for i in order]


def nearest(catalog, target, *, k: int = 10, kind: str | None = None, exact: bool | None = None,
            progress=None) -> list[dict]:
    """See :meth:`atomine.catalog.Catalog.similar`.

    ``exact``: True scans every vector of the kind; False uses the approximate index
    whatever the size; None (default) picks exact up to ``EXACT_MAX`` vectors of the kind.
    ``progress(done, total, message)`` is called while an approximate index is built.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if exact is not None and not isinstance(exact, (bool, np.bool_)):
        raise InputError(f"exact must be True, False or None, got {exact!r}")
    if kind is not None and (not isinstance(kind, str) or not kind):
        raise InputError(f"kind must be a descriptor kind name such as 'image_radial_v1', got {kind!r}")
    k = int(k)
    v, d = S.vectors, S.datasets
    exclude = None
    gen = _ann.generation(catalog)
    with catalog._read() as conn:
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            row = conn.execute(sa.select(v.c.kind, v.c.blob).where(v.c.dataset_id == int(target))).first()
            if row is None:
                raise InputError(f"dataset {target} has no content descriptor (or does not exist); "
                                 "re-add it with descriptors on")
            if kind is not None and kind != row.kind:
                raise InputError(f"dataset {target} has descriptor kind {row.kind!r}, not {kind!r}")
            kind, query, exclude = row.kind, np.frombuffer(row.blob, dtype="<f4").astype(np.float64), int(target)
        else:
            try:
                query = np.asarray(target, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"target must be a dataset id or a 1-D vector, got {type(target).__name__}") from None
            if query.ndim != 1 or query.size == 0 or not np.all(np.isfinite(query)):
                raise InputError(f"a query vector must be a non-empty finite 1-D array, got shape {query.shape}")
        counts = _kind_counts(catalog, gen)
        if kind is None:
            kinds = sorted(kk for kk, dim in counts if dim == query.size)
            if len(kinds) != 1:
                raise InputError(f"{len(kinds)} descriptor kinds have vectors of length {query.size} "
                                 f"({', '.join(kinds) or 'none'}); pass kind=")
            kind = kinds[0]
        n = counts.get((kind, int(query.size)), 0)
        if n == 0:
            return []
        # a zero query has no direction: the index cannot rank it, the exact scan ties everything at 1
        approximate = (exact is False or (exact is None and n > EXACT_MAX)) and bool(np.any(query))
        if approximate:
            pairs = _ann.search(catalog, kind, query, k, exclude=exclude, gen=gen, count=n, progress=progress)
        else:
            pairs = _exact(conn, kind, query, k, exclude)
        chosen = [i for i, _ in pairs]
        info = {r.id: r for r in conn.execute(sa.select(d.c.id, d.c.path, d.c.name, d.c.signal, d.c.kind)
                                              .where(d.c.id.in_(chosen)))}
    # an index entry whose dataset vanished after the generation was read is skipped, not reported
    return [{"id": i, "path": info[i].path, "name": info[i].name, "signal": info[i].signal, "kind": info[i].kind,
             "distance": dist, "approximate": approximate} for i, dist in pairs if i in info]


__all__ = ["nearest", "EXACT_MAX"]
