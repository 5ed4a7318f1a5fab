"""Ingest files and atomine result folders into a :class:`~atomine.catalog.store.Catalog`.

A dataset is one signal of one file, identified by its content hash: the SHA-256 of the
file's bytes (streamed in 1 MiB blocks; for folder stores, of every file in them) plus
``":<signal index>"``. The store decides whether a record is new, unchanged or moved.
Unreadable files are recorded with a one-line reason and ingest goes on.

Metadata-only ingest (``content=False``) reads headers and the file hash only; a later full
ingest of the same file upgrades its records in place. Files already catalogued at the same
path with the same bytes are recognised from their hash alone and not read again, and records
are written many per transaction.
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


def _reader_hash(da, path: Path) -> str | None:
    """The file SHA-256 the reader already computed for its load step, or None.

    rosettasciio files get a ``load`` provenance step holding the digest of the file's bytes
    (appended last, after any provenance the file carried): reusing it spares reading the
    file a second time. Stores and NumPy files record no such step, so they are hashed here.
    """
    steps = da.attrs.get("provenance") or []
    last = steps[-1] if isinstance(steps, list) and steps else None
    if not isinstance(last, dict) or last.get("name") != "load":
        return None
    params = last.get("parameters") or {}
    digest = last.get("input_hash")
    if (isinstance(digest, str) and digest.startswith("sha256:") and path.is_file()
            and str(params.get("plugin", "")).startswith("rsciio.") and params.get("file") == path.name
            and not params.get("companions")):
        return digest
    return None


def _modified(path: Path) -> str:
    return _dt.datetime.fromtimestamp(path.stat().st_mtime, tz=_dt.timezone.utc).isoformat()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# Below this size a file is read eagerly even for metadata-only ingest: building dask graphs
# (and the constructors' NaN scan of small lazy arrays) costs more than reading a few MiB.
# Stores (.zarr/.nc) open lazily at every size: their lazy open reads headers only and is faster.
LAZY_BYTES = 32 * 1024**2


def _lazy(path: Path, content: bool) -> bool:
    return not content and (path.suffix.lower() in (".zarr", ".nc") or _size(path) > LAZY_BYTES)


def records_from_file(path: str | os.PathLike, *, content: bool = True, descriptors: bool = True,
                      phases: bool = True, digest: str | None = None) -> list:
    """One :class:`~atomine.catalog.store.DatasetRecord` per signal of ``path``.

    Parameters
    ----------
    path : file or folder store
    content : bool
        True: read the arrays for the array hash, thumbnail and (with ``descriptors``) the
        content descriptors (``content_level="content"``). False: metadata only -- stores
        and files above :data:`LAZY_BYTES` are opened lazily (headers and coordinates, no
        array values where the format allows; smaller files are cheaper to read whole), and
        only the file SHA-256 is computed (``content_level="metadata"``).
    descriptors : bool
        With ``content``: compute content descriptors and the similarity vector (lattice,
        radial profile, edges, ...).
    phases : bool
        Count distinct local lattices, phases or grain orientations (``n_phases``; ~30 ms per 512^2 image).
    digest : str, optional
        The file's SHA-256 (``"sha256:..."``) when the caller has it already.

    Raises
    ------
    atomine.errors.AtomineError
        The file cannot be read (its message says why).
    """
    from ..io import load_all
    from .metadata import signal_fields
    from .records import DatasetRecord

    path = Path(path).absolute()
    signals = load_all(path, lazy=_lazy(path, content))
    digest = digest or _reader_hash(signals[0], path) or _hash(path)
    size, modified = _size(path), _modified(path)
    records = []
    for i, da in enumerate(signals):
        fields = signal_fields(da)
        extra: dict[str, Any] = {}
        if content:
            extra = _content(da, fields, descriptors=descriptors, phases=phases)
        records.append(DatasetRecord(
            path=str(path), name=str(da.name) if da.name is not None else f"signal{i}", signal_index=i,
            content_hash=f"{digest}:{i}", file_size=size, modified=modified,
            content_level="content" if content else "metadata", **extra, **fields))
    return records


def _content(da, fields: dict, *, descriptors: bool, phases: bool) -> dict:
    """Array hash, thumbnail, descriptors and vector of one in-memory signal (updates ``fields``)."""
    from ..data import array_hash
    from .descriptors import describe
    from .thumbnail import thumbnail

    # analyses record the array hash of their input (atomine stores add no file-hash load step),
    # so each dataset carries it for the store to link result folders to it; the values are
    # already in memory, so this costs one pass over them, no read
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
    return {"thumbnail_png": png, "descriptors": desc, "vector_kind": vector_kind, "vector": vector}


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


class _Batcher:
    """Dataset records waiting to be written, many per transaction; a bad file fails alone.

    One transaction per record costs a commit (an fsync in SQLite WAL mode, a round trip
    on PostgreSQL) per file; batches make the database a small share of ingest time.
    """

    def __init__(self, catalog, report: IngestReport, size: int):
        self.catalog, self.report, self.size = catalog, report, size
        self.files: list[tuple[Path, list]] = []
        self.count = 0

    def add(self, path: Path, records: list) -> None:
        self.files.append((path, records))
        self.count += len(records)
        if self.count >= self.size:
            self.flush()

    def _count(self, statuses) -> None:
        for _, status in statuses:
            setattr(self.report, status, getattr(self.report, status) + 1)

    def flush(self) -> None:
        files, self.files, self.count = self.files, [], 0
        if not files:
            return
        try:
            self._count(self.catalog.add_datasets([r for _, recs in files for r in recs], batch=self.size))
            return
        except Exception:  # one bad record refuses its whole transaction: retry file by file
            pass
        for path, recs in files:
            try:
                self._count(self.catalog.add_datasets(recs))
            except Exception as exc:
                _fail(self.catalog, self.report, path, exc)


def _fail(catalog, report: IngestReport, path: Path, exc: BaseException) -> str:
    reason = _reason(exc)
    catalog.add_failure(str(path), reason)
    report.failed.append((str(path), reason))
    return reason


def _stored(catalog, items: list[Path]) -> dict[str, list[tuple[str, str]]]:
    """path -> [(content hash, content level)] of the datasets the catalog holds at those paths.

    One query per 500 paths, so that a re-ingest can skip reading unchanged files.
    """
    import sqlalchemy as sa

    from . import schema as S

    d, out = S.datasets, {}
    paths = [str(p) for p in items]
    with catalog._read() as conn:
        for i in range(0, len(paths), 500):
            for row in conn.execute(sa.select(d.c.path, d.c.content_hash, d.c.content_level)
                                    .where(d.c.path.in_(paths[i:i + 500]))):
                out.setdefault(row.path, []).append((row.content_hash, row.content_level))
    return out


def _unchanged(stored: list[tuple[str, str]], digest: str, content: bool) -> bool:
    """Whether every stored signal of a file is this file's bytes at the level asked for."""
    return all(h.rpartition(":")[0] == digest and (level == "content" or not content) for h, level in stored)


