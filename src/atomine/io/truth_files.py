"""Ground truth on disk: one folder per :class:`atomine.data.GroundTruth`.

Layout::

    <folder>/parameters.json   {"format", "kind", "parameters", "tables": [names in order]}
    <folder>/<table>.parquet   one per table (index kept)
    <folder>/maps.zarr         the maps Dataset (atomine store), only when there are maps

Parameters go through :func:`atomine.data.jsonable` (numpy scalars and arrays become plain
numbers and lists; tuples become lists, non-finite floats become strings). The folder is
written atomically: an interrupted or failed write leaves nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import xarray as xr

from ..data import GroundTruth, jsonable
from ..errors import CorruptFileError, InputError
from ._atomic import atomic_path
from .store import open_store, save_store

PARAMETERS_FILE = "parameters.json"
MAPS_STORE = "maps.zarr"
TRUTH_FORMAT = "atomine-truth/1"


def _check_table_name(name) -> str:
    """Table names become file names: plain, non-empty, no path separators or leading dot."""
    text = str(name)
    if not text or text.startswith(".") or any(c in text for c in '/\\:*?"<>|') or text != text.strip():
        raise InputError(f"truth table name {text!r} cannot be a file name; use letters, digits, '_' or '-'")
    return text


def save_truth(truth: GroundTruth, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``truth`` to ``folder`` (parameters.json, one Parquet file per table, maps.zarr).

    Parameters
    ----------
    truth : GroundTruth
    folder : str or os.PathLike
        The folder to create; its parent must exist.
    overwrite : bool
        Replace an existing ``folder``.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    InputError
        Not a GroundTruth, a table name that cannot be a file name, or a table or parameter
        that cannot be stored (e.g. a column mixing numbers and text).
    OutputExistsError
        ``folder`` exists and ``overwrite`` is false, or its parent does not exist.
    """
    if not isinstance(truth, GroundTruth):
        raise InputError(f"save_truth needs an atomine GroundTruth, got {type(truth).__name__}")
    folder = Path(folder)
    names = [_check_table_name(n) for n in truth.tables]
    if len(set(n.lower() for n in names)) != len(names):
        raise InputError(f"truth table names {names} clash as file names (case-insensitive)")
    for name, table in truth.tables.items():
        if not isinstance(table, pd.DataFrame):
            raise InputError(f"truth table {name!r} is a {type(table).__name__}, not a pandas DataFrame")
    if not isinstance(truth.maps, xr.Dataset):
        raise InputError(f"truth maps must be an xarray Dataset, got {type(truth.maps).__name__}")
    try:
        record = json.dumps({"format": TRUTH_FORMAT, "kind": str(truth.kind),
                             "parameters": jsonable(truth.parameters), "tables": names}, indent=2)
    except (TypeError, ValueError) as exc:
        raise InputError(f"truth parameters cannot be written as JSON ({exc})") from None
    with atomic_path(folder, overwrite=overwrite, directory=True) as tmp:
        tmp.mkdir()
        (tmp / PARAMETERS_FILE).write_text(record + "\n", encoding="utf-8")
        for name, table in zip(names, truth.tables.values()):
            _write_table(table, tmp / f"{name}.parquet", name)
        if truth.maps.data_vars:
            save_store(truth.maps, tmp / MAPS_STORE)
    return folder


def _write_table(table: pd.DataFrame, path: Path, name: str) -> None:
    try:
        table.to_parquet(path)
    except ImportError as exc:
        raise InputError(f"writing truth table {name!r} needs pyarrow ({exc})") from None
    except Exception as exc:  # pyarrow's type errors: a column no Parquet type can hold
        raise InputError(f"truth table {name!r} cannot be written as Parquet ({type(exc).__name__}: {exc}); "
                         "give each column a single type") from None


def load_truth(folder: str | os.PathLike, *, lazy: bool = False) -> GroundTruth:
    """Read a ground-truth folder written by :func:`save_truth`.

    Parameters
    ----------
    folder : str or os.PathLike
    lazy : bool
        Keep the maps dask-backed instead of reading them into memory.

    Returns
    -------
    GroundTruth
        Tables in their saved order; maps an empty Dataset when none were saved.

    Raises
    ------
    InputError
        ``folder`` does not exist or is a file.
    CorruptFileError
        ``parameters.json`` or a table is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such ground-truth folder")
    if not folder.is_dir():
        raise InputError(f"{folder} is a file; a ground truth is a folder with {PARAMETERS_FILE}")
    record_path = folder / PARAMETERS_FILE
    if not record_path.is_file():
        raise CorruptFileError(f"{folder}: not a ground-truth folder ({PARAMETERS_FILE} is missing)")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        kind = str(record["kind"])
        parameters = dict(record.get("parameters", {}))
        names = [str(n) for n in record.get("tables", [])]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{record_path}: not a valid ground-truth record ({type(exc).__name__}: {exc})") from None
    tables = {name: _read_table(folder / f"{name}.parquet", name) for name in names}
    maps = open_store(folder / MAPS_STORE, lazy) if (folder / MAPS_STORE).exists() else xr.Dataset()
    return GroundTruth(kind, parameters, tables, maps)


def _read_table(path: Path, name: str) -> pd.DataFrame:
    if not path.is_file():
        raise CorruptFileError(f"{path.parent}: truth table {name!r} is listed but {path.name} is missing")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types on bad bytes
        raise CorruptFileError(f"{path}: unreadable Parquet table ({type(exc).__name__}: {exc})") from None


__all__ = ["save_truth", "load_truth", "PARAMETERS_FILE", "MAPS_STORE"]
