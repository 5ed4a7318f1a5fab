"""benchmarks/run.py: every module's run() lands in the results file under a reproducible header."""

import importlib.util
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("atomine_bench_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_file_has_header_and_every_section(runner, tmp_path):
    (tmp_path / "bench_a.py").write_text("def run():\n    return '| tool | s |\\n|---|---|\\n| atomine | 1.0 |'\n")
    (tmp_path / "bench_b.py").write_text("def run():\n    return 'second'\n")
    (tmp_path / "helper.py").write_text("raise RuntimeError('not a benchmark, never imported')\n")
    code = runner.run_all("bench_", "RESULTS.md", "atomine benchmarks", "make bench", folder=tmp_path)
    assert code == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# atomine benchmarks\n")
    assert "- command: `make bench`" in text
    assert f"- machine: {runner.usable_cores()} cores" in text and runner.cpu_model() in text
    assert "numpy " in text and "python " in text
    assert text.index("## bench_a") < text.index("## bench_b")
    assert "| atomine | 1.0 |" in text and "second" in text
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*"))


def test_a_failing_module_is_reported_and_fails_the_run(runner, tmp_path):
    (tmp_path / "validate_ok.py").write_text("def run():\n    return 'fine'\n")
    (tmp_path / "validate_bad.py").write_text("def run():\n    raise ValueError('criterion missed')\n")
    (tmp_path / "validate_norun.py").write_text("x = 1\n")
    code = runner.run_all("validate_", "VALIDATION.md", "atomine validation", "make validate", folder=tmp_path)
    assert code == 1
    text = (tmp_path / "VALIDATION.md").read_text()
    assert "- command: `make validate`" in text
    assert "fine" in text and "ValueError: criterion missed" in text and "has no run() -> str" in text
    assert text.count("**FAILED**") == 2


def test_only_named_modules_run(runner, tmp_path):
    for name in ("bench_x", "bench_y"):
        (tmp_path / f"{name}.py").write_text(f"def run():\n    return '{name} ran'\n")
    assert runner.run_all("bench_", "R.md", "t", "make bench", names=["y"], folder=tmp_path) == 0
    text = (tmp_path / "R.md").read_text()
    assert "bench_y ran" in text and "bench_x ran" not in text


def test_update_replaces_only_the_named_sections(runner, tmp_path):
    for name, body in (("bench_a", "first A"), ("bench_c", "first C")):
        (tmp_path / f"{name}.py").write_text(f"def run():\n    return '## inner table\\n{body}'\n")
    assert runner.run_all("bench_", "R.md", "t", "make bench", folder=tmp_path) == 0
    (tmp_path / "bench_a.py").write_text("def run():\n    return 'second A'\n")
    (tmp_path / "bench_c.py").write_text("def run():\n    return 'second C'\n")
    (tmp_path / "bench_b.py").write_text("def run():\n    return 'new B'\n")
    assert runner.run_all("bench_", "R.md", "t", "make bench", names=["c", "b"], folder=tmp_path, update=True) == 0
    text = (tmp_path / "R.md").read_text()
    # bench_a was not rerun: its old section (with its own inner heading) stays; c is replaced, b inserted in order
    assert "first A" in text and "## inner table" in text and "second A" not in text
    assert "second C" in text and "first C" not in text and "new B" in text
    assert text.index("## bench_a") < text.index("## bench_b") < text.index("## bench_c")
    assert text.count("## bench_c") == 1 and "- command: `make bench`" in text
    assert "- updated " in text and "bench_c" in text.split("- updated ")[1].splitlines()[0]


def test_update_needs_names_and_an_existing_file(runner, tmp_path):
    (tmp_path / "bench_a.py").write_text("def run():\n    return 'A'\n")
    assert runner.run_all("bench_", "R.md", "t", "make bench", names=["a"], folder=tmp_path, update=True) == 2
    assert not (tmp_path / "R.md").exists()
    assert runner.run_all("bench_", "R.md", "t", "make bench", folder=tmp_path, update=True) == 2
    assert runner.parse_args(["--update", "bench_a"]) == (["bench_a"], True)
