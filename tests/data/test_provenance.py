"""Provenance: content hashes identify bytes (not names or chunking); steps are JSON records; inputs untouched."""

import datetime as dt
import hashlib
import json

import dask.array as dsk
import numpy as np
import pytest

import atomine
from atomine.data import array_hash, file_hash, image, step, with_step
from atomine.errors import AtomineError


def test_file_hash_is_the_sha256_of_the_bytes(tmp_path):
    f = tmp_path / "a.bin"
    payload = bytes(range(256)) * 5000  # more than one read block
    f.write_bytes(payload)
    assert file_hash(f) == "sha256:" + hashlib.sha256(payload).hexdigest()


def test_folder_hash_depends_on_content_and_layout_not_on_creation_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, order in ((a, ["x", "sub/y"]), (b, ["sub/y", "x"])):
        for rel in order:
            p = folder / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(rel)
    assert file_hash(a) == file_hash(b)
    (b / "x").write_text("changed")
    assert file_hash(a) != file_hash(b)
    (b / "x").write_text("x")
    (b / "x").rename(b / "renamed")
    assert file_hash(a) != file_hash(b)  # names are part of a folder's content


def test_file_hash_of_a_missing_path_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):  # the CLI reports OSErrors as one line
        file_hash(tmp_path / "missing")


def test_array_hash_sees_dtype_shape_and_values():
    values = np.arange(24, dtype=np.float32).reshape(4, 6)
    h = array_hash(values)
    assert array_hash(dsk.from_array(values, chunks=(2, 6))) == h  # row blocks: the same bytes in order
    assert array_hash(image(values, 0.1)) == h  # a DataArray is hashed by its data
    assert array_hash(values.astype(np.float64)) != h
    assert array_hash(values.reshape(6, 4)) != h
    changed = values.copy()
    changed[3, 5] += 1
    assert array_hash(changed) != h


def test_array_hash_does_not_depend_on_column_chunking():
    values = np.arange(24, dtype=np.float32).reshape(4, 6)
    assert array_hash(dsk.from_array(values, chunks=(2, 3))) == array_hash(values)


@pytest.mark.parametrize("bad", [[1, 2], None])
def test_array_hash_rejects_non_arrays_clearly(bad):
    with pytest.raises(AtomineError):
        array_hash(bad)


def test_step_is_a_json_record_with_version_and_utc_time():
    rec = step("fourier.segment", {"window_nm": np.float64(2.0), "shape": (3, 4), "obj": object()}, "sha256:ab")
    json.dumps(rec)
    assert rec["name"] == "fourier.segment" and rec["atomine_version"] == atomine.__version__
    assert rec["parameters"]["window_nm"] == 2.0 and rec["parameters"]["shape"] == [3, 4]
    assert rec["input_hash"] == "sha256:ab"
    t = dt.datetime.fromisoformat(rec["time"])
    assert t.utcoffset() == dt.timedelta(0)
    assert step("x")["parameters"] == {}


def test_with_step_appends_without_touching_the_input():
    da = image(np.ones((2, 2)), 0.1, provenance=[{"name": "load"}])
    out = with_step(da, "filter", {"sigma": 1})
    assert [s["name"] for s in out.attrs["provenance"]] == ["load", "filter"]
    assert [s["name"] for s in da.attrs["provenance"]] == ["load"]
    assert out.data is da.data  # shallow: no copy of the values


def test_with_step_rejects_non_dataarrays_clearly():
    with pytest.raises(AtomineError):
        with_step(np.ones(3), "x")


@pytest.mark.parametrize("chunks", [(1, 7, 9), (5, 1, 2), (2, 3, 4), (5, 7, 9)])
def test_array_hash_of_dask_is_the_c_order_digest_with_bounded_pieces(monkeypatch, chunks):
    from atomine.data import provenance

    values = np.random.default_rng(3).random((5, 7, 9)).astype(np.float32)
    truth = hashlib.sha256(b"float32" + b"(5, 7, 9)" + values.tobytes(order="C")).hexdigest()
    assert array_hash(values) == "sha256:" + truth
    # A budget smaller than one row (252 bytes) forces slabs of the second axis; larger ones, row groups.
    for budget in (64, 600, 1 << 20):
        monkeypatch.setattr(provenance, "_SLAB_BYTES", budget)
        assert array_hash(dsk.from_array(values, chunks=chunks)) == "sha256:" + truth
    assert array_hash(dsk.from_array(values[:, ::2], chunks=chunks)) == array_hash(values[:, ::2])  # strided view


def test_array_hash_rejects_object_arrays():
    with pytest.raises(AtomineError, match="Python objects"):
        array_hash(np.array([1, None]))
