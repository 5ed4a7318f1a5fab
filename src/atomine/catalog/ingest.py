"""Ingest files and atomine result folders into a :class:`~atomine.catalog.store.Catalog`.

A dataset is one signal of one file, identified by its content hash: the SHA-256 of the
file's bytes (streamed in 1 MiB blocks; for folder stores, of every file in them) plus
``":<signal index>"``. The store decides whether a record is new, unchanged or moved.
Unreadable files are recorded with a one-line reason and ingest goes on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import AtomineError, InputError

Progress = Callable[[int, int, str], None]
_FOLDER_FORMATS = (".zarr", ".zspy")  # data stores that are folders: a file each, never walked into


@dataclass
class IngestReport:
    """What one :func:`ingest` call did. ``failed``: (path, reason); ``seconds``: wall time."""

    added: int = 0
    unchanged: int = 0
    moved: int = 0
    updated: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    analyses: int = 0
    seconds: float = 0.0


def _readable_suffixes() -> set[str]:
    from ..io._registry import READERS

    return {s.lower() for s in READERS}


def _is_result_folder(p: Path) -> bool:
    return p.is_dir() and (p / "provenance.json").is_file()


def scan(paths: str | os.PathLike | Iterable[str | os.PathLike], *, recursive: bool = True) -> list[Path]:
    """Files (and folder stores) atomine.io reads, and result folders, under ``paths``, sorted, absolute.

    A result folder (one holding ``provenance.json``) is listed itself and also walked into, so
    the data it contains (``result.zarr`` and any input copies) are catalogued too.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    suffixes = _readable_suffixes()
    found: set[Path] = set()
    for root in map(Path, paths):
        root = root.expanduser().absolute()
        if not root.exists():
            raise InputError(f"{root}: no such file or folder")
        if root.is_file() or root.suffix.lower() in _FOLDER_FORMATS:
            found.add(root)  # named explicitly: try it whatever its extension, a failure is recorded
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            if _is_result_folder(folder):
                found.add(folder)
            try:
                entries = list(os.scandir(folder))
            except OSError:  # unreadable folder: nothing to list
                continue
            for e in entries:
                p = Path(e.path)
                if p.suffix.lower() in _FOLDER_FORMATS or (e.is_file() and p.suffix.lower() in suffixes):
                    found.add(p)
                elif e.is_dir() and recursive and not e.name.startswith("."):
                    stack.append(p)
    return sorted(found)


def _hash(path: Path) -> str:
    from ..data import file_hash

    return file_hash(path)


def _modified(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime, tz=_dt.timezone.utc).isoformat()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def records_from_file(path: str | os.PathLike, *, descriptors: bool = True, phases: bool = False) -> list:
    """One :class:`~atomine.catalog.store.DatasetRecord` per signal of ``path``.

    Parameters
    ----------
    path : file or folder store
    descriptors : bool
        Compute content descriptors and the similarity vector (lattice, radial profile,
        edges, ...); False for metadata-only ingest.
    phases : bool
        Also count phases by sliding-FFT segmentation (``n_phases``; ~2 s per 512^2 image).

    Raises
    ------
    atomine.errors.AtomineError
        The file cannot be read (its message says why).
    """
    from ..data import array_hash
    from ..io import load_all
    from .descriptors import describe
    from .metadata import signal_fields
    from .records import DatasetRecord
    from .thumbnail import thumbnail

    path = Path(path).absolute()
    signals = load_all(path)
    digest, size, modified = _hash(path), _size(path), _modified(path)
    records = []
    for i, da in enumerate(signals):
        fields = signal_fields(da)
        # analyses record the array hash of their input (atomine stores add no file-hash load step),
        # so each dataset carries it for the store to link result folders to it
        fields["metadata"] = {**fields["metadata"], "array_hash": array_hash(da)}
        desc: dict[str, float] = {}
        vector_kind = vector = None
        if descriptors:
            try:
                desc, found, vector_kind, vector = describe(da, phases=phases)
            except AtomineError:  # a signal the analyses refuse (too small, NaN): keep its metadata
                desc, found = {}, []
            fields["elements"] = sorted(set(fields["elements"]) | set(found))
        try:
            png = thumbnail(da)
        except Exception:  # a picture is a nicety: never lose a dataset over it
            png = None
        records.append(DatasetRecord(
            path=str(path), name=str(da.name) if da.name is not None else f"signal{i}", signal_index=i,
            content_hash=f"{digest}:{i}", file_size=size, modified=modified, thumbnail_png=png,
            descriptors=desc, vector_kind=vector_kind, vector=vector, **fields))
    return records


