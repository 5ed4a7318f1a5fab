"""Keyword and filter search over the catalog (the body of :meth:`Catalog.search <atomine.catalog.store.Catalog.search>`).

Routes, all giving the exact answer of the query:

- SQLite, a filter narrows the search (:mod:`._plan`): the filters' id sets are intersected
  first, then only those rows are checked and, with free text, ranked;
- SQLite, free text otherwise: :func:`._sqlite_fts.ranked_page` ranks inside the FTS5 query
  (with its ranking window for very common words);
- PostgreSQL, or SQLite filters-only without a narrowing filter: one plain statement.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from . import schema as S

MAX_LIMIT = 10_000
# False: SQLite always takes the plain routes (the tests compare both routes on random queries)
USE_PLAN = True


def _columns():
    d = S.datasets
    return [d.c.id, d.c.path, d.c.name, d.c.signal, d.c.kind, d.c.shape, d.c.title, d.c.pixel_size_nm,
            d.c.beam_energy_kv, d.c.content_level]


def _page_rows(conn: sa.Connection, page: list[tuple[int, float, str]]) -> list[dict]:
    """Rows for (id, rank, snippet) triples, in their order."""
    if not page:
        return []
    d = S.datasets
    by_id = {r["id"]: r for r in conn.execute(sa.select(*_columns()).where(
        d.c.id.in_([i for i, _, _ in page]))).mappings()}
    return [dict(by_id[i], rank=rank, snippet=snippet) for i, rank, snippet in page if i in by_id]


def _plain_rows(conn, fts, expression, clauses, limit, offset) -> list:
    d = S.datasets
    if expression is not None:
        sub = fts.ranked_matches(expression)
        stmt = (sa.select(*_columns(), sub.c.rank, sub.c.snippet).join(sub, sub.c.id == d.c.id)
                .order_by(sub.c.rank, d.c.id))
    else:
        stmt = (sa.select(*_columns(), sa.literal(0.0).label("rank"), sa.literal("").label("snippet"))
                .order_by(d.c.id))
    if clauses:
        stmt = stmt.where(*clauses)
    return conn.execute(stmt.limit(limit).offset(offset)).mappings().all()


def search(cat, query, *, limit: int, offset: int) -> list[dict]:
    """See :meth:`atomine.catalog.store.Catalog.search`; ``cat`` is the Catalog, limit/offset checked here."""
    from . import query as _query
    from ._filters import where_clause
    from .store import _bounded
    q = _query.parse(query) if isinstance(query, str) else query
    limit, offset = _bounded(limit, "limit", 1, MAX_LIMIT), _bounded(offset, "offset", 0, None)
    fts = cat._fts
    expression = None
    if q.terms or q.text:
        expression = fts.match_expression(q.terms if q.terms else q.text)
    clauses = [where_clause(f) for f in q.filters]   # also validates every filter before any route
    sqlite = cat.dialect == "sqlite"
    window = None
    with cat._read() as conn:
        page = None
        if sqlite and USE_PLAN and q.filters:
            from . import _plan
            if expression is not None:
                page = _plan.ranked_filtered_page(conn, expression, q.filters, limit=limit, offset=offset)
                window = fts.last_window() if page is not None else None
            else:
                ids = _plan.filter_page(conn, q.filters, limit=limit, offset=offset)
                page = None if ids is None else [(i, 0.0, "") for i in ids]
        if page is not None:
            rows = _page_rows(conn, page)
        elif sqlite and expression is not None:
            # rank and cut to the page inside the FTS5 query, then read only the page's rows
            rows = _page_rows(conn, fts.ranked_page(conn, expression, clauses, limit=limit, offset=offset,
                                                    window=fts.RANK_WINDOW))
            window = fts.last_window()
        else:
            rows = _plain_rows(conn, fts, expression, clauses, limit, offset)
    hits = [{"id": r["id"], "path": r["path"], "name": r["name"], "signal": r["signal"], "kind": r["kind"],
             "shape": json.loads(r["shape"] or "[]"), "title": r["title"],
             "pixel_size_nm": r["pixel_size_nm"], "beam_energy_kv": r["beam_energy_kv"],
             "score": -float(r["rank"] or 0.0) + 0.0, "snippet": r["snippet"] or "",
             "content_level": r["content_level"]} for r in rows]
    if window is not None:
        for hit in hits:
            hit["ranked_over"] = window
    return hits


__all__ = ["search", "MAX_LIMIT", "USE_PLAN"]
