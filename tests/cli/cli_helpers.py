"""Assertions shared by the CLI tests (a uniquely named module: sibling test folders each have a conftest)."""

import importlib

import pytest


def assert_user_error(result, *fragments):
    """Exit code 2, exactly one ``error:`` line on stderr naming the problem, and no traceback.

    Other stderr lines may only be ``warning:`` lines (e.g. an uncalibrated input said so while loading).
    """
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert all(ln.startswith(("error: ", "warning: ")) for ln in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for f in fragments:
        assert f in errors[0], (f, errors[0])


def require(module: str, what: str):
    """Skip (with the reason) while a module another engineer owns has not landed yet."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"{what} not available yet ({module}: {exc})")
