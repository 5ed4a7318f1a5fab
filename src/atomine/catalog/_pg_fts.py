"""PostgreSQL-specific full text: a weighted ``tsvector`` column on datasets, its GIN index, ranking and quoting.

The sibling of :mod:`._sqlite_fts` with the same interface (``install``, ``match_expression``,
``ranked_matches``), so that :class:`atomine.catalog.Catalog` runs the same search code on
both backends.

``datasets.search_vector`` is a *generated* column: PostgreSQL recomputes it in the same
statement as every insert and update, so the index can never lag the row. Its weights
mirror the SQLite BM25 column weights: title A; signal, elements B; sample, tags,
normalised metadata C; original metadata, path D. The ``simple`` configuration is used
(technical words such as HAADF or LaMnO3 must not be stemmed or dropped as stop words),
and punctuation is turned into spaces first so that ``/data/f1.dm4`` or
``Acquisition.Beam_Energy`` index as separate words, as SQLite's unicode61 tokenizer does.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

COLUMN = "search_vector"
INDEX = "ix_datasets_search_vector"
CONFIG = "simple"
# weight letter of each searchable column (A heaviest); see the SQLite WEIGHTS
WEIGHTED_COLUMNS = (("title", "A"), ("signal", "B"), ("elements_text", "B"), ("sample", "C"), ("tags_text", "C"),
                    ("metadata_text", "C"), ("original_text", "D"), ("path", "D"))
# ts_rank_cd weights for {D, C, B, A}: a title hit counts ten original-metadata hits
RANK_WEIGHTS = "{0.1, 0.3, 0.6, 1.0}"
# what the snippet is cut from, in the order SQLite's snippet() would prefer
SNIPPET_COLUMNS = ("title", "signal", "elements_text", "sample", "tags_text", "metadata_text", "original_text",
                   "path")
_NOT_WORD = "[^[:alnum:]]+"          # the SQL twin of _SPLIT below
_SPLIT = re.compile(r"[\W_]+")


def _vector_sql() -> str:
    parts = [f"setweight(to_tsvector('{CONFIG}'::regconfig, regexp_replace(coalesce({col}, ''), '{_NOT_WORD}', ' ', "
             f"'g')), '{weight}')" for col, weight in WEIGHTED_COLUMNS]
    return " || ".join(parts)


def install(conn: sa.Connection) -> None:
    """Add the generated tsvector column and its GIN index (idempotent); existing rows are indexed."""
    conn.exec_driver_sql(f"ALTER TABLE datasets ADD COLUMN IF NOT EXISTS {COLUMN} tsvector "
                         f"GENERATED ALWAYS AS ({_vector_sql()}) STORED")
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {INDEX} ON datasets USING GIN ({COLUMN})")


def refresh_after_bulk(conn: sa.Connection) -> None:
    """Merge the GIN index's pending list and refresh the planner statistics of the searched tables."""
    conn.exec_driver_sql(f"SELECT gin_clean_pending_list('{INDEX}'::regclass)")
    conn.exec_driver_sql("ANALYZE datasets, terms, descriptors, vectors")


_TOKEN = re.compile(r'"([^"]*)"|(\S+)')


def match_expression(terms) -> list[tuple[str, str]] | None:
    """Turn free-text terms into the parts of a safe tsquery: ``[(function, text), ...]``, ANDed.

    ``terms`` is a list of words/phrases (``Query.terms``) or a raw string, split on
    whitespace with ``"quoted phrases"`` kept together. A single word becomes
    ``plainto_tsquery``; a phrase, or a word that punctuation splits into several
    (``f1.dm4``), becomes ``phraseto_tsquery`` (words in that order), as a quoted FTS5
    string does. Nothing the user types is tsquery syntax (``&``, ``|``, ``!``, ``:*``):
    every text is a bound parameter, and punctuation is dropped before it gets there.
    Returns None when no word is left.
    """
    if isinstance(terms, str):
        terms = [phrase or word for phrase, word in _TOKEN.findall(terms)]
    parts = []
    for term in terms:
        words = [w for w in _SPLIT.split(str(term)) if w]
        if words:
            parts.append(("phraseto_tsquery" if len(words) > 1 else "plainto_tsquery", " ".join(words)))
    return parts or None


def ranked_matches(expression: list[tuple[str, str]]) -> sa.Subquery:
    """Subquery (id, rank, snippet) of the datasets matching ``expression``; lower rank is better.

    ``expression`` must come from :func:`match_expression`; its texts are bound
    parameters, and only the two function names it may hold are written into the SQL.
    """
    funcs, params = [], {}
    for i, (func, text) in enumerate(expression):
        if func not in ("plainto_tsquery", "phraseto_tsquery"):
            raise ValueError(f"not a tsquery function: {func!r}")
        funcs.append(f"{func}('{CONFIG}'::regconfig, :fts_term_{i})")
        params[f"fts_term_{i}"] = text
    tsquery = " && ".join(funcs)
    # the snippet is cut from the raw text (punctuation kept for the reader); it is computed only for
    # the rows the outer query keeps, since PostgreSQL evaluates it after the sort and LIMIT
    document = "concat_ws(' … ', " + ", ".join(f"nullif(d.{c}, '')" for c in SNIPPET_COLUMNS) + ")"
    stmt = sa.text(
        f"SELECT d.id AS id, -ts_rank_cd('{RANK_WEIGHTS}'::float4[], d.{COLUMN}, q.query) AS rank, "
        f"ts_headline('{CONFIG}'::regconfig, {document}, q.query, "
        "'StartSel=[, StopSel=], MaxWords=12, MinWords=4, MaxFragments=1, FragmentDelimiter=…') AS snippet "
        f"FROM datasets AS d, (SELECT {tsquery} AS query) AS q "
        f"WHERE d.{COLUMN} @@ q.query"
    ).bindparams(**params).columns(
        sa.column("id", sa.Integer), sa.column("rank", sa.Float), sa.column("snippet", sa.Text))
    return stmt.subquery("fts")


__all__ = ["install", "refresh_after_bulk", "match_expression", "ranked_matches", "WEIGHTED_COLUMNS", "RANK_WEIGHTS"]
