"""Export of the most probable local configurations as structures for theory (extended XYZ).

Each frame is one configuration class: the descriptor's sites at their ideal Cartesian
positions, dopant sites as ``species[0]`` and host sites as ``species[1]``, in a vacuum box,
with its probability in the frame's info line. ASE reads the file with
``ase.io.read(path, index=":")``; no ASE is needed to write it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .configurations import Descriptor
from .lattice import cartesian

VACUUM = 3.0  # margin around the configuration, in lattice constants
NM_TO_ANGSTROM = 10.0


def write_configurations(path, descriptor: Descriptor, probabilities, *, a_nm: float,
                         species=("Ca", "La"), top: int = 10, lattice_name: str | None = None) -> list[dict]:
    """Write the ``top`` most probable configuration classes to an extended-XYZ file.

    Parameters
    ----------
    path : str or Path
        Output file (``.xyz`` / ``.extxyz``); written to a temporary name and renamed.
    descriptor : Descriptor
        The descriptor whose classes ``probabilities`` refers to.
    probabilities : array_like, shape (n_classes,)
        Class probabilities or counts (normalised to sum 1 here). Classes with zero
        probability are not written.
    a_nm : float
        Lattice constant (nm); positions are written in Angstrom.
    species : (str, str)
        Chemical symbols of (dopant, host).
    top : int
        Number of classes to write, most probable first (ties: lower class index first).
    lattice_name : str, optional
        Stored as the frame info key ``lattice`` (e.g. ``"LSMO A site"``).

    Returns
    -------
    list of dict
        ``class_index``, ``label``, ``probability``, ``multiplicity`` of each frame, in
        written order. Frame info keys: these four, plus ``descriptor`` and ``lattice_kind``
        (and ``lattice``). The cell is a vacuum box with ``3 a`` margins, ``pbc`` False.
    """
    if not isinstance(descriptor, Descriptor):
        raise InputError("descriptor must be a Descriptor from atomine.thermo.configurations.descriptor()")
    p = _probabilities(probabilities, descriptor.n_classes)
    a = _positive(a_nm, "a_nm")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InputError(f"top must be a positive integer, got {top!r}")
    symbols = _species(species)
    if lattice_name is not None and (not isinstance(lattice_name, str) or '"' in lattice_name
                                     or "\n" in lattice_name):
        raise InputError("lattice_name must be a one-line string without double quotes")

    order = np.argsort(-p, kind="stable")
    order = order[p[order] > 0][: int(top)]
    reps, mult = descriptor.representatives(), descriptor.multiplicity()
    xyz = np.zeros((len(descriptor.offsets), 3))
    xyz[:, :2] = cartesian(descriptor.kind, descriptor.offsets) * a * NM_TO_ANGSTROM
    margin = VACUUM * a * NM_TO_ANGSTROM
    xyz += margin - xyz.min(axis=0)
    cell = xyz.max(axis=0) + margin

    frames, written = [], []
    for k in order:
        info = {"class_index": int(k), "label": descriptor.labels[k], "probability": float(p[k]),
                "multiplicity": int(mult[k])}
        written.append(info)
        extra = {"descriptor": descriptor.name, "lattice_kind": descriptor.kind}
        if lattice_name is not None:
            extra["lattice"] = lattice_name
        names = np.where(reps[k] > 0, symbols[0], symbols[1])
        frames.append(_frame(names, xyz, cell, info | extra))
    _write_atomically(Path(path), "".join(frames))
    return written


def _frame(names, xyz, cell, info: dict) -> str:
    lattice = " ".join(f"{v:.6f}" for v in np.diag(cell).ravel())
    keys = " ".join(f"{k}={_value(v)}" for k, v in info.items())
    head = f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="F F F" {keys}'
    body = "".join(f"{s:<3s} {x:16.8f} {y:16.8f} {z:16.8f}\n" for s, (x, y, z) in zip(names, xyz))
    return f"{len(names)}\n{head}\n{body}"


def _value(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form, so the probability reads back exactly
    return str(v)


def _probabilities(probabilities, n_classes: int) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (n_classes,):
        raise InputError(f"probabilities must have one entry per class ({n_classes}), got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise InputError("probabilities must be finite and >= 0")
    if p.sum() <= 0:
        raise InputError("probabilities sum to zero; there is no configuration to write")
    return p / p.sum()


def _positive(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{what} must be a positive number (nm), got {value!r}")
    return v


def _species(species) -> tuple[str, str]:
    if (not isinstance(species, (tuple, list)) or len(species) != 2
            or not all(isinstance(s, str) and s.isalpha() and 1 <= len(s) <= 3 for s in species)):
        raise InputError(f"species must be two chemical symbols (dopant, host), e.g. ('Ca', 'La'); got {species!r}")
    return species[0], species[1]


def _write_atomically(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        raise InputError(f"the folder of {path.name!r} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["write_configurations"]
