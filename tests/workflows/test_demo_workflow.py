"""The demo workflow: every dataset reported with calibrated axes and ground truth, results match the data."""

import json
import re

import numpy as np
import pytest

from atomine.data import array_hash, file_hash
from atomine.errors import InputError, OutputExistsError
from atomine.report import demo_sections, render_html, write_demo_report
from atomine.workflows import run_demo


@pytest.fixture(scope="module")
def demo(local_presets):
    calls = []
    result = run_demo(seed=3, progress=lambda done, total, msg: calls.append((done, total, msg)),
                      presets=local_presets)
    return result, calls


def test_demo_runs_every_dataset_and_reports_progress(demo, local_presets):
    result, calls = demo
    assert [r.kind for r in result.datasets] == list(local_presets)
    total = len(local_presets) * (1 + len(result.analyses))
    assert [c[0] for c in calls] == list(range(1, total + 1))
    assert all(c[1] == total for c in calls)
    assert result.analyses == ["truth_analysis", "statistics_analysis", "segmentation_analysis", "atoms_analysis",
                                "unmix_analysis", "thermo_analysis", "correlation_analysis"]
    # the segmentation and atom analyses run on STEM presets only, not on these local test datasets
    assert all([o.name for o in r.outputs] == ["truth_analysis", "statistics_analysis"] for r in result.datasets)


def test_demo_is_deterministic_under_its_seed(demo, local_presets):
    result, _ = demo
    again = run_demo(seed=3, presets=local_presets)
    other = run_demo(seed=4, presets=local_presets)
    for a, b, c in zip(result.datasets, again.datasets, other.datasets):
        assert array_hash(a.simulation.data) == array_hash(b.simulation.data)
        assert array_hash(a.simulation.data) != array_hash(c.simulation.data)


def test_report_has_every_dataset_with_calibrated_axes_and_truth(demo):
    result, _ = demo
    page = render_html("atomine demo", demo_sections(result))
    for kind in ("lattice", "mixture", "phases"):
        assert f'id="{kind}"' in page and f'href="#{kind}"' in page
    alts = re.findall(r'alt="([^"]*)"', page)
    assert any("x (nm) / y (nm)" in a for a in alts)
    assert any("energy loss (eV)" in a for a in alts)
    assert any("sample bias (V)" in a for a in alts)
    assert any("ground truth &#x27;atoms&#x27; over HAADF" in a or "ground truth 'atoms' over HAADF" in a for a in alts)
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page))
    assert "<th>x (nm)</th>" in page  # the truth atom table carries its units
    assert "simulation parameters (seed 3)" in page
    assert "lattice_nm" in page and "beam_energy_kv" in page


def test_result_maps_are_the_data_and_the_truth_on_prefixed_grids(demo):
    result, _ = demo
    ds = result.result_dataset()
    lattice = result.datasets[0].simulation
    np.testing.assert_array_equal(ds["lattice_data"].values, lattice.data.values)
    assert ds["lattice_data"].dims == ("lattice_y", "lattice_x")
    assert ds["lattice_x"].attrs["units"] == "nm"
    np.testing.assert_allclose(ds["lattice_x"].values, lattice.data.x.values)
    np.testing.assert_array_equal(ds["lattice_truth_clean"].values, lattice.truth.maps["clean"].values)
    si = result.datasets[1].simulation.data
    np.testing.assert_allclose(ds["mixture_data"].values, si.values.sum(axis=2), rtol=1e-6)
    ab = ds["mixture_truth_abundance"]
    assert set(ab.dims) == {"mixture_component", "mixture_y", "mixture_x"}
    np.testing.assert_allclose(ab.sum("mixture_component").values, 1.0, rtol=1e-6)  # fractions add to one
    cits = result.datasets[2].simulation.data
    np.testing.assert_allclose(ds["phases_data"].values, cits.values.mean(axis=2))


def test_summary_statistics_and_truth_counts(demo):
    result, _ = demo
    summary = result.summary()
    lattice = result.datasets[0].simulation
    stats = summary["lattice"]["signals"]["HAADF"]
    assert stats["mean (counts)"] == pytest.approx(float(lattice.data.values.astype(np.float64).mean()))
    assert stats["x step (nm)"] == pytest.approx(0.02)
    assert stats["x span (nm)"] == pytest.approx(110 * 0.02)
    counts = summary["lattice"]["truth_counts"]["atoms"]
    atoms = lattice.truth.tables["atoms"]
    assert counts["rows"] == len(atoms)
    assert counts["0 / dopant"] + counts.get("1 / dopant", 0) == 1
    assert counts["0 / host"] == int(((atoms.sublattice == 0) & (atoms.cls == "host")).sum())
    assert json.loads(json.dumps(summary)) == summary  # JSON-serialisable as written


