"""SQLite-specific full text: the FTS5 index over datasets, its sync triggers, ranking and quoting.

Everything dialect-specific about keyword search lives here, so that PostgreSQL
needs only its own sibling module (tsvector + ts_rank) for the store to run there.

The FTS5 table is an *external content* table over ``datasets`` (the text is not
stored twice); triggers keep it in step with every insert, update and delete, in
the same transaction as the row change.
"""

from __future__ import annotations

import json
import re
import threading

import sqlalchemy as sa

FTS_TABLE = "datasets_fts"
# Column order matters: it fixes the order of the bm25 weights below.
FTS_COLUMNS = ("title", "signal", "elements_text", "sample", "tags_text", "metadata_text", "original_text", "path")
# A word in the title outweighs the same word in the (long) original metadata.
WEIGHTS = (10.0, 6.0, 6.0, 4.0, 4.0, 2.0, 1.0, 1.5)


def install(conn: sa.Connection) -> None:
    """Create the FTS5 table and its triggers (idempotent), and index any rows already present."""
    cols = ", ".join(FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5({cols}, content='datasets', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    conn.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS datasets_fts_ai AFTER INSERT ON datasets BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, {cols}) VALUES (new.id, {new}); END")
    conn.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS datasets_fts_ad AFTER DELETE ON datasets BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {cols}) VALUES ('delete', old.id, {old}); END")
    conn.exec_driver_sql(
        f"CREATE TRIGGER IF NOT EXISTS datasets_fts_au AFTER UPDATE ON datasets BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {cols}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO {FTS_TABLE}(rowid, {cols}) VALUES (new.id, {new}); END")
    conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


# Pending-term memory of one write transaction before FTS5 flushes it as a new index segment.
# The default (1 MiB) holds ~250 rows of lab metadata, so a bulk insert wrote hundreds of small
# segments and spent ~40 % of its time merging them; 64 MiB makes one segment per ~10^4 rows
# (the memory is used only while a write transaction is open).
HASHSIZE_BYTES = 64 * 2**20


def tune(conn: sa.Connection) -> None:
    """Persistent FTS5 settings for bulk inserts (stored in the index's config table)."""
    conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('hashsize', {HASHSIZE_BYTES})")


_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def match_expression(terms) -> str | None:
    """Turn free-text terms into a safe FTS5 query: every word or phrase becomes a quoted string.

    ``terms`` is a list of words/phrases (``Query.terms``) or a raw string, split on
    whitespace with ``"quoted phrases"`` kept together.

    Quoting every token means nothing a user types (``"``, ``*``, ``NEAR``, ``-``,
    ``:``, ``AND``/``OR``) is read as FTS5 syntax; the terms are ANDed. Tokens
    without a letter or digit index to nothing and are dropped. Returns None when no
    term is left.
    """
    if isinstance(terms, str):
        terms = [phrase or word for phrase, word in _TOKEN.findall(terms)]
    parts = []
    for term in terms:
        if re.search(r"\w", term):
            parts.append('"' + term.replace('"', '""') + '"')
    return " ".join(parts) if parts else None


def ranked_matches(expression: str) -> sa.Subquery:
    """Subquery (id, rank, snippet) of the datasets matching ``expression``; lower rank is better.

    ``expression`` must come from :func:`match_expression`; it is passed as a bound
    parameter, never formatted into the SQL.
    """
    weights = ", ".join(repr(w) for w in WEIGHTS)
    stmt = sa.text(
        f"SELECT rowid AS id, bm25({FTS_TABLE}, {weights}) AS rank, "
        f"snippet({FTS_TABLE}, -1, '[', ']', '…', 12) AS snippet "
        f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_expression"
    ).bindparams(fts_expression=expression).columns(
        sa.column("id", sa.Integer), sa.column("rank", sa.Float), sa.column("snippet", sa.Text))
    return stmt.subquery("fts")


# Ranking window: when more datasets match the words than this, BM25 ranks only the newest this many.
# FTS5 walks a doclist at ~0.03 us a match but bm25() costs ~0.8 us a match: a word in 20 % of 10^6
# entries took ~170 ms to rank in full, ~40 ms within this window. See :func:`ranked_page`.
RANK_WINDOW = 50_000


