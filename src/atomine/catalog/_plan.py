"""Filter-first search plans on SQLite: intersect the filters' id sets before touching rows or ranking.

At 10^6 entries a query such as ``film signal:HAADF element:Mn beam_energy>=200
lattice_a:0.38..0.40`` matches few datasets although each part matches many (the
word 1/3 of the catalog, Mn 8 %, the lattice range 7 %). Checking every full-text match
against its row costs ~3-8 us a match (a ``datasets`` row, with its metadata text, is
kilobytes); reading the ids that a covering index holds costs ~0.1 us an id. So:

1. each filter with an index-only id set (:func:`._filters.id_source`: elements, tags,
   descriptors, indexed number/date columns) is read, up to ``SET_CAP`` ids, and the sets
   are intersected in numpy (sorted ids); a set much larger than the candidates so far is
   not read (reading stops at its cap) but probed per candidate instead;
2. the remaining filters (text columns, ``!=``, sets too large) are checked on the
   candidates' rows only, in growing chunks until the page is full;
3. with free text, the candidates are ranked first (BM25 of each candidate that matches,
   in one pass over the word's matches; the ranking window of :mod:`._sqlite_fts` applies to
   very common words), rows checked in rank order.

When no filter narrows the search (no id set under ``SET_CAP``, or, with free text,
more than ``TEXT_CANDIDATES_MAX`` candidates) these functions return None and the
caller uses the plain plan, which is fast exactly then (many rows pass the filters).
Every hit matches the whole query and the hits are those of the plain statement (same
order, same scores; with free text, the same ranking window); only the route differs.
"""

from __future__ import annotations

import json

import numpy as np
import sqlalchemy as sa

from . import _sqlite_fts as fts
from . import schema as S
from ._filters import id_source, probe_clause

# An id set is read only if it holds at most this many ids (~15 ms to read at 0.1 us an id).
SET_CAP = 150_000
# A further set is read (0.1 us an id) only while it is under this many times the candidates so far;
# past that, probing it per candidate (~1-2 us a seek; ~8 us for a row) is cheaper.
PROBE_RATIO = 10
# With free text, at most this many candidates are ranked (one pass over the word's matches).
TEXT_CANDIDATES_MAX = 20_000
# Rows checked per statement (ids go in as one JSON array parameter; no bound-parameter cap applies).
_CHUNK_MAX = 20_000


def _read_ids(conn: sa.Connection, source: sa.Select, cap: int) -> np.ndarray | None:
    """Sorted distinct ids of ``source``, or None when it holds more than ``cap`` rows."""
    # one string instead of one Python tuple per id: ~3x faster to fetch at 10^5 ids; reading is
    # as cheap as counting (~0.1 us an id), so sets are read with a cap rather than counted first
    sub = source.limit(cap + 1).subquery()
    col = list(sub.c)[0]
    n, text = conn.execute(sa.select(sa.func.count(), sa.func.group_concat(col)).select_from(sub)).one()
    if n > cap:
        return None
    if not text:
        return np.zeros(0, dtype=np.int64)
    return _sorted_distinct(np.fromstring(text, dtype=np.int64, sep=","))


def _sorted_distinct(ids: np.ndarray) -> np.ndarray:
    # np.unique costs ~10x a plain sort here (~40 ms at 10^5 ids, numpy 2.x)
    ids.sort()
    return ids[np.concatenate(([True], ids[1:] != ids[:-1]))] if len(ids) > 1 else ids


def _intersect(small: np.ndarray, large: np.ndarray) -> np.ndarray:
    """Sorted distinct ``small`` ∩ sorted distinct ``large`` by binary search (no re-sort of both)."""
    if len(small) > len(large):
        small, large = large, small
    if len(small) == 0 or len(large) == 0:
        return small[:0]
    pos = np.minimum(np.searchsorted(large, small), len(large) - 1)
    return small[large[pos] == small]


def candidates(conn: sa.Connection, filters) -> tuple[np.ndarray | None, list]:
    """(sorted ids passing every set filter read, filters still to check per row); (None, filters) if none narrows.

    Term and descriptor sets are read first (in query order), indexed-column sets last and only
    when no filter needs the row anyway (the row check then tests them for free).
    """
    from ._filters import is_column_set
    sets, rest = [], []
    for f in filters:
        source = id_source(f)
        (rest if source is None else sets).append(f if source is None else (is_column_set(f), f, source))
    row_needed = bool(rest)
    ids = None
    for column, f, source in sorted(sets, key=lambda s: s[0]):
        if ids is not None and (len(ids) == 0 or (column and row_needed)):
            rest.append(f)   # an empty candidate set ignores it; a column is checked on the row
            continue
        new = _read_ids(conn, source, SET_CAP if ids is None else min(SET_CAP, PROBE_RATIO * len(ids)))
        if new is None:
            rest.append(f)
            row_needed |= column
            continue
        ids = new if ids is None else _intersect(ids, new)
    return ids, rest