def test_demo_rejects_bad_parameters(local_presets):
    with pytest.raises(InputError, match="seed"):
        run_demo(seed=-1, presets=local_presets)
    with pytest.raises(InputError, match="seed"):
        run_demo(seed=1.5, presets=local_presets)
    with pytest.raises(InputError, match="no simulated datasets"):
        run_demo(presets={})
    with pytest.raises(InputError, match="unknown dataset"):
        run_demo(kinds=["lattice", "nope"], presets=local_presets)
    assert [r.kind for r in run_demo(kinds=["phases"], presets=local_presets).datasets] == ["phases"]
    with pytest.raises(InputError, match="not a Simulation"):
        run_demo(presets={"bad": ("returns an array", lambda seed: np.zeros(3))})


def test_demo_save_writes_every_promised_file(demo, tmp_path):
    from atomine.io import load_all, load_truth

    result, _ = demo
    out = result.save(tmp_path / "demo", report=write_demo_report)
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "result.zarr", "provenance.json", "summary.json", "data", "truth", "tables"} <= names
    for run in result.datasets:
        signals = {str(s.name): s for s in load_all(out / "data" / f"{run.kind}.zarr")}
        assert set(signals) == {str(s.name) for s in run.simulation.signals()}
        for want in run.simulation.signals():
            got = signals[str(want.name)]
            np.testing.assert_array_equal(np.asarray(got.values), want.values)
            for d in want.dims:
                np.testing.assert_allclose(got[d].values, want[d].values)
                assert got[d].attrs.get("units") == want[d].attrs.get("units")
        truth = load_truth(out / "truth" / run.kind)
        assert truth.parameters == run.simulation.truth.parameters
        for name, table in run.simulation.truth.tables.items():
            assert truth.tables[name].reset_index(drop=True).equals(table.reset_index(drop=True))
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["parameters"]["seed"] == 3
    for entry, run in zip(prov["inputs"], result.datasets):
        assert entry["signals"][str(run.simulation.data.name)]["content_hash"] == array_hash(run.simulation.data)
    assert prov["outputs"]["report.html"] == file_hash(out / "report.html")
    assert prov["outputs"]["data/lattice.zarr"] == file_hash(out / "data" / "lattice.zarr")
    assert (out / "tables" / "lattice_truth_atoms.parquet").is_file()


def test_demo_save_refuses_an_existing_folder(demo, tmp_path):
    result, _ = demo
    target = tmp_path / "demo"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="exists"):
        result.save(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    result.save(target, overwrite=True)
    assert (target / "result.zarr").exists() and not (target / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no temp folders left behind


@pytest.mark.slow
def test_full_builtin_demo_reports_every_dataset(tmp_path):
    try:
        from atomine.simulate import presets
        builtin = presets()
    except ImportError as exc:
        pytest.skip(f"built-in simulators not available yet: {exc}")
    result = run_demo(seed=0)
    out = result.save(tmp_path / "demo", report=write_demo_report)
    page = (out / "report.html").read_text()
    for kind in builtin:
        assert f'id="{kind}"' in page
        assert (out / "data" / f"{kind}.zarr").exists()
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page))
    ds_names = set(json.loads((out / "provenance.json").read_text())["parameters"]["kinds"])
    assert ds_names == set(builtin)


def test_report_drawn_in_worker_processes_equals_the_serial_one(demo):
    result, _ = demo
    calls = []
    serial = render_html("atomine demo", demo_sections(result, workers=1))
    parallel = render_html("atomine demo", demo_sections(result, workers=2,
                                                         progress=lambda d, t, m: calls.append((d, t))))
    # the header's "generated" minute may tick over between the two renders
    stamp = re.compile(r"<p>generated [^<]*</p>")
    assert stamp.sub("", parallel) == stamp.sub("", serial)  # same sections, same order, byte-identical figures
    assert calls == [(i + 1, len(result.datasets)) for i in range(len(result.datasets))]


def test_demo_output_is_catalogued_with_its_analysis_linked(demo, tmp_path):
    from atomine.catalog import Catalog
    from atomine.cli.demo import catalog_demo_output

    result, _ = demo
    out = result.save(tmp_path / "demo")
    done = catalog_demo_output(out)
    assert done["catalog"] == out / "catalog.sqlite" and done["failed"] == [] and done["analyses"] == 1
    want = {(f"{run.kind}.zarr", str(s.name), s.attrs.get("signal")) for run in result.datasets
            for s in run.simulation.signals()}
    assert done["datasets"] == len(want)
    with Catalog(done["catalog"]) as cat:
        hits = cat.search("", limit=100)
        records = [cat.get(h["id"]) for h in hits]
        assert {(r["path"].rsplit("/", 1)[-1], r["name"], r["signal"]) for r in records} == want
        assert all(r["content_level"] == "content" and r["has_thumbnail"] for r in records)
        # the demo folder is one analysis whose inputs are every catalogued dataset
        (analysis,) = {a["id"] for r in records for a in r["analyses"]}
        linked = cat.analysis(analysis)
        assert linked["path"] == str(out.absolute()) and linked["datasets"] == sorted(h["id"] for h in hits)
        haadf = {h["id"] for h in cat.search("signal:HAADF")}
        assert haadf == {r["id"] for r in records if r["signal"] == "HAADF"} and haadf
    # running it again (e.g. demo --overwrite) starts a fresh catalog
    assert catalog_demo_output(out)["datasets"] == len(want)