def ranked_page(conn: sa.Connection, expression: str, clauses=(), *, limit: int = 20, offset: int = 0,
                window: int | None = RANK_WINDOW) -> list[tuple[int, float, str]]:
    """One page of (id, rank, snippet) for ``expression`` AND the filter ``clauses``, best first (rank, id).

    The fast plan at scale (measure before changing): rank inside the FTS5 query and cut to
    the page there, touching ``datasets`` only for the filters; snippets are made for the
    page only, by a second MATCH restricted to those rowids. :func:`ranked_matches` joined
    to ``datasets`` reads every matching row and makes every snippet before sorting
    (5-7 us per match: ~1 s for a word in 20 % of 10^6 entries).

    Ranking window (the trade-off): when the words match more than ``window`` datasets, only
    the newest ``window`` of them (highest ids; found from the doclist alone, no bm25) are
    ranked, and the page is taken from those, filters applied. Every hit still matches the
    whole query; what is lost is an older, better-scoring match of a very common word. When
    the window holds less than a full page that passes the filters (a selective filter), the
    older matches are ranked too and merged (the full ranking, at the full cost), so a window
    never hides matches from a short result. Paging is consistent while every page fits the
    window; a page past the window's filtered matches is ranked in full.
    :func:`last_window` tells whether the window was used (per thread; :meth:`Catalog.search`
    reports it on each hit as ``ranked_over``).
    ``window=None`` always ranks every match.
    """
    from . import schema as S
    weights = ", ".join(repr(w) for w in WEIGHTS)
    fts = sa.table(FTS_TABLE, sa.column("rowid"))
    rank = sa.literal_column(f"bm25({FTS_TABLE}, {weights})").label("rank")
    match = sa.text(f"{FTS_TABLE} MATCH :fts_expression").bindparams(fts_expression=expression)
    stmt = sa.select(fts.c.rowid.label("id"), rank).select_from(fts).where(match)
    if clauses:
        d = S.datasets
        stmt = stmt.join(d, d.c.id == fts.c.rowid).where(*clauses)
    stmt = stmt.order_by(sa.text("rank"), sa.text("id"))
    _STATE.window = None
    cutoff = None
    if window is not None and window > 0 and offset + limit <= window:
        cutoff = window_cutoff(conn, expression, window)
    if cutoff is None:
        rows = conn.execute(stmt.limit(limit).offset(offset)).all()
    else:
        top = offset + limit
        rows = conn.execute(stmt.where(fts.c.rowid >= cutoff).limit(top)).all()
        if len(rows) == top:
            _STATE.window = window
        else:
            # a short page in the window (selective filters): rank the older matches too and merge, so
            # nothing is hidden; bm25 statistics are those of the whole index, so the ranks compare
            rows += conn.execute(stmt.where(fts.c.rowid < cutoff).limit(top)).all()
            rows.sort(key=lambda r: (r[1], r[0]))
        rows = rows[offset:top]
    if not rows:
        return []
    ids = [int(r[0]) for r in rows]
    found = snippets(conn, expression, ids)
    return [(i, float(r[1]), found.get(i, "")) for i, r in zip(ids, rows)]


def snippets(conn: sa.Connection, expression: str, ids: list[int]) -> dict[int, str]:
    """{id: snippet} for a page of matching ids (one MATCH restricted to those rowids)."""
    if not ids:
        return {}
    snip = sa.text(f"SELECT rowid, snippet({FTS_TABLE}, -1, '[', ']', '…', 12) FROM {FTS_TABLE} "
                   f"WHERE {FTS_TABLE} MATCH :fts_expression AND rowid IN :ids").bindparams(
        sa.bindparam("ids", expanding=True), fts_expression=expression, ids=[int(i) for i in ids])
    return {int(i): s for i, s in conn.execute(snip).all()}


def rank_ids(conn: sa.Connection, expression: str, ids, *, min_id: int | None = None) -> dict[int, float]:
    """{id: bm25 rank (lower is better)} for those of ``ids`` (>= ``min_id`` if given) that match ``expression``.

    One pass over the expression's matches (from ``min_id`` on: FTS5 seeks there), each checked
    against the id list (~0.1 us a match) and ranked only if listed (~2 us). ``rowid`` is wrapped
    (``rowid + 0``) in the list test on purpose: given a plain ``rowid IN (...)``, FTS5 re-opens
    the match once per listed id (~3 ms each for a common word at 10^6 entries).
    """
    if len(ids) == 0:
        return {}
    weights = ", ".join(repr(w) for w in WEIGHTS)
    stmt = sa.text(
        f"SELECT rowid, bm25({FTS_TABLE}, {weights}) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_expression "
        "AND rowid >= :min_id AND (rowid + 0) IN (SELECT value FROM json_each(:ids))").bindparams(
        fts_expression=expression, ids=json.dumps([int(i) for i in ids]),
        min_id=-(2**63) if min_id is None else int(min_id))
    return {int(i): float(r) for i, r in conn.execute(stmt).all()}


def window_cutoff(conn: sa.Connection, expression: str, window: int) -> int | None:
    """The id of the ``window``-th newest match of ``expression`` (from the doclist, no ranking); None: fewer."""
    return conn.execute(sa.text(
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_expression "
        "ORDER BY rowid DESC LIMIT 1 OFFSET :skip").bindparams(fts_expression=expression, skip=window - 1)).scalar()


class _State(threading.local):
    window: int | None = None


_STATE = _State()


def last_window() -> int | None:
    """The ranking window the last :func:`ranked_page` call of this thread used (None: every match ranked)."""
    return _STATE.window


def set_last_window(window: int | None) -> None:
    """Record the ranking window of a search made outside :func:`ranked_page` (see :mod:`._plan`)."""
    _STATE.window = window


__all__ = ["install", "tune", "match_expression", "ranked_matches", "ranked_page", "rank_ids", "snippets",
           "window_cutoff", "last_window", "set_last_window", "RANK_WINDOW",
           "FTS_COLUMNS", "WEIGHTS"]
