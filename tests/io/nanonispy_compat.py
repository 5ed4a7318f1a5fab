"""nanonispy (an independent Nanonis reader) as a pytest fixture, working on current numpy.

nanonispy 1.1 still calls ``np.float`` and ``np.int``, which numpy 1.24 removed. The
fixture patches, in memory and for the test only, the ``np`` name inside
``nanonispy.read`` with a view of numpy that has those two aliases back; numpy itself and
nanonispy's files are untouched.
"""

import numpy as np
import pytest


class _NumpyWithOldAliases:
    float = float
    int = int

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.fixture
def nanonispy_read(monkeypatch):
    """The ``nanonispy.read`` module, made to run on current numpy; skips when nanonispy is absent."""
    read = pytest.importorskip("nanonispy.read", reason="nanonispy (test extra) is not installed")
    if not hasattr(np, "float"):
        monkeypatch.setattr(read, "np", _NumpyWithOldAliases())
    return read
