"""Write a simulated dataset and its ground truth side by side."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..data import Simulation
from ..errors import InputError, OutputExistsError
from .bundle import signals_dataset

STORE_SUFFIXES = (".zarr", ".nc")


@dataclass
class WrittenSimulation:
    """Where a simulation went: the data file, the truth folder, and signals a one-signal format could not hold."""

    data: Path
    truth: Path
    left_out: list[str] = field(default_factory=list)


def truth_folder(data_path: str | os.PathLike) -> Path:
    """The ground-truth folder that belongs beside ``data_path``: ``<stem>.truth``."""
    p = Path(data_path)
    return p.with_name(p.stem + ".truth")


def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Refuse outputs that exist (unless ``overwrite``) or whose folder is missing, before any work is done."""
    for p in paths:
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        if not p.parent.is_dir():
            raise OutputExistsError(f"folder {p.parent} does not exist; create it first")


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


def write_simulation(sim: Simulation, path: str | os.PathLike, *, truth_dir: str | os.PathLike | None = None,
                     overwrite: bool = False) -> WrittenSimulation:
    """Write ``sim`` in the format ``path``'s extension names, and its ground truth beside it.

    A ``.zarr`` or ``.nc`` store holds the main signal and the simultaneous ones as
    variables of one Dataset; other formats hold only the main signal. The truth goes
    to ``truth_dir`` (default ``<stem>.truth`` next to ``path``). Both are checked
    before anything is written; each is written atomically, and if the truth cannot
    be written the data file is removed again, so no half result is left.
    """
    from .. import io

    if not isinstance(sim, Simulation):
        raise InputError(f"write_simulation needs an atomine Simulation, got {type(sim).__name__}")
    path = Path(path)
    truth = Path(truth_dir) if truth_dir is not None else truth_folder(path)
    check_outputs([path, truth], overwrite)
    left_out: list[str] = []
    if path.suffix.lower() in STORE_SUFFIXES:
        signals = sim.signals()
        io.save(signals[0] if len(signals) == 1 else signals_dataset(signals), path, overwrite=overwrite)
    else:
        io.export(sim.data, path, overwrite=overwrite)
        left_out = [str(da.name) for da in sim.extra.values()]
    try:
        io.save_truth(sim.truth, truth, overwrite=overwrite)
    except BaseException:
        _remove(path)
        raise
    return WrittenSimulation(path, truth, left_out)
