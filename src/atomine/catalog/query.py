"""The catalog's search syntax: free text plus field filters, parsed into a :class:`Query`.

Syntax (tokens separated by whitespace; AND between all of them)::

    perovskite "Titan Themis"          free words and quoted phrases (full-text, ranked)
    signal:HAADF  kind:image           text fields: ':' / '=' exact (case-insensitive), '!=' excluded
    instrument:"Titan Themis"          quoted values; instrument/sample/title/path/operator match substrings
    element:Mn,Fe  tag:oxide           list fields: any of the comma-separated values
    beam_energy>=200  beam_energy:300kV  numbers with < <= > >= : = !=; units optional
    lattice_a:0.38..0.40  lattice_a:3.8..4.0A  lattice_a:..4A  lattice_a:380pm..   ranges (inclusive, open ends)
    date:2024  date:2024-01..2024-06  date>=2024-03-15   dates; a partial date covers its whole period
    edge:Mn_L23  line:Fe_Ka            spectra in which that edge / X-ray line was detected

Canonical units: lengths nm (A, Å, pm, nm, um, µm accepted), beam energy kV (kV, keV, V, MV), spectral
energy eV (eV, keV), angles degrees. A single number after ':' or '=' matches within rounding
(relative 1e-6), so a value converted from another unit still finds the stored one.

Values never reach SQL as text: the store binds them as parameters. Everything this module raises on
bad input is :class:`atomine.errors.InputError` with a one-line message naming the token.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import InputError

__all__ = ["FIELDS", "FieldSpec", "Filter", "Query", "parse"]

KINDS = ("image", "spectrum_image", "cits", "spectrum", "other")
OPS = ("=", "!=", "<", "<=", ">", ">=", "range", "contains")
_MAX_QUERY = 4000  # characters; a longer query is a mistake or an attack, not a search
_REL_TOL = 1e-6  # '=' on numbers: the rounding of unit conversions, not a physical tolerance


@dataclass(frozen=True)
class FieldSpec:
    """How one search field maps onto the store.

    Attributes
    ----------
    name : str
        Field name as written in a query.
    type : str
        ``"text"`` (one string column), ``"list"`` (a list-of-strings column), ``"number"``,
        ``"date"`` (ISO strings) or ``"flag"`` (presence of the descriptor ``key_prefix + value``).
    column : str or None
        Column of the datasets table (``None`` for descriptor fields).
    descriptor : str or None
        Descriptor key (numbers) or key prefix (flags), ``None`` for column fields.
    unit : str or None
        Canonical unit of the stored value (``"nm"``, ``"kV"``, ``"eV"``, ``"deg"``).
    substring : bool
        For text fields: ``:`` matches a substring (``contains``) rather than the whole value.
    help : str
        One-line description (CLI help, error messages).
    """

    name: str
    type: str
    column: Optional[str] = None
    descriptor: Optional[str] = None
    unit: Optional[str] = None
    substring: bool = False
    help: str = ""


def _f(name, type_, column=None, descriptor=None, unit=None, substring=False, help=""):
    return name, FieldSpec(name, type_, column, descriptor, unit, substring, help)


FIELDS: dict[str, FieldSpec] = dict([
    _f("signal", "text", "signal", help="signal type: HAADF, ADF, ABF, BF, STM, EELS, EDS, CITS, ..."),
    _f("kind", "text", "kind", help="image, spectrum_image, cits, spectrum or other"),
    _f("name", "text", "name", help="signal name within its file"),
    _f("instrument", "text", "instrument", substring=True, help="microscope"),
    _f("detector", "text", "detector", help="detector name"),
    _f("operator", "text", "operator", substring=True, help="who acquired it"),
    _f("sample", "text", "sample", substring=True, help="sample description"),
    _f("title", "text", "title", substring=True, help="title of the signal"),
    _f("path", "text", "path", substring=True, help="part of the file path"),
    _f("dtype", "text", "dtype", help="numpy dtype of the data"),
    _f("content_level", "text", "content_level",
       help="content (descriptors, thumbnail) or metadata (added with --metadata-only)"),
    _f("element", "list", "elements", help="chemical element(s), any of a comma-separated list"),
    _f("tag", "list", "tags", help="tag(s), any of a comma-separated list"),
    _f("beam_energy", "number", "beam_energy_kv", unit="kV", help="beam energy in kV"),
    _f("pixel_size", "number", "pixel_size_nm", unit="nm", help="pixel size (nm unless a unit is written)"),
    _f("energy_min", "number", "energy_min", unit="eV", help="low end of the spectral axis (eV)"),
    _f("energy_max", "number", "energy_max", unit="eV", help="high end of the spectral axis (eV)"),
    _f("magnification", "number", "magnification", help="nominal magnification"),
    _f("file_size", "number", "file_size", help="file size in bytes"),
    _f("date", "date", "acquisition_date", help="acquisition date: YYYY, YYYY-MM, YYYY-MM-DD"),
    _f("lattice_a", "number", descriptor="lattice_a_nm", unit="nm", help="first lattice periodicity"),
    _f("lattice_b", "number", descriptor="lattice_b_nm", unit="nm", help="second lattice periodicity"),
    _f("lattice_angle", "number", descriptor="lattice_angle_deg", unit="deg", help="angle between them"),
    _f("n_phases", "number", descriptor="n_phases", help="phases found by the quick segmentation"),
    _f("edge", "flag", descriptor="edge:", help="detected EELS edge, e.g. Mn_L23"),
    _f("line", "flag", descriptor="line:", help="detected X-ray line, e.g. Fe_Ka"),
])

ALIASES = {"elements": "element", "tags": "tag", "signal_type": "signal", "acquisition_date": "date",
           "beam_energy_kv": "beam_energy", "pixel_size_nm": "pixel_size", "edges": "edge", "lines": "line"}

# unit -> factor to the canonical unit, per canonical unit
_UNITS = {
    "nm": {"nm": 1.0, "a": 0.1, "å": 0.1, "ang": 0.1, "angstrom": 0.1, "pm": 1e-3, "um": 1e3, "µm": 1e3,
           "μm": 1e3},
    "kV": {"kv": 1.0, "kev": 1.0, "v": 1e-3, "ev": 1e-3},
    "eV": {"ev": 1.0, "kev": 1e3},
    "deg": {"deg": 1.0, "°": 1.0, "rad": 180.0 / math.pi},
}


@dataclass(frozen=True)
class Filter:
    """One field condition, values in the field's canonical unit.

    ``value`` by ``op``: ``<``, ``<=``, ``>``, ``>=`` a float (or ISO date string);
    ``range`` a ``(low, high)`` pair, inclusive, ``None`` for an open end;
    ``=``, ``!=`` on text/list/flag fields a tuple of alternatives (any of / none of), on numbers a float;
    ``contains`` a tuple of substrings (any of).
    """

    field: str
    op: str
    value: Any

    @property
    def spec(self) -> FieldSpec:
        return FIELDS[self.field]


@dataclass
class Query:
    """A parsed search: free text for the full-text index AND field filters.

    Attributes
    ----------
    text : str
        Free text as the user meant it (phrases re-quoted), ``""`` when none.
    filters : list of Filter
    terms : list of str
        The free-text words and phrases one by one (phrases without quotes), for building a safe
        full-text expression without interpreting the user's text as full-text syntax.
    """

    text: str = ""
    filters: list[Filter] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.filters


# A token: optional field+op, then a quoted or bare value; or a bare/quoted free-text term.
_TOKEN = re.compile(r'''\s*(?:(?P<field>[A-Za-z_][A-Za-z0-9_]*)(?P<op>!=|<=|>=|:|=|<|>))?
                        (?:"(?P<quoted>[^"]*)(?P<closed>")?|(?P<bare>[^\s"]+))''', re.VERBOSE)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\d\s.+-][^\s]*)?\s*$")
_DANGLING = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(!=|<=|>=|:|=|<|>)$")
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def parse(query: str) -> Query:
    """Parse a search string into free text and field filters.

    Parameters
    ----------
    query : str
        E.g. ``'signal:HAADF element:Mn beam_energy>=200 lattice_a:3.8..4.0A perovskite'``.

    Returns
    -------
    Query

    Raises
    ------
    InputError
        Unknown field (the message lists the known ones), malformed value, unclosed quote, or a
        comparison the field does not support.
    """
    if query is None:
        return Query()
    if not isinstance(query, str):
        raise InputError(f"a search query must be a string, got {type(query).__name__}")
    if len(query) > _MAX_QUERY:
        raise InputError(f"search query too long ({len(query)} characters, at most {_MAX_QUERY})")
    if "\x00" in query:
        raise InputError("search query contains a NUL character; remove it")
    terms: list[str] = []
    filters: list[Filter] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN.match(query, pos)
        if m is None or m.end() == pos:  # e.g. a field followed by nothing parseable
            raise InputError(f"cannot read the search query at {query[pos:].strip()[:40]!r}")
        pos = m.end()
        token = m.group(0).strip()
        if m.group("quoted") is not None and m.group("closed") is None:
            raise InputError(f"unclosed quote in {token!r}; close it with \"")
        value = m.group("quoted") if m.group("quoted") is not None else m.group("bare")
        if m.group("field") is None:
            value = value.strip()
            dangling = _DANGLING.match(value)
            if dangling and m.group("quoted") is None:  # 'signal:' or 'signal: HAADF'
                spec = _field(dangling.group(1), value)
                raise InputError(f"missing value in {value!r}; write e.g. {spec.name}:VALUE with no space after "
                                 f"{dangling.group(2)!r}")
            if value:
                terms.append(value)
            continue
        if m.group("quoted") is None and pos < len(query) and query[pos] == '"':
            raise InputError(f"quote inside a value in {token!r}; quote the whole value: field:\"...\"")
        filters.append(_filter(m.group("field"), m.group("op"), value, token, m.group("quoted") is not None))
    text = " ".join(f'"{t}"' if (" " in t or not t.isalnum()) else t for t in terms)
    return Query(text=text, filters=filters, terms=terms)


def _field(name: str, token: str) -> FieldSpec:
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in FIELDS:
        raise InputError(f"unknown search field {name!r} in {token!r}; known fields: {', '.join(FIELDS)} "
                         "(quote the word to search it as text)")
    return FIELDS[key]


def _filter(name: str, op: str, value: str, token: str, quoted: bool) -> Filter:
    spec = _field(name, token)
    value = value.strip()
    if not value:
        raise InputError(f"missing value in {token!r}; write e.g. {spec.name}:VALUE")
    if spec.type in ("text", "list", "flag"):
        return _text_filter(spec, op, value, token, quoted)
    if spec.type == "date":
        return _date_filter(spec, op, value, token)
    return _number_filter(spec, op, value, token)


def _text_filter(spec: FieldSpec, op: str, value: str, token: str, quoted: bool) -> Filter:
    if op not in (":", "=", "!="):
        raise InputError(f"{spec.name} is a text field: use {spec.name}:VALUE or {spec.name}!=VALUE, not {op!r} "
                         f"(in {token!r})")
    # a quoted value is one value even if it holds a comma (an instrument called "A, B")
    values = [value] if quoted else [v.strip() for v in value.split(",")]
    if any(not v for v in values):
        raise InputError(f"empty item in the list {token!r}; write e.g. {spec.name}:A,B")
    if spec.name == "kind":
        values = [v.lower() for v in values]
        bad = [v for v in values if v not in KINDS]
        if bad:
            raise InputError(f"unknown kind {bad[0]!r} in {token!r}; use one of {', '.join(KINDS)}")
    if spec.name == "element":
        values = [_element(v, token) for v in values]
    if spec.type == "list":
        return Filter(spec.name, "!=" if op == "!=" else "contains", tuple(values))
    if op == "!=":
        return Filter(spec.name, "!=", tuple(values))
    if op == ":" and spec.substring:
        return Filter(spec.name, "contains", tuple(values))
    return Filter(spec.name, "=", tuple(values))


def _element(symbol: str, token: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{1,3}", symbol):
        raise InputError(f"{symbol!r} in {token!r} is not a chemical element symbol (e.g. Mn, O, Fe)")
    return symbol[0].upper() + symbol[1:].lower()


def _number(text: str, spec: FieldSpec, token: str, default_unit: Optional[str] = None) -> tuple[float, Optional[str]]:
    """A number with an optional unit -> (value in the canonical unit, the unit written or None)."""
    m = _NUMBER.match(text)
    if m is None:
        raise InputError(f"{text!r} in {token!r} is not a number{_unit_hint(spec)}")
    number = float(m.group(1))
    unit = m.group(2) or default_unit
    if not math.isfinite(number):
        raise InputError(f"{text!r} in {token!r} is not a finite number")
    if unit is None:
        return number, None
    table = _UNITS.get(spec.unit or "", {})
    factor = table.get(unit.lower()) if unit.lower() in table else table.get(unit)
    if factor is None:
        raise InputError(f"unknown unit {unit!r} in {token!r}{_unit_hint(spec)}")
    return number * factor, m.group(2)


def _unit_hint(spec: FieldSpec) -> str:
    if spec.unit in _UNITS:
        return f"; {spec.name} takes a number in {spec.unit} or with one of the units " \
               f"{', '.join(sorted(set(_UNITS[spec.unit]) - {'ang', 'angstrom'}))}"
    return f"; {spec.name} takes a plain number"


def _number_filter(spec: FieldSpec, op: str, value: str, token: str) -> Filter:
    if ".." in value:
        if op not in (":", "="):
            raise InputError(f"a range takes ':' as in {spec.name}:LOW..HIGH, not {op!r} (in {token!r})")
        low_text, _, high_text = value.partition("..")
        if ".." in high_text or (not low_text.strip() and not high_text.strip()):
            raise InputError(f"malformed range {token!r}; write {spec.name}:LOW..HIGH (either end may be left open)")
        # a unit written on one end applies to both: lattice_a:3.8..4.0A
        unit = _unit_of(high_text, spec, token) or _unit_of(low_text, spec, token)
        low = _number(low_text, spec, token, unit)[0] if low_text.strip() else None
        high = _number(high_text, spec, token, unit)[0] if high_text.strip() else None
        if low is not None and high is not None and low > high:
            raise InputError(f"empty range {token!r}: the low end is above the high end")
        return Filter(spec.name, "range", (low, high))
    number = _number(value, spec, token)[0]
    if op in (":", "="):
        tol = _REL_TOL * abs(number) + 1e-12
        return Filter(spec.name, "range", (number - tol, number + tol))
    return Filter(spec.name, op, number)


def _unit_of(text: str, spec: FieldSpec, token: str) -> Optional[str]:
    if not text.strip():
        return None
    return _number(text, spec, token)[1]


def _period(text: str, token: str) -> tuple[str, str]:
    """A YYYY[-MM[-DD]] date -> (first instant, last instant) of the period, as ISO strings."""
    m = _DATE.match(text.strip())
    if m is None:
        raise InputError(f"{text!r} in {token!r} is not a date; write YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    if not 1 <= year <= 9999:
        raise InputError(f"year {year} in {token!r} is out of range")
    if month is None:
        return f"{year:04d}-01-01", f"{year:04d}-12-31T23:59:59.999999"
    month = int(month)
    if not 1 <= month <= 12:
        raise InputError(f"month {month} in {token!r} is not between 1 and 12")
    last = calendar.monthrange(year, month)[1]
    if day is None:
        return f"{year:04d}-{month:02d}-01", f"{year:04d}-{month:02d}-{last:02d}T23:59:59.999999"
    day = int(day)
    if not 1 <= day <= last:
        raise InputError(f"day {day} does not exist in {year:04d}-{month:02d} (in {token!r})")
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    return iso, iso + "T23:59:59.999999"


def _date_filter(spec: FieldSpec, op: str, value: str, token: str) -> Filter:
    # Dates are compared as ISO strings, which sort chronologically; the period's end is its last microsecond.
    if ".." in value:
        if op not in (":", "="):
            raise InputError(f"a date range takes ':' as in date:2024-01..2024-06, not {op!r} (in {token!r})")
        low_text, _, high_text = value.partition("..")
        if ".." in high_text or (not low_text.strip() and not high_text.strip()):
            raise InputError(f"malformed date range {token!r}; write date:FROM..TO (either end may be left open)")
        low = _period(low_text, token)[0] if low_text.strip() else None
        high = _period(high_text, token)[1] if high_text.strip() else None
        if low is not None and high is not None and low > high:
            raise InputError(f"empty date range {token!r}: the start is after the end")
        return Filter(spec.name, "range", (low, high))
    start, end = _period(value, token)
    if op in (":", "="):
        return Filter(spec.name, "range", (start, end))
    if op == "!=":
        raise InputError(f"date does not take '!=' (in {token!r}); use date<... or date>...")
    return Filter(spec.name, op, {"<": start, ">=": start, ">": end, "<=": end}[op])
