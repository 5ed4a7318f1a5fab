"""Metadata-only ingest: same normalised metadata as a full ingest, no content; upgrade in place; no-op; failures."""

from __future__ import annotations

import importlib

import pytest

import atomine.io as aio
import atomine.simulate as sim
from atomine.catalog.store import Catalog
from atomine.errors import InputError

ING = importlib.import_module("atomine.catalog.ingest")  # the module (atomine.catalog.ingest is also the function)

# every format atomine writes and reads back with calibration and metadata
IMAGE_FORMATS = (".hspy", ".tif", ".nc", ".zarr", ".npz")
# what content adds on top of the metadata (compared separately)
_CONTENT_ONLY = {"thumbnail_png", "descriptors", "vector_kind", "vector", "content_level", "elements", "metadata"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    image = sim.make("haadf-perovskite").data.isel(y=slice(0, 256), x=slice(0, 256))
    image.attrs["metadata"] = {**image.attrs["metadata"], "instrument": "Titan Themis", "operator": "A. N. Other",
                               "sample": "SrTiO3 wedge", "acquisition_date": "2024-03-05"}
    for ext in IMAGE_FORMATS:
        (aio.save if ext in (".zarr", ".nc") else aio.export)(image, root / f"image{ext}")
    si = sim.make("eels-si").data
    aio.export(si, root / "si.hspy")
    aio.save(si, root / "si.nc")
    (root / "broken.tif").write_bytes(b"II*\x00 this is not really a TIFF " * 20)
    return root


def _files(folder):
    return sorted(p for p in ING.scan(folder) if p.name != "broken.tif")


@pytest.mark.parametrize("lazy_bytes", [ING.LAZY_BYTES, 0], ids=["small-files-eager", "all-lazy"])
def test_metadata_records_equal_full_records_but_for_content(folder, monkeypatch, lazy_bytes):
    # lazy_bytes=0 reads every format lazily, as metadata-only ingest does for large files
    monkeypatch.setattr(ING, "LAZY_BYTES", lazy_bytes)
    for path in _files(folder):
        meta, full = ING.records_from_file(path, content=False), ING.records_from_file(path)
        assert len(meta) == len(full) == 1, path
        m, f = meta[0], full[0]
        for key in set(vars(f)) - _CONTENT_ONLY:
            assert getattr(m, key) == getattr(f, key), (path.name, key)
        assert {k: v for k, v in f.metadata.items() if k != "array_hash"} == m.metadata, path.name
        assert set(m.elements) <= set(f.elements)
        assert m.content_level == "metadata" and f.content_level == "content"
        assert m.thumbnail_png is None and m.descriptors == {} and m.vector is None and m.vector_kind is None
        assert "array_hash" not in m.metadata and f.metadata["array_hash"].startswith("sha256:")
        assert f.thumbnail_png is not None and f.vector is not None, path.name
    # the normalised values themselves, per format (metadata-only)
    (r,) = ING.records_from_file(folder / "image.tif", content=False)
    assert (r.kind, r.shape) == ("image", [256, 256])  # atomine's TIFF keeps the pixels and little else
    for ext in set(IMAGE_FORMATS) - {".tif"}:
        (r,) = ING.records_from_file(folder / f"image{ext}", content=False)
        assert (r.kind, r.signal, r.shape, r.beam_energy_kv) == ("image", "HAADF", [256, 256], 300.0), ext
        assert r.pixel_size_nm == pytest.approx(0.02) and r.instrument == "Titan Themis", ext
        assert r.sample == "SrTiO3 wedge" and r.acquisition_date.startswith("2024-03-05"), ext
    for name in ("si.hspy", "si.nc"):
        (r,) = ING.records_from_file(folder / name, content=False)
        assert r.kind == "spectrum_image" and r.signal == "EELS" and r.energy_range == pytest.approx([400.0, 899.0])


def test_content_hash_is_the_file_sha256(folder):
    from atomine.data import file_hash

    for path in _files(folder):
        (r,) = ING.records_from_file(path, content=False)
        assert r.content_hash == file_hash(path) + ":0", path.name


def test_metadata_ingest_upgrade_noop_and_failure(tmp_path, folder):
    files = _files(folder)
    with Catalog(tmp_path / "cat.sqlite") as cat:
        rep = ING.ingest(cat, [folder], content=False, batch=3)  # several batches
        assert rep.added == len(files) == 7
        assert rep.failed == [(str(folder / "broken.tif"), rep.failed[0][1])] and rep.failed[0][1]
        assert [f["path"] for f in cat.failures()] == [str(folder / "broken.tif")]
        hits = cat.search("", limit=100)
        ids = {h["path"]: h["id"] for h in hits}
        assert set(ids) == {str(p) for p in files}
        for h in hits:
            got = cat.get(h["id"])
            assert got["content_level"] == "metadata" and got["descriptors"] == {} and not got["has_thumbnail"]
        assert {h["path"] for h in cat.search("signal:HAADF beam_energy:300", limit=100)} == {
            str(folder / f"image{e}") for e in IMAGE_FORMATS if e != ".tif"}
        with pytest.raises(InputError, match="no content descriptor"):  # no vectors yet
            cat.similar(hits[0]["id"], k=3)

        again = ING.ingest(cat, [folder], content=False)
        assert (again.added, again.unchanged, again.updated, len(again.failed)) == (0, 7, 0, 1)

        full = ING.ingest(cat, [folder])
        assert (full.added, full.unchanged, full.updated) == (0, 0, 7)
        for path, i in ids.items():
            got = cat.get(i)  # same id, now with content
            assert got["path"] == path and got["content_level"] == "content" and got["has_thumbnail"]
            assert got["descriptors"], path
        image_id = ids[str(folder / "image.zarr")]
        assert cat.get(image_id)["descriptors"]["lattice_a_nm"] == pytest.approx(0.3905, rel=0.02)
        near = [h["id"] for h in cat.similar(image_id, k=4)]
        assert set(near) == {ids[str(folder / f"image{e}")] for e in IMAGE_FORMATS} - {image_id}

        # content already there: neither a full nor a metadata-only add changes anything
        for content in (True, False):
            rep = ING.ingest(cat, [folder], content=content)
            assert (rep.added, rep.unchanged, rep.updated) == (0, 7, 0)
            assert cat.get(image_id)["content_level"] == "content"


def test_a_changed_file_is_read_again(tmp_path, folder):
    image = aio.load(folder / "image.nc")
    path = tmp_path / "x.nc"
    aio.save(image, path)
    with Catalog(tmp_path / "cat.sqlite") as cat:
        assert ING.ingest(cat, [path], content=False).added == 1
        aio.save(image * 2.0, path, overwrite=True)
        rep = ING.ingest(cat, [path], content=False)
        assert (rep.added, rep.unchanged, rep.updated) == (0, 0, 1)
        (hit,) = cat.search("")
        assert cat.get(hit["id"])["content_hash"].startswith(__import__("atomine").data.file_hash(path))


def test_batch_must_be_positive(tmp_path, folder):
    with Catalog(tmp_path / "cat.sqlite") as cat, pytest.raises(InputError, match="batch"):
        ING.ingest(cat, [folder], batch=0)