def _json_ids(ids) -> sa.TableValuedAlias:
    return sa.func.json_each(sa.bindparam("candidate_ids", json.dumps([int(i) for i in ids]),
                                          type_=sa.Text)).table_valued("value")


def check(conn: sa.Connection, ids: np.ndarray, rest) -> list[int]:
    """The ids among ``ids`` (sorted) whose rows pass every filter of ``rest``, ascending."""
    if not rest or len(ids) == 0:
        return [int(i) for i in ids]
    d = S.datasets
    clauses = [probe_clause(f) for f in rest]
    out: list[int] = []
    for start in range(0, len(ids), _CHUNK_MAX):
        cand = _json_ids(ids[start:start + _CHUNK_MAX])
        # rowid IN (list): SQLite drives the lookup from the list, one primary-key seek per candidate
        stmt = sa.select(d.c.id).where(d.c.id.in_(sa.select(cand.c.value)), *clauses).order_by(d.c.id)
        out += [int(i) for i in conn.execute(stmt).scalars()]
    return out


def filter_page(conn: sa.Connection, filters, *, limit: int, offset: int) -> list[int] | None:
    """Ids of one page of a filters-only search (ascending id), or None to use the plain plan."""
    ids, rest = candidates(conn, filters)
    if ids is None:
        return None
    need = offset + limit
    if not rest:
        return [int(i) for i in ids[offset:need]]
    got: list[int] = []
    pos, step = 0, max(256, 2 * need)
    while pos < len(ids) and len(got) < need:
        got += check(conn, ids[pos:pos + step], rest)
        pos += step
        step = min(2 * step, _CHUNK_MAX)
    return got[offset:need]


def _ranked_passing(conn, expression: str, ids: np.ndarray, rest, need: int, min_id=None) -> list:
    """(id, rank) of the candidates that match and pass ``rest``, best first, the first ``need`` of them."""
    ranks = fts.rank_ids(conn, expression, ids, min_id=min_id)
    ranked = sorted(ranks.items(), key=lambda kv: (kv[1], kv[0]))
    if not rest:
        return ranked[:need]
    # rows are checked in rank order only until the page is full
    passed, pos, step = [], 0, max(256, 2 * need)
    while pos < len(ranked) and len(passed) < need:
        part = ranked[pos:pos + step]
        ok = set(check(conn, np.sort(np.array([i for i, _ in part], dtype=np.int64)), rest))
        passed += [kv for kv in part if kv[0] in ok]
        pos += step
        step = min(2 * step, _CHUNK_MAX)
    return passed[:need]


def ranked_filtered_page(conn: sa.Connection, expression: str, filters, *, limit: int,
                         offset: int) -> list[tuple[int, float, str]] | None:
    """One page of (id, rank, snippet) for free text AND filters; None: use the plain plan.

    The candidates are ranked (one pass over the word's matches), then their rows are checked in
    rank order until the page is full. Ranking window, as in :func:`._sqlite_fts.ranked_page`:
    when the words match more than ``RANK_WINDOW`` datasets, the candidates among the newest
    ``RANK_WINDOW`` matches are ranked first (FTS5 seeks to the window, ~5x less to walk for a
    word in 1/3 of 10^6 entries); if they fill the page it is served from them and
    :func:`._sqlite_fts.last_window` says so, else every candidate is ranked (nothing hidden).
    """
    fts.set_last_window(None)
    ids, rest = candidates(conn, filters)
    if ids is None or len(ids) > TEXT_CANDIDATES_MAX:
        return None
    need = offset + limit
    window = fts.RANK_WINDOW
    page = None
    if window and need <= window and len(ids):
        cutoff = fts.window_cutoff(conn, expression, window)
        if cutoff is not None:
            newer = _ranked_passing(conn, expression, ids[ids >= cutoff], rest, need, min_id=cutoff)
            if len(newer) == need:
                page = newer[offset:]
                fts.set_last_window(window)
    if page is None:
        page = _ranked_passing(conn, expression, ids, rest, need)[offset:]
    snippets = fts.snippets(conn, expression, [i for i, _ in page])
    return [(i, r, snippets.get(i, "")) for i, r in page]


__all__ = ["candidates", "check", "filter_page", "ranked_filtered_page", "SET_CAP", "PROBE_RATIO",
           "TEXT_CANDIDATES_MAX"]
