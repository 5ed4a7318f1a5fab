"""``atomine catalog add|search|similar|show|rm|stats`` on a folder of simulated files and one corrupt file."""

import json
import os
import shutil

import numpy as np
import pytest
from cli_helpers import assert_user_error
from typer.testing import CliRunner

from atomine.cli.main import app

pytest.importorskip("atomine.catalog.store", reason="the catalog store has not landed")
pytest.importorskip("atomine.catalog.ingest", reason="catalog ingest has not landed")

from atomine.io import save  # noqa: E402
from atomine.simulate import make  # noqa: E402


def _with_meta(da, **meta):
    da = da.copy()
    da.attrs["metadata"] = {**(da.attrs.get("metadata") or {}), **meta}
    return da


def _rotated(da):
    """The same image turned by 90 degrees (exact on the pixel grid), same calibration."""
    rot = da.copy(data=np.ascontiguousarray(np.rot90(da.values)))
    return rot.assign_coords(y=da.coords["x"].values, x=da.coords["y"].values) if da.shape[0] != da.shape[1] else rot


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A data folder (two perovskite images, one its rotated copy; MoS2; an EELS SI in a sub-folder;
    a corrupt file) and a catalog made of it by 'atomine catalog add'."""
    root = tmp_path_factory.mktemp("lab")
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    perov = _with_meta(make("haadf-perovskite", seed=0).data, beam_energy_kv=300.0, instrument="Titan Themis",
                       sample="La-doped SrTiO3 wedge")
    save(perov, data / "perovskite.zarr")
    save(_rotated(perov), data / "perovskite_rot.zarr")
    save(_with_meta(make("haadf-mos2", seed=0).data, beam_energy_kv=80.0, sample="MoS2 monolayer"),
         data / "mos2.zarr")
    save(_with_meta(make("eels-si", seed=0).data, beam_energy_kv=200.0), data / "sub" / "eels.zarr")
    (data / "broken.dm3").write_bytes(b"\x00\x01 this is not a DM3 file " * 20)
    db = root / "catalog.sqlite"
    result = CliRunner().invoke(app, ["catalog", "add", str(data), "--catalog", str(db), "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return data, db, json.loads(result.stdout)


def _json(cli, *args):
    result = cli(*args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def _names(hits):
    return sorted(os.path.basename(os.path.normpath(h["path"])) for h in hits)


def test_add_reports_every_signal_and_the_corrupt_file_with_its_reason(lab):
    _, db, report = lab
    assert report["added"] == 4 and report["unchanged"] == 0 and report["moved"] == 0
    assert [os.path.basename(f["path"]) for f in report["failed"]] == ["broken.dm3"]
    assert report["failed"][0]["reason"].strip()


def test_search_by_signal_beam_energy_and_free_text(cli, lab):
    _, db, _ = lab
    assert _names(_json(cli, "catalog", "search", "signal:HAADF", "--catalog", db)) == [
        "mos2.zarr", "perovskite.zarr", "perovskite_rot.zarr"]
    assert _names(_json(cli, "catalog", "search", "beam_energy:250..350", "--catalog", db)) == [
        "perovskite.zarr", "perovskite_rot.zarr"]
    assert _names(_json(cli, "catalog", "search", "beam_energy<100000V", "--catalog", db)) == ["mos2.zarr"]
    assert _names(_json(cli, "catalog", "search", "kind:spectrum_image", "--catalog", db)) == ["eels.zarr"]
    assert _names(_json(cli, "catalog", "search", "monolayer", "--catalog", db)) == ["mos2.zarr"]
    assert _names(_json(cli, "catalog", "search", 'instrument:titan "SrTiO3 wedge"', "--catalog", db)) == [
        "perovskite.zarr", "perovskite_rot.zarr"]
    assert _json(cli, "catalog", "search", "signal:HAADF unobtainium", "--catalog", db) == []
    table = cli("catalog", "search", "signal:HAADF", "--catalog", db)
    assert table.exit_code == 0 and "mos2.zarr" in table.stdout


def test_search_says_when_ranking_was_limited_to_the_newest_matches(cli, lab, monkeypatch):
    """A word matching more datasets than the ranking window: the CLI says so, --json carries ranked_over."""
    from atomine.catalog import _sqlite_fts

    _, db, _ = lab
    full = _json(cli, "catalog", "search", "SrTiO3", "--catalog", db)
    assert len(full) >= 2 and all("ranked_over" not in h for h in full)
    monkeypatch.setattr(_sqlite_fts, "RANK_WINDOW", 1)
    page = _json(cli, "catalog", "search", "SrTiO3", "-n", "1", "--catalog", db)
    assert [h["ranked_over"] for h in page] == [1]
    assert page[0]["id"] == max(h["id"] for h in full)   # the newest match: the window holds only it
    table = cli("catalog", "search", "SrTiO3", "-n", "1", "--catalog", db)
    assert table.exit_code == 0 and "ranked among the newest 1 of the matches" in table.stdout


def test_similar_returns_the_rotated_copy_first(cli, lab):
    data, db, _ = lab
    hits = _json(cli, "catalog", "search", "signal:HAADF", "--catalog", db)
    ids = {os.path.basename(os.path.normpath(h["path"])): h["id"] for h in hits}
    near = [h for h in _json(cli, "catalog", "similar", str(ids["perovskite.zarr"]), "-k", "3", "--catalog", db)
            if h["id"] != ids["perovskite.zarr"]]
    assert near[0]["id"] == ids["perovskite_rot.zarr"]
    # from a file: its descriptor is computed, nothing is added
    before = _json(cli, "catalog", "stats", "--catalog", db)
    by_file = _json(cli, "catalog", "similar", data / "perovskite_rot.zarr", "-k", "2", "--catalog", db)
    assert {h["id"] for h in by_file} == {ids["perovskite.zarr"], ids["perovskite_rot.zarr"]}
    assert _json(cli, "catalog", "stats", "--catalog", db) == before


def test_show_json_parses_and_carries_the_fields(cli, lab):
    _, db, _ = lab
    hit = _json(cli, "catalog", "search", "monolayer", "--catalog", db)[0]
    record = _json(cli, "catalog", "show", str(hit["id"]), "--catalog", db)
    assert record["id"] == hit["id"] and record["signal"] == "HAADF" and record["beam_energy_kv"] == 80.0
    assert record["path"] == hit["path"]
    shown = cli("catalog", "show", str(hit["id"]), "--catalog", db)
    assert shown.exit_code == 0 and "HAADF" in shown.stdout


def test_rm_removes_the_dataset_but_not_the_file(cli, lab, tmp_path):
    data, db, _ = lab
    copy = tmp_path / "copy.sqlite"
    shutil.copy(db, copy)
    hit = _json(cli, "catalog", "search", "kind:spectrum_image", "--catalog", copy)[0]
    result = cli("catalog", "rm", str(hit["id"]), "--catalog", copy)
    assert result.exit_code == 0, result.stderr
    assert _json(cli, "catalog", "search", "kind:spectrum_image", "--catalog", copy) == []
    assert_user_error(cli("catalog", "show", str(hit["id"]), "--catalog", copy), str(hit["id"]))
    assert (data / "sub" / "eels.zarr").exists()


def test_a_second_add_reports_all_unchanged(cli, lab, tmp_path):
    data, db, _ = lab
    copy = tmp_path / "copy.sqlite"
    shutil.copy(db, copy)
    report = _json(cli, "catalog", "add", data, "--catalog", copy)
    assert (report["added"], report["unchanged"], report["moved"], report["updated"]) == (0, 4, 0, 0)
    text = cli("catalog", "add", data, "--catalog", copy)
    assert text.exit_code == 0 and "0 added, 4 unchanged" in text.stdout


def test_stats_and_the_default_catalog_from_the_environment(cli, lab, tmp_path, monkeypatch):
    _, db, _ = lab
    stats = _json(cli, "catalog", "stats", "--catalog", db)
    assert str(db) in stats["catalog"]
    monkeypatch.setenv("ATOMINE_CATALOG", str(tmp_path / "env.sqlite"))
    assert "env.sqlite" in _json(cli, "catalog", "stats")["catalog"]


@pytest.mark.parametrize("args, fragment", [
    (["search", "colour:red"], "unknown search field 'colour'"),
    (["search", "lattice_a:4..3A"], "empty range"),
    (["search", "signal:HAADF", "--limit", "0"], "--limit"),
    (["similar", "no_such_file.zarr"], "neither a dataset id nor an existing file"),
    (["similar", "1", "-k", "0"], "-k"),
    (["add", "no_such_folder"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(cli, lab, args, fragment):
    _, db, _ = lab
    assert_user_error(cli("catalog", *args, "--catalog", db), fragment)


def test_unknown_id_is_one_line(cli, lab):
    _, db, _ = lab
    assert_user_error(cli("catalog", "show", "999999", "--catalog", db), "999999")
    assert_user_error(cli("catalog", "rm", "999999", "--catalog", db), "999999")


def test_metadata_only_add_then_a_full_add_completes_the_records(cli, lab, tmp_path):
    data, _, _ = lab
    db = tmp_path / "meta.sqlite"
    report = _json(cli, "catalog", "add", data, "--metadata-only", "--catalog", db)
    assert report["added"] == 4 and [os.path.basename(f["path"]) for f in report["failed"]] == ["broken.dm3"]
    hits = _json(cli, "catalog", "search", "signal:HAADF", "--catalog", db)
    assert _names(hits) == ["mos2.zarr", "perovskite.zarr", "perovskite_rot.zarr"]
    shown = _json(cli, "catalog", "show", str(hits[0]["id"]), "--catalog", db)
    assert shown["content_level"] == "metadata" and shown["descriptors"] == {} and not shown["has_thumbnail"]
    again = _json(cli, "catalog", "add", data, "--metadata-only", "--catalog", db)
    assert (again["added"], again["unchanged"], again["updated"]) == (0, 4, 0)
    full = _json(cli, "catalog", "add", data, "--catalog", db)
    assert (full["added"], full["unchanged"], full["updated"]) == (0, 0, 4)
    shown = _json(cli, "catalog", "show", str(hits[0]["id"]), "--catalog", db)
    assert shown["content_level"] == "content" and "lattice_a_nm" in shown["descriptors"] and shown["has_thumbnail"]
