"""SQLite-specific full text: the FTS5 index over datasets, its sync triggers, ranking and quoting.

Everything dialect-specific about keyword search lives here, so that PostgreSQL
needs only its own sibling module (tsvector + ts_rank) for the store to run there.

The FTS5 table is an *external content* table over ``datasets`` (the text is not
stored twice); triggers keep it in step with every insert, update and delete, in
the same transaction as the row change.
"""

from __future__ import annotations

import re

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


__all__ = ["install", "match_expression", "ranked_matches", "FTS_COLUMNS", "WEIGHTS"]
