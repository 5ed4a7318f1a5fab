"""Helpers for driving the ``atomine`` command in-process (typer's CliRunner) and checking its error contract."""

import os

import pytest
from typer.testing import CliRunner

from atomine.cli.main import app


@pytest.fixture
def cli(monkeypatch):
    """Run ``atomine ARGS...`` in-process; returns the click Result (exit_code, stdout, stderr)."""
    # A wide virtual terminal keeps rich from wrapping the lines the tests read.
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERMINAL_WIDTH", "200")
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, [os.fspath(a) for a in args])

    return run


@pytest.fixture
def simulators():
    """The built-in simulator presets, or a skip saying they are not importable yet."""
    try:
        from atomine.simulate import presets

        return presets()
    except ImportError as exc:
        pytest.skip(f"built-in simulators not available yet: {exc}")
