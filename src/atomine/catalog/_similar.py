"""Exact content search: cosine nearest neighbours among the stored descriptor vectors of one kind."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from ..errors import InputError
from . import schema as S


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    # a zero vector has no direction: it stays zero, so its cosine to anything is 0 (distance 1)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def nearest(catalog, target, *, k: int = 10, kind: str | None = None) -> list[dict]:
    """See :meth:`atomine.catalog.Catalog.similar`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    v, d = S.vectors, S.datasets
    exclude = None
    with catalog._read() as conn:
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            row = conn.execute(sa.select(v.c.kind, v.c.blob).where(v.c.dataset_id == int(target))).first()
            if row is None:
                raise InputError(f"dataset {target} has no content descriptor (or does not exist); "
                                 "re-add it with descriptors on")
            if kind is not None and kind != row.kind:
                raise InputError(f"dataset {target} has descriptor kind {row.kind!r}, not {kind!r}")
            kind, query, exclude = row.kind, np.frombuffer(row.blob, dtype="<f4"), int(target)
        else:
            query = np.asarray(target, dtype=np.float64)
            if query.ndim != 1 or query.size == 0 or not np.all(np.isfinite(query)):
                raise InputError(f"a query vector must be a non-empty finite 1-D array, got shape {query.shape}")
            if kind is None:
                kinds = list(conn.execute(sa.select(v.c.kind).distinct().where(v.c.dim == query.size)).scalars())
                if len(kinds) != 1:
                    raise InputError(f"{len(kinds)} descriptor kinds have vectors of length {query.size} "
                                     f"({', '.join(sorted(kinds)) or 'none'}); pass kind=")
                kind = kinds[0]
        stmt = sa.select(v.c.dataset_id, v.c.blob).where(v.c.kind == kind, v.c.dim == query.size)
        if exclude is not None:
            stmt = stmt.where(v.c.dataset_id != exclude)
        rows = conn.execute(stmt.order_by(v.c.dataset_id)).all()
        if not rows:
            return []
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), query.size)
        distance = 1.0 - _unit_rows(matrix.astype(np.float64)) @ _unit_rows(query)
        distance = np.clip(distance, 0.0, 2.0)
        order = np.lexsort((ids, distance))[:k]   # ties broken by id, so results are reproducible
        chosen = [int(i) for i in ids[order]]
        info = {r.id: r for r in conn.execute(sa.select(d.c.id, d.c.path, d.c.name, d.c.signal, d.c.kind)
                                              .where(d.c.id.in_(chosen)))}
    return [{"id": i, "path": info[i].path, "name": info[i].name, "signal": info[i].signal, "kind": info[i].kind,
             "distance": float(dist)} for i, dist in zip(chosen, distance[order])]


__all__ = ["nearest"]