def ingest(catalog, paths, *, content: bool = True, recursive: bool = True, progress: Progress | None = None,
           descriptors: bool = True, phases: bool = True, batch: int = 200) -> IngestReport:
    """Add every readable signal and result folder under ``paths`` to ``catalog``.

    Parameters
    ----------
    catalog : atomine.catalog.Catalog
    paths : path or iterable of paths (files, folders)
    content : bool
        False: metadata-only ingest (lazy read, file SHA-256, normalised metadata; no array
        hash, thumbnail, descriptors or vector; records get ``content_level="metadata"``).
        A later ingest with ``content=True`` upgrades those records in place ("updated").
    recursive : bool
        Walk sub-folders.
    progress : callable(done, total, message), optional
        Called after each file is read.
    descriptors, phases
        See :func:`records_from_file`.
    batch : int
        Dataset records written per database transaction.

    Returns
    -------
    IngestReport
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    start = time.perf_counter()
    report = IngestReport()
    items = scan(paths, recursive=recursive)
    pending = _Batcher(catalog, report, batch)
    stored = _stored(catalog, items)
    for done, p in enumerate(items, 1):
        message = str(p)
        try:
            if _is_result_folder(p):
                rec = analysis_from_folder(p)
                if rec is not None:
                    catalog.add_analysis(rec)
                    report.analyses += 1
            else:
                known, digest = stored.get(str(p)), None
                if known:
                    # a file catalogued here before: hashing it (~1 ms/MiB) decides whether it
                    # must be read again at all; unchanged files then cost no load
                    digest = _hash(p)
                    if _unchanged(known, digest, content):
                        report.unchanged += len(known)
                        if progress is not None:
                            progress(done, len(items), message)
                        continue
                pending.add(p, records_from_file(p, content=content, descriptors=descriptors, phases=phases,
                                                 digest=digest))
        except Exception as exc:  # any failure of one file is recorded; the rest still go in
            message = f"{p}: failed ({_fail(catalog, report, p, exc)})"
        if progress is not None:
            progress(done, len(items), message)
    pending.flush()
    report.seconds = time.perf_counter() - start
    return report
