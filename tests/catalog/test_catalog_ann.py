"""Approximate content search (HNSW via usearch): recall against the exact scan, the on-disk cache
(reused while the vectors are unchanged, rebuilt after add/remove or corruption), bad input."""

from __future__ import annotations

import numpy as np
import pytest

from atomine.catalog import _ann, _similar
from atomine.catalog.store import Catalog, DatasetRecord
from atomine.errors import InputError

KIND, DIM = "image_radial_v1", 32


def rec(i, vector):
    return DatasetRecord(path=f"/data/f{i}.dm4", name="HAADF", signal_index=0, content_hash=f"sha256:{i:064x}:0",
                         kind="image", signal="HAADF", shape=[64, 64], dtype="float32", vector_kind=KIND,
                         vector=vector)


def clustered(n, n_clusters, spread, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, DIM))
    label = rng.integers(0, n_clusters, n)
    return (centres[label] + spread * rng.normal(size=(n, DIM))).astype(np.float32), label, centres


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """10,000 vectors in 50 overlapping clusters (neighbours are not trivially separable)."""
    path = tmp_path_factory.mktemp("ann") / "big.sqlite"
    vecs, label, centres = clustered(10_000, 50, 0.35, seed=1)
    with Catalog(path) as cat:
        ids = [i for i, _ in cat.add_datasets((rec(i, v) for i, v in enumerate(vecs)), batch=5000)]
    return path, np.array(ids), vecs, label, centres


def test_recall_at_10_against_exact(big):
    path, ids, vecs, _, _ = big
    with Catalog(path) as cat:
        rng = np.random.default_rng(2)
        recalls = []
        for q in rng.choice(ids, 30, replace=False):
            exact = [h["id"] for h in _similar.nearest(cat, int(q), k=10, exact=True)]
            approx = _similar.nearest(cat, int(q), k=10, exact=False)
            assert all(h["approximate"] for h in approx) and int(q) not in [h["id"] for h in approx]
            recalls.append(len(set(exact) & {h["id"] for h in approx}) / 10)
        assert np.mean(recalls) >= 0.95
        # by default a 20k-vector kind is small enough for the exact scan
        assert not any(h["approximate"] for h in _similar.nearest(cat, int(ids[0]), k=5))


def test_distances_match_the_exact_cosine(big):
    path, ids, vecs, _, _ = big
    with Catalog(path) as cat:
        q = vecs[7].astype(float)
        approx = _similar.nearest(cat, q, k=5, exact=False)
        unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        truth = 1 - unit @ (q / np.linalg.norm(q))
        for h in approx:
            assert h["distance"] == pytest.approx(truth[list(ids).index(h["id"])], abs=1e-5)
        assert approx[0]["id"] == ids[7] and approx[0]["distance"] < 1e-6   # the vector itself (not excluded)


def test_cache_reused_then_rebuilt_after_add_and_remove(big, tmp_path):
    src, ids, vecs, _, _ = big
    path = tmp_path / "c.sqlite"
    path.write_bytes(src.read_bytes())   # a private copy: this test changes it
    q = int(ids[5])
    with Catalog(path) as cat:
        before = _ann.build_count()
        first = _similar.nearest(cat, q, k=10, exact=False)
        assert _ann.build_count() == before + 1
        index_file = next((tmp_path / "c.sqlite.ann").glob("*.usearch"))
        mtime = index_file.stat().st_mtime_ns
        assert _similar.nearest(cat, q, k=10, exact=False) == first and _ann.build_count() == before + 1
    with Catalog(path) as cat:   # a new process-like open: the cache on disk is loaded, not rebuilt
        assert _similar.nearest(cat, q, k=10, exact=False) == first
        assert _ann.build_count() == before + 1 and index_file.stat().st_mtime_ns == mtime
        # a new vector: the generation moves, the index is rebuilt and finds it
        new_id = cat.add_dataset(rec(10**6, vecs[5] * 3.0))[0]
        hits = _similar.nearest(cat, q, k=10, exact=False)
        assert _ann.build_count() == before + 2 and hits[0]["id"] == new_id and hits[0]["distance"] < 1e-6
        cat.remove(new_id)
        assert _similar.nearest(cat, q, k=10, exact=False) == first
        assert _ann.build_count() == before + 3


def test_corrupt_cache_is_rebuilt(big, tmp_path):
    src, ids, _, _, _ = big
    path = tmp_path / "c.sqlite"
    path.write_bytes(src.read_bytes())
    with Catalog(path) as cat:
        good = _similar.nearest(cat, int(ids[3]), k=10, exact=False)
    index_file = next((tmp_path / "c.sqlite.ann").glob("*.usearch"))
    blob = bytearray(index_file.read_bytes())
    blob[len(blob) // 2: len(blob) // 2 + 4096] = b"\xff" * 4096   # same size, wrong bytes
    index_file.write_bytes(bytes(blob))
    before = _ann.build_count()
    with Catalog(path) as cat:
        assert _similar.nearest(cat, int(ids[3]), k=10, exact=False) == good
        assert _ann.build_count() == before + 1
    index_file.write_bytes(b"truncated")
    with Catalog(path) as cat:
        assert _similar.nearest(cat, int(ids[3]), k=10, exact=False) == good
        assert _ann.build_count() == before + 2


def test_exact_and_approximate_agree_on_top1_for_separated_clusters(tmp_path):
    vecs, label, centres = clustered(1000, 30, 0.05, seed=3)
    with Catalog(tmp_path / "s.sqlite") as cat:
        ids = np.array([i for i, _ in cat.add_datasets(rec(i, v) for i, v in enumerate(vecs))])
        for c in range(30):
            exact = _similar.nearest(cat, centres[c], k=1, exact=True)
            approx = _similar.nearest(cat, centres[c], k=1, exact=False)
            assert approx[0]["id"] == exact[0]["id"]
            assert label[list(ids).index(approx[0]["id"])] == c
            assert approx[0]["distance"] == pytest.approx(exact[0]["distance"], abs=1e-5)


def test_bad_input(big):
    path, ids, _, _, _ = big
    with Catalog(path) as cat:
        for k in (0, -1, 1.5, True, "10"):
            with pytest.raises(InputError, match="k must be"):
                _similar.nearest(cat, int(ids[0]), k=k, exact=False)
        with pytest.raises(InputError, match="descriptor kind"):
            _similar.nearest(cat, int(ids[0]), kind="spectrum_v1", exact=False)
        with pytest.raises(InputError, match="kind must be"):
            _similar.nearest(cat, int(ids[0]), kind="", exact=False)
        with pytest.raises(InputError, match="exact must be"):
            _similar.nearest(cat, int(ids[0]), exact="yes")
        with pytest.raises(InputError, match="kinds have vectors of length 7"):
            _similar.nearest(cat, np.ones(7), exact=False)
        assert _similar.nearest(cat, np.ones(DIM), kind="other_kind", exact=False) == []
