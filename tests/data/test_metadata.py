"""Normalised metadata: JSON-safe, known keys kept, everything else under "extra"; odd input handled."""

import datetime as dt
import json

import numpy as np
import pytest

from atomine.data import METADATA_KEYS, from_json, jsonable, normalise_metadata, to_json
from atomine.errors import AtomineError


def test_jsonable_converts_numpy_dates_bytes_and_containers():
    obj = {"i": np.int16(3), "f": np.float32(0.5), "arr": np.arange(3), "scalar": np.array(2.5),
           "date": dt.date(2024, 5, 1), "b": b"abc", "t": (1, 2), "s": {3}, 7: "int key", "none": None}
    out = jsonable(obj)
    json.dumps(out)  # serialisable
    assert out == {"i": 3, "f": 0.5, "arr": [0, 1, 2], "scalar": 2.5, "date": "2024-05-01", "b": "abc",
                   "t": [1, 2], "s": [3], "7": "int key", "none": None}


def test_jsonable_handles_non_finite_large_deep_and_exotic_values():
    assert jsonable(float("nan")) == "nan" and jsonable(np.float64("-inf")) == "-inf"  # JSON has no NaN
    big = jsonable(np.zeros((100, 100)))
    assert big == "<array shape=[100, 100] dtype=float64>"
    deep: list = []
    node = deep
    for _ in range(60):
        node.append([])
        node = node[0]
    json.dumps(jsonable(deep))  # deep nesting is cut off, never a RecursionError
    assert isinstance(jsonable(object()), str) and jsonable(1 + 2j) == "(1+2j)"


def test_jsonable_keeps_numpy_booleans_boolean():
    assert jsonable({"flag": np.bool_(True)}) == {"flag": True}


def test_normalise_metadata_keeps_known_keys_and_drops_empty_values():
    md = normalise_metadata({"beam_energy_kv": 300, "dwell_time_s": None, "probe_current_pa": float("nan"),
                             "elements": "La; Sr, Mn", "Vendor.Thing": [1, 2]})
    assert md == {"beam_energy_kv": 300, "elements": ["La", "Sr", "Mn"], "extra": {"Vendor.Thing": [1, 2]}}
    assert set(md) - {"extra"} <= set(METADATA_KEYS)
    assert normalise_metadata(None) == {} and normalise_metadata({}) == {}


def test_normalise_metadata_is_idempotent():
    once = normalise_metadata({"beam_energy_kv": 300.0, "vendor": 1})
    assert normalise_metadata(once) == once


@pytest.mark.parametrize("bad", [[1, 2], "text", 3])
def test_normalise_metadata_rejects_non_mappings_clearly(bad):
    with pytest.raises(AtomineError):
        normalise_metadata(bad)


def test_to_json_from_json_round_trip_and_tolerance():
    md = {"b": [1, 2.5, "x"], "a": {"nested": None}}
    text = to_json(md)
    assert from_json(text) == md and text.index('"a"') < text.index('"b"')  # sorted keys: stable bytes
    assert from_json("{not json") == "{not json"  # a plain string stays a string
    assert from_json(3) == 3 and from_json(None) is None
    assert json.loads(to_json({"x": np.float32(1.5), "y": float("inf")})) == {"x": 1.5, "y": "inf"}


def test_normalise_metadata_treats_numpy_nan_as_absent_and_merges_extras():
    md = normalise_metadata({"dwell_time_s": np.float32("nan"), "beam_energy_kv": np.float64(200.0),
                             "extra": {"a": 1, "gone": None}, "b": np.bool_(False)})
    assert md == {"beam_energy_kv": 200.0, "extra": {"a": 1, "b": False}}
    assert normalise_metadata(normalise_metadata(md)) == md
