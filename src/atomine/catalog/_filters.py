"""Parsed search filters (:class:`atomine.catalog.query.Filter`) -> SQL conditions on the datasets table.

Column names come only from the schema's whitelist and values only as bound
parameters, so nothing a user types can change the statement.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import InputError
from . import schema as S

# list fields of the query syntax -> the `terms.field` their values are stored under
_TERM_FIELDS = {"elements": "element", "tags": "tag"}


def _number_condition(col, op: str, value):
    if op == "range":
        low, high = value
        parts = ([col >= low] if low is not None else []) + ([col <= high] if high is not None else [])
        return sa.and_(col.is_not(None), *parts)
    ops = {"<": col.__lt__, "<=": col.__le__, ">": col.__gt__, ">=": col.__ge__, "=": col.__eq__}
    if op == "!=":
        return sa.or_(col.is_(None), col != value)
    if op not in ops:
        raise InputError(f"operator {op!r} does not apply to a number or date field")
    return ops[op](value)


def _values(value) -> list[str]:
    return [str(v) for v in (value if isinstance(value, (tuple, list)) else (value,))]


def _text_condition(col, op: str, value):
    values = _values(value)
    if op == "contains":
        return sa.or_(*[col.icontains(v, autoescape=True) for v in values])
    lowered = [v.lower() for v in values]
    if op == "=":
        return sa.func.lower(col).in_(lowered)
    if op == "!=":
        return sa.or_(col.is_(None), sa.func.lower(col).not_in(lowered))
    raise InputError(f"operator {op!r} does not apply to a text field")


def _term_condition(field: str, op: str, value):
    t = S.terms
    # `id IN (uncorrelated subquery)` rather than a correlated EXISTS: SQLite can then start from
    # the (field, value) index when the term is selective, instead of probing every dataset row
    ids = sa.select(t.c.dataset_id).where(t.c.field == field, t.c.value.in_([v.lower() for v in _values(value)]))
    if op in ("=", "contains"):
        return S.datasets.c.id.in_(ids)
    if op == "!=":
        return S.datasets.c.id.not_in(ids)
    raise InputError(f"operator {op!r} does not apply to a list field")


def _descriptor_condition(names_or_name, op: str, value, flag: bool):
    d = S.descriptors
    # uncorrelated `id IN (...)` for the same reason as terms: the (name, value) index drives it
    if flag:  # presence of any of the descriptors prefix+value, e.g. edge:Mn_L23
        ids = sa.select(d.c.dataset_id).where(d.c.name.in_(names_or_name), d.c.value > 0)
        if op in ("=", "contains"):
            return S.datasets.c.id.in_(ids)
        if op == "!=":
            return S.datasets.c.id.not_in(ids)
        raise InputError(f"operator {op!r} does not apply to a flag field")
    return S.datasets.c.id.in_(sa.select(d.c.dataset_id).where(d.c.name == names_or_name,
                                                              _number_condition(d.c.value, op, value)))


def where_clause(f) -> sa.ColumnElement:
    """SQL condition for one Filter (field, op, value) using ``query.FIELDS``."""
    from .query import FIELDS
    spec = FIELDS.get(f.field)
    if spec is None:
        raise InputError(f"unknown search field {f.field!r}; known: {', '.join(sorted(FIELDS))}")
    if spec.column is not None:
        if spec.type == "list":
            if spec.column not in _TERM_FIELDS:
                raise InputError(f"list field {f.field!r} has no index in this catalog")
            return _term_condition(_TERM_FIELDS[spec.column], f.op, f.value)
        if spec.column not in S.FILTER_COLUMNS:
            raise InputError(f"field {f.field!r} maps to column {spec.column!r}, which the catalog does not filter on")
        col = S.datasets.c[spec.column]
        if spec.type in ("number", "date"):
            return _number_condition(col, f.op, f.value)
        return _text_condition(col, f.op, f.value)
    if spec.descriptor is None:
        raise InputError(f"field {f.field!r} maps to neither a column nor a descriptor")
    if spec.type == "flag":
        return _descriptor_condition([spec.descriptor + v for v in _values(f.value)], f.op, f.value, flag=True)
    return _descriptor_condition(spec.descriptor, f.op, f.value, flag=False)


# Number/date columns with a plain B-tree index (migration 2): `SELECT id ... WHERE col <op> v` reads
# only that index (it carries the rowid), so such a filter can give its id set cheaply.
_INDEXED_NUMBER_COLUMNS = ("beam_energy_kv", "pixel_size_nm", "acquisition_date")


def _indexed_set(f):
    """(table, id column, condition) of a filter whose ids one covering index holds, else None."""
    from .query import FIELDS
    spec = FIELDS.get(f.field)
    if spec is None:
        where_clause(f)   # raises the one-line InputError
    if spec.column is not None:
        if spec.type == "list" and spec.column in _TERM_FIELDS and f.op in ("=", "contains"):
            t = S.terms
            return t, t.c.dataset_id, sa.and_(t.c.field == _TERM_FIELDS[spec.column],
                                              t.c.value.in_([v.lower() for v in _values(f.value)]))
        if (spec.type in ("number", "date") and spec.column in _INDEXED_NUMBER_COLUMNS
                and f.op in ("<", "<=", ">", ">=", "=", "range")):
            d = S.datasets
            return d, d.c.id, _number_condition(d.c[spec.column], f.op, f.value)
        return None
    if spec.descriptor is None:
        return None
    d = S.descriptors
    if spec.type == "flag":
        if f.op not in ("=", "contains"):
            return None
        return d, d.c.dataset_id, sa.and_(d.c.name.in_([spec.descriptor + v for v in _values(f.value)]),
                                          d.c.value > 0)
    return d, d.c.dataset_id, sa.and_(d.c.name == spec.descriptor, _number_condition(d.c.value, f.op, f.value))


def id_source(f) -> sa.Select | None:
    """``SELECT <dataset id>`` of exactly the datasets that filter ``f`` passes, answered from one index.

    For filters whose ids a covering index holds (list fields with =/contains, descriptors,
    comparisons on indexed number/date columns); None for the others (text columns, ``!=`` on
    a list field, ...), which are checked row by row. The set equals what :func:`where_clause`
    selects (ids may repeat for a flag over several descriptors).
    """
    parts = _indexed_set(f)
    return None if parts is None else sa.select(parts[1]).where(parts[2])


def is_column_set(f) -> bool:
    """Whether :func:`id_source` of ``f`` reads an index of ``datasets`` itself (a number/date column)."""
    parts = _indexed_set(f)
    return parts is not None and parts[0] is S.datasets


def probe_clause(f) -> sa.ColumnElement:
    """Condition on ``datasets`` equal to :func:`where_clause`, phrased for checking a few rows.

    Term and descriptor filters become correlated EXISTS probes of their table's primary key
    (one index seek per row checked); :func:`where_clause`'s uncorrelated ``id IN (...)`` would
    first collect every matching id (10^5 at 10^6 entries) to check a handful of rows.
    """
    parts = _indexed_set(f)
    if parts is None or parts[0] is S.datasets:
        return where_clause(f)
    table, id_col, cond = parts
    return sa.exists(sa.select(sa.literal(1)).select_from(table).where(id_col == S.datasets.c.id, cond))


__all__ = ["where_clause", "id_source", "is_column_set", "probe_clause"]
