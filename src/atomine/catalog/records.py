"""Catalog records: what ingest builds (:class:`DatasetRecord`, :class:`AnalysisRecord`) and their rows.

The store writes these rows; keeping the conversion here leaves :mod:`.store` with the database
session, identity rules and queries.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from . import schema as S

CONTENT_LEVELS = ("content", "metadata")


def opt_float(value, name):
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    return out if math.isfinite(out) else None  # NaN means "unknown": store it as such


@dataclass
class DatasetRecord:
    """One signal of one file, as ingest describes it (units: nm, eV, kV; dates ISO)."""

    path: str
    name: str
    signal_index: int
    content_hash: str
    file_size: int = 0
    modified: str = ""
    kind: str = "other"
    signal: str | None = None
    shape: list[int] = field(default_factory=list)
    dtype: str = ""
    pixel_size_nm: float | None = None
    energy_range: list[float] | None = None
    instrument: str | None = None
    beam_energy_kv: float | None = None
    magnification: float | None = None
    detector: str | None = None
    acquisition_date: str | None = None
    operator: str | None = None
    sample: str | None = None
    elements: list[str] = field(default_factory=list)
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    original_text: str = ""
    thumbnail_png: bytes | None = None
    descriptors: dict = field(default_factory=dict)
    vector_kind: str | None = None
    vector: np.ndarray | None = None
    # "content": hashes, thumbnail and descriptors computed from the arrays; "metadata": a fast
    # ingest that read headers only. A later "content" record of the same file replaces it.
    content_level: str = "content"


@dataclass
class AnalysisRecord:
    """An atomine result folder and the content hashes of its inputs (from provenance.json)."""

    path: str
    workflow: str
    atomine_version: str = ""
    time: str = ""
    parameters: dict = field(default_factory=dict)
    input_hashes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def to_json(obj: Any) -> str:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)
    return json.dumps(obj, default=default, ensure_ascii=False, sort_keys=True)


def _flatten(obj: Any, prefix: str = "") -> list[str]:
    """Nested metadata -> "key.path: value" lines (the searchable text of a dict)."""
    if isinstance(obj, dict):
        return [line for k, v in obj.items() for line in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, (list, tuple)) and not all(isinstance(v, (str, int, float)) for v in obj):
        return [line for i, v in enumerate(obj) for line in _flatten(v, f"{prefix}[{i}]")]
    return [f"{prefix}: {obj}"]


def dataset_row(r: DatasetRecord) -> dict:
    if not isinstance(r.path, str) or not r.path:
        raise InputError(f"dataset path must be a non-empty string, got {r.path!r}")
    if not isinstance(r.content_hash, str) or not r.content_hash:
        raise InputError(f"dataset {r.path!r} has no content hash; compute it from the file bytes")
    energy = list(r.energy_range) if r.energy_range is not None else [None, None]
    if len(energy) != 2:
        raise InputError(f"energy_range of {r.path!r} must be [min, max], got {r.energy_range!r}")
    if r.content_level not in CONTENT_LEVELS:
        raise InputError(f"content_level of {r.path!r} must be one of {', '.join(CONTENT_LEVELS)}, "
                         f"got {r.content_level!r}")
    check_vector(r)
    now = now_iso()
    elements, tags = [str(e) for e in r.elements or []], [str(t) for t in r.tags or []]
    return dict(
        content_hash=r.content_hash, path=r.path, name=r.name or "", signal_index=int(r.signal_index),
        file_size=int(r.file_size or 0), modified=r.modified or "", kind=r.kind or "other", signal=r.signal,
        shape=to_json([int(s) for s in r.shape or []]), dtype=str(r.dtype or ""),
        pixel_size_nm=opt_float(r.pixel_size_nm, "pixel_size_nm"),
        energy_min=opt_float(energy[0], "energy_range"), energy_max=opt_float(energy[1], "energy_range"),
        instrument=r.instrument, beam_energy_kv=opt_float(r.beam_energy_kv, "beam_energy_kv"),
        magnification=opt_float(r.magnification, "magnification"), detector=r.detector,
        acquisition_date=r.acquisition_date, operator=r.operator, sample=r.sample,
        elements=to_json(elements), title=r.title, tags=to_json(tags), metadata=to_json(r.metadata or {}),
        vector_kind=r.vector_kind if r.vector is not None else None, added=now, updated=now,
        elements_text=" ".join(elements), tags_text=" ".join(tags),
        metadata_text="\n".join(_flatten(r.metadata or {})), original_text=r.original_text or "",
        content_level=r.content_level)


def check_vector(r: DatasetRecord) -> np.ndarray | None:
    """The content vector of ``r`` as little-endian float32, or None; InputError when it is unusable."""
    if r.vector is None:
        return None
    if not r.vector_kind:
        raise InputError(f"dataset {r.path!r} has a content vector but no vector_kind; name its kind")
    vec = np.asarray(r.vector, dtype="<f4")
    if vec.ndim != 1 or vec.size == 0 or not np.all(np.isfinite(vec)):
        raise InputError(f"content vector of {r.path!r} must be a non-empty finite 1-D array, got shape "
                         f"{vec.shape}")
    return vec


def record_hashes(r: DatasetRecord) -> set[str]:
    """Every hash an analysis may cite for this dataset: content hash, file hash, array hash."""
    out = {r.content_hash}
    head, sep, tail = r.content_hash.rpartition(":")
    if sep and tail.isdigit():
        out.add(head)
    for key in ("array_hash", "content_hash", "file_hash"):
        value = (r.metadata or {}).get(key)
        if isinstance(value, str) and value:
            out.add(value)
    return out


def child_rows(dataset_id: int, r: DatasetRecord) -> dict:
    """The rows of every child table of one dataset: {table: [row, ...]} (terms, descriptors, vectors, thumbnails)."""
    terms = {("element", str(e).lower()) for e in r.elements or []} | {("tag", str(t).lower()) for t in r.tags or []}
    terms |= {("hash", h) for h in record_hashes(r)}
    out = {S.terms: [{"dataset_id": dataset_id, "field": f, "value": v} for f, v in sorted(terms)],
           S.descriptors: [], S.vectors: [], S.thumbnails: []}
    for name, value in (r.descriptors or {}).items():
        value = opt_float(value, f"descriptor {name!r}")
        if value is not None:
            out[S.descriptors].append({"dataset_id": dataset_id, "name": str(name), "value": value})
    vec = check_vector(r)
    if vec is not None:
        out[S.vectors].append({"dataset_id": dataset_id, "kind": r.vector_kind, "dim": int(vec.size),
                               "blob": vec.tobytes()})
    if r.thumbnail_png:
        out[S.thumbnails].append({"dataset_id": dataset_id, "png": bytes(r.thumbnail_png)})
    return out


def insert_children(conn, dataset_id: int, r: DatasetRecord) -> None:
    for table, rows in child_rows(dataset_id, r).items():
        if rows:
            conn.execute(table.insert(), rows)


_HIDDEN = {"elements_text", "tags_text", "metadata_text", "energy_min", "energy_max"}


def public_dataset(row) -> dict:
    out = {k: v for k, v in row.items() if k not in _HIDDEN}
    for key in ("shape", "elements", "tags", "metadata"):
        out[key] = json.loads(row[key]) if row[key] else ([] if key != "metadata" else {})
    out["energy_range"] = (None if row["energy_min"] is None and row["energy_max"] is None
                           else [row["energy_min"], row["energy_max"]])
    return out


def public_analysis(row) -> dict:
    out = dict(row)
    for key in ("parameters", "outputs", "summary"):
        out[key] = json.loads(row[key]) if row[key] else None
    return out


__all__ = ["AnalysisRecord", "CONTENT_LEVELS", "DatasetRecord", "check_vector", "child_rows", "dataset_row",
           "insert_children",
           "now_iso", "opt_float", "public_analysis", "public_dataset", "record_hashes", "to_json"]