def _hashes(obj: Any, out: list[str]) -> list[str]:
    """Every content / input hash anywhere in a provenance ``inputs`` record (file and array hashes)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("content_hash", "input_hash", "hash", "file_hash") and isinstance(v, str) and v:
                out.append(v)
            else:
                _hashes(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _hashes(v, out)
    elif isinstance(obj, str) and obj.startswith("sha256:"):
        out.append(obj)
    return out


def analysis_from_folder(folder: str | os.PathLike):
    """The :class:`~atomine.catalog.store.AnalysisRecord` of an atomine result folder, or None.

    ``input_hashes`` holds every hash recorded for the inputs: file hashes (``sha256:...``,
    from the reader's load step) and array hashes; the store links the analysis to the
    datasets whose content hash starts with one of them.
    """
    from .records import AnalysisRecord

    folder = Path(folder).absolute()
    prov_path = folder / "provenance.json"
    if not prov_path.is_file():
        return None
    try:
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{prov_path}: not valid JSON ({exc}); re-run the analysis to rewrite it") from None
    if not isinstance(prov, dict):
        raise InputError(f"{prov_path}: expected a JSON object")
    summary: dict = {}
    if (folder / "summary.json").is_file():
        try:
            loaded = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            summary = loaded if isinstance(loaded, dict) else {"value": loaded}
        except (OSError, ValueError):  # a damaged summary does not hide the analysis
            summary = {}
    outputs = prov.get("outputs") or {}
    return AnalysisRecord(
        path=str(folder), workflow=str(prov.get("workflow", "unknown")),
        atomine_version=str(prov.get("atomine_version", "")), time=str(prov.get("time", "")),
        parameters=prov.get("parameters") or {}, input_hashes=list(dict.fromkeys(_hashes(prov.get("inputs"), []))),
        outputs=sorted(outputs) if isinstance(outputs, dict) else [str(o) for o in outputs], summary=summary)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


def ingest(catalog, paths, *, recursive: bool = True, progress: Progress | None = None,
           descriptors: bool = True, phases: bool = False) -> IngestReport:
    """Add every readable signal and result folder under ``paths`` to ``catalog``.

    Parameters
    ----------
    catalog : atomine.catalog.Catalog
    paths : path or iterable of paths (files, folders)
    recursive : bool
        Walk sub-folders.
    progress : callable(done, total, message), optional
        Called after each file.
    descriptors, phases
        See :func:`records_from_file`.

    Returns
    -------
    IngestReport
    """
    start = time.perf_counter()
    report = IngestReport()
    items = scan(paths, recursive=recursive)
    for done, p in enumerate(items, 1):
        message = str(p)
        try:
            if _is_result_folder(p):
                rec = analysis_from_folder(p)
                if rec is not None:
                    catalog.add_analysis(rec)
                    report.analyses += 1
            else:
                for rec in records_from_file(p, descriptors=descriptors, phases=phases):
                    _, status = catalog.add_dataset(rec)
                    setattr(report, status, getattr(report, status) + 1)
        except Exception as exc:  # any failure of one file is recorded; the rest still go in
            reason = _reason(exc)
            catalog.add_failure(str(p), reason)
            report.failed.append((str(p), reason))
            message = f"{p}: failed ({reason})"
        if progress is not None:
            progress(done, len(items), message)
    report.seconds = time.perf_counter() - start
    return report
