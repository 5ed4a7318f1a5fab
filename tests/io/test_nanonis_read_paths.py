"""The Nanonis readers' single-read eager path and memory-mapped lazy path give the same result.

The eager readers read the file once and hash those bytes on a worker thread; the lazy ones
hash the file through a memory map. Either way the provenance hash is the SHA-256 of the
file's bytes, and the values are the same native float32 numbers in display order.
"""

import hashlib
import warnings

import numpy as np
import pytest

from atomine.io import load_all
from atomine.io._nanonis_header import ContentHash, IncompleteDataWarning, read_file
from nanonis_writer import write_3ds, write_sxm


def z_surface(x, y):
    return 1e-12 * (7.0 * x * 1e9 + 131.0 * y * 1e9)


def current(x, y, v):
    return 1e-10 * v * (1.0 + 0.05 * x * 1e9) + 2e-12 * y * 1e9 * v**2


def sha(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _sxm(path, **kw):
    chans = [{"name": "Z", "unit": "m", "direction": "both", "surface": z_surface}]
    write_sxm(path, chans, pixels=(16, 12), range_m=(20e-9, 15e-9), **kw)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("kind", ["sxm", "3ds"])
def test_provenance_hash_is_the_files_sha256(tmp_path, kind, lazy):
    path = tmp_path / f"f.{kind}"
    _sxm(path) if kind == "sxm" else write_3ds(path, [("Current (A)", current)], dim=(5, 4), points=9)
    before = path.read_bytes()
    for sig in load_all(path, lazy=lazy):
        (step,) = sig.attrs["provenance"]
        assert step["input_hash"] == sha(path) and step["parameters"]["lazy"] is lazy
    assert path.read_bytes() == before


@pytest.mark.parametrize("scan_dir", ["down", "up"])
def test_sxm_aborted_scan_lazy_equals_eager_native_contiguous(tmp_path, scan_dir):
    path = tmp_path / "scan.sxm"
    _sxm(path, scan_dir=scan_dir, aborted_lines=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDataWarning)
        eager, lazy = load_all(path), load_all(path, lazy=True)
    for e, lz in zip(eager, lazy):
        assert e.shape == (9, 16) and e.dtype == np.float32 and e.dtype.isnative
        assert e.values.flags.c_contiguous  # converted in display order, not a flipped view
        got = lz.values
        assert got.dtype == np.float32 and got.dtype.isnative
        np.testing.assert_array_equal(got, e.values)
    # The Z values are the surface (m -> nm) at each pixel's instrument position.
    xx, yy = np.meshgrid(eager[0].x.values * 1e-9, -eager[0].y.values * 1e-9)
    np.testing.assert_allclose(eager[0].values, z_surface(xx, yy) * 1e9, rtol=1e-5)


def test_3ds_aborted_grid_lazy_equals_eager(tmp_path):
    path = tmp_path / "cut.3ds"
    write_3ds(path, [("Current (A)", current)], dim=(6, 5), points=11, n_written=14, sweep=(1.0, -1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteDataWarning)
        eager, lazy = load_all(path), load_all(path, lazy=True)
    for e, lz in zip(eager, lazy):
        np.testing.assert_array_equal(np.asarray(lz.values), e.values)
    cube = eager[0]
    assert cube.values.flags.c_contiguous and np.isnan(cube.values).any()
    assert np.all(np.diff(cube.bias.values) > 0)  # downward sweep reversed


def test_read_file_and_content_hash_match_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    buf = read_file(str(path))
    assert buf.tobytes() == path.read_bytes()
    assert ContentHash(buf).result() == ContentHash(path=str(path)).result() == sha(path)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert ContentHash(path=str(empty)).result() == sha(empty)
