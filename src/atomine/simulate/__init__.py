"""Physics-based simulators with ground truth, deterministic under a seed.

Each simulator returns an :class:`atomine.data.Simulation` (data, ground truth,
simultaneous signals). ``PRESETS`` lists the named example datasets that
``atomine simulate KIND`` writes and the demo analyses: name -> (one-line
description, function ``make(seed: int) -> Simulation``).
"""

from __future__ import annotations

from typing import Callable

from ..data import GroundTruth, Simulation

Preset = tuple[str, Callable[[int], Simulation]]


def _collect() -> dict[str, Preset]:
    from . import cits, correlated_pair, eels, stem, stm

    presets: dict[str, Preset] = {}
    for module in (stem, stm, eels, cits, correlated_pair):
        presets.update(module.PRESETS)
    return presets


def presets() -> dict[str, Preset]:
    """Every named simulated dataset: name -> (description, make(seed))."""
    return _collect()


def make(kind: str, seed: int = 0) -> Simulation:
    """The named simulated dataset ``kind`` under ``seed``."""
    from ..errors import InputError

    table = _collect()
    if kind not in table:
        raise InputError(f"unknown simulation kind {kind!r}; choose one of {', '.join(sorted(table))}")
    return table[kind][1](seed)


__all__ = ["GroundTruth", "Simulation", "presets", "make"]
