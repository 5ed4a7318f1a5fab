"""The projected structure a STEM image is simulated from: one record per atom column.

A :class:`Structure` is an immutable table of projected atom columns (position,
composition, lattice labels, class) plus the definitions that made it (unit
cells, the grain partition, dislocations, polar fields), so the simulator can
evaluate truth maps (grain label, displacement, polarisation) at every pixel.
Builders in :mod:`.crystal` and :mod:`.defects` return new structures; none
modifies its input.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm "
    "Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U"
).split()
_Z = {s: i + 1 for i, s in enumerate(_SYMBOLS)}


def atomic_number(symbol: str) -> int:
    """Atomic number Z of an element symbol (H..U); InputError for anything else."""
    if isinstance(symbol, str) and symbol.strip().capitalize() in _Z:
        return _Z[symbol.strip().capitalize()]
    raise InputError(f"unknown element symbol {symbol!r}; use a chemical symbol such as 'Sr', 'Ti', 'O'")


def element(symbol: str) -> str:
    """Canonical spelling of an element symbol (checked)."""
    atomic_number(symbol)
    return symbol.strip().capitalize()


# Per-column arrays, in table order; every one has length n_columns.
_ARRAYS = ("x_nm", "y_nm", "x0_nm", "y0_nm", "counts", "site", "phase", "grain", "site_i", "site_j",
           "cls", "ux_nm", "uy_nm", "dx_pm", "dy_pm")


@dataclass(frozen=True, eq=False)
class Structure:
    """Projected atom columns and the definitions that placed them.

    Attributes
    ----------
    x_nm, y_nm : ndarray of float64
        True column positions in nm (ideal lattice + elastic + polar displacements);
        x to the right, y downward, (0, 0) at the centre of image pixel (0, 0).
    x0_nm, y0_nm : ndarray
        Ideal lattice positions before any displacement, nm.
    counts : ndarray of int, shape (n, n_elements)
        Number of atoms of each element in each column (the whole thickness).
    elements : tuple of str
        Element symbols of the ``counts`` columns.
    site : ndarray of str
        Site name in the unit cell ("A", "B", "X1", "M", ...).
    phase, grain : ndarray of int
        Index into ``cells`` and region label of the partition.
    site_i, site_j : ndarray of int
        Lattice indices along a2 and a1, shared by all sites of one grain's lattice.
    cls : ndarray of str
        "host", "dopant" or "vacancy" (vacant columns hold no atoms).
    ux_nm, uy_nm : ndarray
        Elastic (dislocation) displacement, nm.
    dx_pm, dy_pm : ndarray
        Polar displacement, pm.
    fov_nm : (float, float)
        Field of view (height, width) the structure was built for, nm.
    cells : tuple
        The unit cells, indexed by ``phase``.
    grain_phase, grain_rotation_deg, grain_origin_nm : tuple
        Per grain: phase index, rotation (degrees counter-clockwise as displayed), lattice origin (x, y) nm.
    partition : object
        The :mod:`.regions` partition that assigns points to grains.
    dislocations, polar : tuple
        :class:`.defects.EdgeDislocation` and :class:`.defects.PolarDisplacement` records applied.
    history : tuple of dict
        JSON-safe description of every building step.
    """

    x_nm: np.ndarray
    y_nm: np.ndarray
    x0_nm: np.ndarray
    y0_nm: np.ndarray
    counts: np.ndarray
    elements: tuple[str, ...]
    site: np.ndarray
    phase: np.ndarray
    grain: np.ndarray
    site_i: np.ndarray
    site_j: np.ndarray
    cls: np.ndarray
    ux_nm: np.ndarray
    uy_nm: np.ndarray
    dx_pm: np.ndarray
    dy_pm: np.ndarray
    fov_nm: tuple[float, float]
    cells: tuple = ()
    grain_phase: tuple = ()
    grain_rotation_deg: tuple = ()
    grain_origin_nm: tuple = ()
    partition: Any = None
    dislocations: tuple = ()
    polar: tuple = ()
    history: tuple = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.x_nm.shape[0])

    def __repr__(self) -> str:
        cells = ", ".join(c.name for c in self.cells)
        return (f"Structure({len(self)} columns, cells=[{cells}], grains={len(self.grain_phase)}, "
                f"dislocations={len(self.dislocations)}, fov_nm={self.fov_nm})")

    # --- derived per-column quantities -------------------------------------------------
    @property
    def atomic_numbers(self) -> np.ndarray:
        """Z of each entry of ``elements``."""
        return np.array([atomic_number(e) for e in self.elements], dtype=np.float64)

    def weights(self, exponent: float) -> np.ndarray:
        """Sum over the atoms of each column of Z**exponent (float64, 0 for vacancies)."""
        return self.counts.astype(np.float64) @ self.atomic_numbers**exponent

    @property
    def z_sum(self) -> np.ndarray:
        """Sum of Z over the atoms of each column."""
        return self.weights(1.0)

    @property
    def n_atoms(self) -> np.ndarray:
        """Number of atoms in each column."""
        return self.counts.sum(axis=1)

    def species(self) -> np.ndarray:
        """Composition label of each column, heaviest element first, e.g. ``"Ti10O10"`` ("" for a vacancy)."""
        labels = np.full(len(self), "", dtype=object)
        order = np.argsort(-self.atomic_numbers, kind="stable")
        for k in order:  # a loop over elements, not columns
            el = self.elements[k]
            c = self.counts[:, k]
            labels = labels + np.where(c > 0, np.char.add(el, c.astype(str)).astype(object), "")
        return labels

    def cell_of(self, phase: int):
        return self.cells[int(phase)]

    # --- fields for truth maps ----------------------------------------------------------
    def grain_at(self, x_nm, y_nm) -> np.ndarray:
        """Grain label at positions (x, y) in nm."""
        return self.partition.label(x_nm, y_nm)

    def phase_at(self, x_nm, y_nm) -> np.ndarray:
        """Phase index at positions (x, y) in nm."""
        return np.asarray(self.grain_phase, dtype=np.int32)[self.grain_at(x_nm, y_nm)]

    def displacement_at(self, x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
        """Summed elastic displacement (ux, uy) in nm of all dislocations at (x, y) in nm."""
        x, y = np.broadcast_arrays(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        ux, uy = np.zeros(x.shape), np.zeros(x.shape)
        for d in self.dislocations:
            dx, dy = d.displacement(x, y)
            ux += dx
            uy += dy
        return ux, uy

    def polarisation_at(self, x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
        """Polar displacement (dx, dy) in pm of the displaced sublattice(s) at (x, y) in nm."""
        x, y = np.broadcast_arrays(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        px, py = np.zeros(x.shape), np.zeros(x.shape)
        for p in self.polar:
            dx, dy = p.at(x, y)
            px += dx
            py += dy
        return px, py

    # --- immutable updates --------------------------------------------------------------
    def replace(self, **changes) -> Structure:
        """A new structure with some fields replaced (arrays are copied)."""
        out = dataclasses.replace(self, **changes)
        for name in _ARRAYS:
            object.__setattr__(out, name, np.array(getattr(out, name), copy=True))
        return out

    def subset(self, keep) -> Structure:
        """A new structure with only the columns where ``keep`` (bool mask or indices) selects."""
        keep = np.asarray(keep)
        if keep.dtype == bool and keep.shape != (len(self),):
            raise InputError(f"subset mask has shape {keep.shape}; expected ({len(self)},)")
        return self.replace(**{name: getattr(self, name)[keep] for name in _ARRAYS})

    def with_step(self, step: dict) -> Structure:
        return self.replace(history=tuple(self.history) + (step,))

    def table(self) -> pd.DataFrame:
        """Structural part of the atoms table (positions in nm, lattice labels, composition)."""
        return pd.DataFrame({
            "x": self.x_nm, "y": self.y_nm, "x0": self.x0_nm, "y0": self.y0_nm,
            "site": self.site.astype(str), "species": self.species().astype(str),
            "Z_sum": self.z_sum, "n_atoms": self.n_atoms.astype(np.int64),
            "site_i": self.site_i.astype(np.int64), "site_j": self.site_j.astype(np.int64),
            "cls": self.cls.astype(str), "grain": self.grain.astype(np.int64), "phase": self.phase.astype(np.int64),
            "ux": self.ux_nm, "uy": self.uy_nm, "dx_pm": self.dx_pm, "dy_pm": self.dy_pm,
        })

    def describe(self) -> dict[str, Any]:
        """JSON-safe description (cells, grains, partition, defects, build history)."""
        return {
            "fov_nm": list(self.fov_nm),
            "n_columns": len(self),
            "elements": list(self.elements),
            "cells": [c.describe() for c in self.cells],
            "grains": [
                {"phase": int(p), "rotation_deg": float(r), "origin_nm": [float(v) for v in o]}
                for p, r, o in zip(self.grain_phase, self.grain_rotation_deg, self.grain_origin_nm)
            ],
            "partition": self.partition.describe(),
            "dislocations": [d.describe() for d in self.dislocations],
            "polar": [p.describe() for p in self.polar],
            "history": list(self.history),
        }


def merge_elements(structure: Structure, new: tuple[str, ...]) -> Structure:
    """The structure with ``new`` elements appended to ``elements`` (zero counts)."""
    extra = tuple(e for e in new if e not in structure.elements)
    if not extra:
        return structure
    counts = np.concatenate([structure.counts, np.zeros((len(structure), len(extra)), dtype=structure.counts.dtype)], axis=1)
    return structure.replace(elements=structure.elements + extra, counts=counts)


__all__ = ["Structure", "atomic_number", "element", "merge_elements"]
