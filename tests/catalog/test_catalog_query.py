"""The catalog search syntax: units, ranges, dates, quoting, lists, and its errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomine.catalog.query import FIELDS, Filter, parse
from atomine.errors import InputError


def one(query):
    q = parse(query)
    assert len(q.filters) == 1 and not q.terms, q
    return q.filters[0]


def test_the_issue_example_query():
    q = parse('signal:HAADF element:Mn beam_energy>=200 lattice_a:0.38..0.40 date:2024-01..2024-06 perovskite')
    assert q.terms == ["perovskite"] and q.text == "perovskite"
    assert q.filters == [
        Filter("signal", "=", ("HAADF",)),
        Filter("element", "contains", ("Mn",)),
        Filter("beam_energy", ">=", 200.0),
        Filter("lattice_a", "range", (0.38, 0.40)),
        Filter("date", "range", ("2024-01-01", "2024-06-30T23:59:59.999999")),
    ]


@pytest.mark.parametrize("written, nm", [("0.39", 0.39), ("0.39nm", 0.39), ("3.9A", 0.39), ("3.9Å", 0.39),
                                         ("390pm", 0.39), ("0.00039um", 0.39), ("3.9e-1", 0.39)])
def test_lengths_are_in_nm_unless_a_unit_is_written(written, nm):
    f = one(f"lattice_a<{written}")
    assert f.op == "<" and f.value == pytest.approx(nm, rel=1e-12)


def test_a_unit_on_one_end_of_a_range_applies_to_both_and_ends_may_differ():
    assert one("lattice_a:3.8..4.0A").value == pytest.approx((0.38, 0.40))
    assert one("lattice_a:3.8A..4.0").value == pytest.approx((0.38, 0.40))
    assert one("lattice_a:380pm..0.4nm").value == pytest.approx((0.38, 0.40))


def test_open_ended_ranges():
    assert one("lattice_a:..4A") == Filter("lattice_a", "range", (None, pytest.approx(0.4)))
    assert one("beam_energy:200..") == Filter("beam_energy", "range", (200.0, None))


@pytest.mark.parametrize("written", ["300", "300kV", "300kv", "300keV", "300000V", "300 "])
def test_beam_energy_in_kv_and_an_equal_number_matches_within_rounding(written):
    f = one(f"beam_energy:{written}")
    lo, hi = f.value
    assert f.op == "range" and lo < 300.0 < hi and hi - lo < 1e-3


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "!="])
def test_comparisons_keep_their_operator(op):
    assert one(f"magnification{op}1e6") == Filter("magnification", op, 1e6)


@pytest.mark.parametrize("written, period", [
    ("2024", ("2024-01-01", "2024-12-31T23:59:59.999999")),
    ("2024-02", ("2024-02-01", "2024-02-29T23:59:59.999999")),  # leap year
    ("2023-02", ("2023-02-01", "2023-02-28T23:59:59.999999")),
    ("2024-3-5", ("2024-03-05", "2024-03-05T23:59:59.999999")),
])
def test_a_partial_date_covers_its_whole_period(written, period):
    assert one(f"date:{written}") == Filter("date", "range", period)


def test_date_ranges_and_comparisons_use_the_right_end_of_the_period():
    assert one("date:2024-01..2024-06").value == ("2024-01-01", "2024-06-30T23:59:59.999999")
    assert one("date:..2023").value == (None, "2023-12-31T23:59:59.999999")
    assert one("date>2024-03").value == "2024-03-31T23:59:59.999999"
    assert one("date>=2024-03").value == "2024-03-01"
    assert one("date<2024-03").value == "2024-03-01"
    assert one("date<=2024").value == "2024-12-31T23:59:59.999999"
    # ISO strings sort as time: a stored timestamp on the last day is inside the range
    lo, hi = one("date:2024-06").value
    assert lo <= "2024-06-30T18:00:00+02:00" <= hi and not lo <= "2024-07-01" <= hi


def test_quoted_phrases_and_quoted_values():
    q = parse('"Titan Themis" instrument:"Titan Themis 300" sample:"LaMnO3, film" oxide')
    assert q.terms == ["Titan Themis", "oxide"]
    assert q.text == '"Titan Themis" oxide'
    assert q.filters == [Filter("instrument", "contains", ("Titan Themis 300",)),
                         Filter("sample", "contains", ("LaMnO3, film",))]  # a comma inside quotes is no list


def test_lists_text_fields_flags_and_aliases():
    assert one("element:Mn,fe,O") == Filter("element", "contains", ("Mn", "Fe", "O"))
    assert one("elements:mn") == Filter("element", "contains", ("Mn",))
    assert one("element!=Pb") == Filter("element", "!=", ("Pb",))
    assert one("signal:HAADF,ADF") == Filter("signal", "=", ("HAADF", "ADF"))
    assert one("signal!=EDS") == Filter("signal", "!=", ("EDS",))
    assert one("kind:Image") == Filter("kind", "=", ("image",))
    assert one("SIGNAL=haadf") == Filter("signal", "=", ("haadf",))  # field names are case-insensitive
    assert one("edge:Mn_L23") == Filter("edge", "=", ("Mn_L23",))
    assert FIELDS["edge"].descriptor + "Mn_L23" == "edge:Mn_L23"  # the descriptor key ingest writes
    assert one("instrument:titan") == Filter("instrument", "contains", ("titan",))
    assert one("instrument=Titan") == Filter("instrument", "=", ("Titan",))


def test_free_text_keeps_words_and_empty_queries_are_empty():
    assert parse("").empty and parse("   ").empty and parse(None).empty
    q = parse("  HAADF   Mn-doped  12:30 ")
    assert q.terms == ["HAADF", "Mn-doped", "12:30"] and not q.filters


def test_sql_looking_values_stay_plain_values():
    f = one("sample:\"x'); DROP TABLE datasets; --\"")
    assert f == Filter("sample", "contains", ("x'); DROP TABLE datasets; --",))
    assert parse("'; DROP TABLE datasets; --").terms == ["';", "DROP", "TABLE", "datasets;", "--"]


@pytest.mark.parametrize("query, fragment", [
    ("colour:red", "known fields: signal"),
    ("signal:", "missing value in 'signal:'"),
    ('signal:"', "unclosed quote"),
    ('"Titan Themis', "unclosed quote"),
    ("beam_energy>=fast", "'fast' in 'beam_energy>=fast' is not a number"),
    ("beam_energy:300kA", "unknown unit 'kA'"),
    ("lattice_a:3.9furlong", "unknown unit"),
    ("n_phases:2nm", "unknown unit"),
    ("lattice_a:4..3", "empty range"),
    ("lattice_a:..", "malformed range"),
    ("lattice_a:1..2..3", "malformed range"),
    ("lattice_a>=1..2", "a range takes ':'"),
    ("beam_energy:nan", "not a number"),
    ("beam_energy:1e999", "not a finite number"),
    ("date:2024-13", "month 13"),
    ("date:2023-02-29", "day 29 does not exist"),
    ("date:24-01", "not a date"),
    ("date:2024-06..2024-01", "empty date range"),
    ("date!=2024", "date does not take '!='"),
    ("signal>HAADF", "text field"),
    ("element:Mn,,Fe", "empty item"),
    ("element:Mn2", "not a chemical element"),
    ("kind:movie", "unknown kind 'movie'"),
    ('signal:HA"ADF"', "quote inside a value"),
])
def test_bad_syntax_is_one_line_input_error_naming_the_token(query, fragment):
    with pytest.raises(InputError) as info:
        parse(query)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_oversized_queries_and_wrong_types_are_refused():
    with pytest.raises(InputError, match="too long"):
        parse("a " * 5000)
    with pytest.raises(InputError, match="must be a string"):
        parse(42)


def test_parse_does_not_modify_or_share_state():
    a, b = parse("signal:HAADF"), parse("signal:HAADF")
    a.filters.append(Filter("kind", "=", ("image",)))
    assert len(b.filters) == 1 and len(parse("signal:HAADF").filters) == 1


_ALPHABET = st.sampled_from(list('abcxyzAMN019.:=<>!,"\' -_Åµ\t\n\x00é..') + list(FIELDS) + ["..", "kV", "2024-"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_anything_but_input_error_on_arbitrary_text(text):
    try:
        q = parse(text)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(f.field in FIELDS for f in q.filters)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=12).map("".join))
def test_parse_never_raises_anything_but_input_error_on_syntax_like_text(text):
    try:
        q = parse(text)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        for f in q.filters:
            assert f.op in ("=", "!=", "<", "<=", ">", ">=", "range", "contains")
            if f.op == "range":
                lo, hi = f.value
                assert lo is None or hi is None or lo <= hi
