"""Catalog ingest: metadata, lattice and radial descriptors, spectra, failures, identity, result folders."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy import ndimage

import atomine.io as aio
import atomine.simulate as sim
from atomine.catalog import descriptors as D
from atomine.catalog.ingest import scan
from atomine.catalog.metadata import signal_fields


@pytest.fixture(scope="module")
def sims():
    return {k: sim.make(k).data for k in ("haadf-perovskite", "haadf-mos2", "eels-si", "cits-grid")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sims):
    root = tmp_path_factory.mktemp("data")
    aio.save(sims["haadf-perovskite"], root / "sto.zarr")
    aio.save(sims["haadf-mos2"], root / "mos2.nc")
    aio.export(sims["eels-si"], root / "sub" / "eels.hspy") if (root / "sub").mkdir() is None else None
    aio.save(sims["cits-grid"], root / "sub" / "cits.nc")
    (root / "sub" / "broken.dm3").write_bytes(b"not a dm3 file at all" * 10)
    return root


def test_metadata_normalised_from_saved_files(folder):
    f = signal_fields(aio.load(folder / "sto.zarr"))
    assert f["signal"] == "HAADF" and f["kind"] == "image" and f["shape"] == [512, 512]
    assert f["beam_energy_kv"] == 300.0 and f["pixel_size_nm"] == pytest.approx(0.02)
    e = signal_fields(aio.load(folder / "sub" / "eels.hspy", kind="spectral"))
    assert e["signal"] == "EELS" and e["kind"] == "spectrum_image" and e["beam_energy_kv"] == 200.0
    assert e["energy_range"] == pytest.approx([400.0, 899.0]) and e["pixel_size_nm"] == pytest.approx(0.25)
    assert "Mn" in e["elements"]


def test_original_metadata_flattened_and_capped():
    from atomine.catalog.metadata import TEXT_CAP, flatten
    assert flatten({"a": {"b": {"c": 1}}, "l": [1, 2]}) == ["a.b.c: 1", "l: 1, 2"]
    import xarray as xr
    da = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"),
                      attrs={"signal": "ADF", "original_metadata": {"Acquisition_instrument": {"TEM": {
                          "beam_energy": 80000, "microscope": "Nion UltraSTEM"}}, "big": "x" * (2 * TEXT_CAP)}})
    f = signal_fields(da)
    assert f["beam_energy_kv"] == 80.0 and f["instrument"] == "Nion UltraSTEM"  # fallbacks: volts -> kV
    assert len(f["original_text"]) == TEXT_CAP and f["metadata"]["text_truncated"] is True


def test_lattice_constants(sims):
    s, _, kind, v = D.describe(sims["haadf-perovskite"])
    assert kind in D.VECTOR_KINDS and v.ndim == 1 and np.linalg.norm(v) == pytest.approx(1.0)  # v2 since step 2
    assert s["lattice_a_nm"] == pytest.approx(0.3905, rel=0.02) and s["lattice_b_nm"] == pytest.approx(0.3905, rel=0.02)
    assert s["lattice_angle_deg"] == pytest.approx(90.0, abs=2.0)
    m, _, _, _ = D.describe(sims["haadf-mos2"])  # simulator: crystal.mos2_cell(0.316), hexagonal
    assert m["lattice_a_nm"] == pytest.approx(0.316, rel=0.02) and m["lattice_angle_deg"] == pytest.approx(60.0, abs=2.0)


def test_no_lattice_in_noise():
    import xarray as xr
    rng = np.random.default_rng(1)
    nm = {"units": "nm"}
    da = xr.DataArray(rng.poisson(100.0, (256, 256)).astype("f4"), dims=("y", "x"),
                      coords={"y": ("y", np.arange(256) * 0.02, nm), "x": ("x", np.arange(256) * 0.02, nm)})
    assert "lattice_a_nm" not in D.describe(da)[0]


def test_radial_rotation_and_dose_invariance(sims):
    d = sims["haadf-perovskite"]
    v0 = D.describe(d)[3]
    rot = D.describe(d.copy(data=ndimage.rotate(d.values, 30, reshape=False, mode="reflect")))[3]
    low = d.copy(data=np.random.default_rng(0).poisson(np.clip(d.values, 0, None) * 0.25).astype("f4"))
    dose = D.describe(low)[3]
    other = D.describe(sims["haadf-mos2"])[3]
    d_rot, d_dose, d_other = (float(np.linalg.norm(x - v0)) for x in (rot, dose, other))
    assert d_rot < 0.2 and d_dose < 0.1 and d_other > 0.8
    assert d_other > 4 * max(d_rot, d_dose)


def test_eels_edges_and_cits_gap(sims):
    s, elements, kind, v = D.describe(sims["eels-si"])
    assert kind == "spectrum_v1" and v.shape == (128,)
    for key in ("edge:Mn_L23", "edge:Ti_L23", "edge:O_K", "edge:La_M45"):
        assert s[key] == 1.0
    assert {"Mn", "Ti", "O", "La"} <= set(elements)
    c, _, ckind, _ = D.describe(sims["cits-grid"])
    assert ckind == "cits_v1" and 0.1 < c["gap_v"] < 1.0


def test_thumbnails_are_small_pngs(sims):
    from atomine.catalog.thumbnail import thumbnail
    import matplotlib.image as mpimg, io
    for k in ("haadf-perovskite", "eels-si"):
        png = thumbnail(sims[k])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert max(mpimg.imread(io.BytesIO(png)).shape[:2]) <= 256


def test_scan_finds_stores_and_files(folder):
    names = sorted(p.name for p in scan(folder))
    assert names == ["broken.dm3", "cits.nc", "eels.hspy", "mos2.nc", "sto.zarr"]
    assert [p.name for p in scan(folder, recursive=False)] == ["mos2.nc", "sto.zarr"]


# --- end to end with the store ------------------------------------------------------------------

def _store():
    import atomine.catalog.store as store

    return store


def test_ingest_end_to_end(tmp_path, folder):
    store = _store()
    from atomine.catalog.ingest import ingest
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    calls = []
    with store.Catalog(tmp_path / "cat.sqlite") as cat:
        rep = ingest(cat, [data], progress=lambda i, n, m: calls.append((i, n)))
        assert rep.added == 4 and len(rep.failed) == 1 and rep.failed[0][0].endswith("broken.dm3")
        assert calls[-1] == (5, 5)
        assert [f["path"] for f in cat.failures()] == [rep.failed[0][0]]
        again = ingest(cat, [data])
        assert again.added == 0 and again.unchanged == 4
        (data / "sub").rename(data / "moved")
        moved = ingest(cat, [data])
        assert moved.moved == 2 and moved.added == 0
        # the catalog finds what it ingested by signal type, element and free text
        hits = {h["path"].rsplit("/", 1)[-1] for h in cat.search("kind:spectrum_image")}
        assert hits == {"eels.hspy"}
        assert {h["path"].rsplit("/", 1)[-1] for h in cat.search("edge:Mn_L23")} == {"eels.hspy"}
        assert "mos2.nc" in {h["path"].rsplit("/", 1)[-1] for h in cat.search("lattice_a:3.1..3.2A")}


def test_result_folder_linked_to_input(tmp_path, sims):
    store = _store()
    from atomine.catalog.ingest import analysis_from_folder, ingest, records_from_file
    from atomine.workflows import analyze_atoms
    small = sims["haadf-perovskite"].isel(y=slice(0, 160), x=slice(0, 160))
    aio.save(small, tmp_path / "small.nc")
    res = analyze_atoms(aio.load(tmp_path / "small.nc"))
    res.save(tmp_path / "atoms_out")
    rec = analysis_from_folder(tmp_path / "atoms_out")
    dataset = records_from_file(tmp_path / "small.nc")[0]
    assert dataset.metadata["array_hash"] in rec.input_hashes
    with store.Catalog(tmp_path / "cat.sqlite") as cat:
        small_id, status = cat.add_dataset(dataset)
        rep = ingest(cat, [tmp_path / "atoms_out"])
        assert status == "added" and rep.analyses == 1
        assert [a["workflow"] for a in cat.get(small_id)["analyses"]] == [rec.workflow]
