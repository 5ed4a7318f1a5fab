"""``POST /api/ingest``: add files under the server's allowed roots, and nothing outside them.

Every requested path and every file found under it is resolved (symlinks followed) and must lie
inside one of the ``--root`` folders; a symlink inside a root that points out of it is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import HTTPException

from ..errors import InputError


def _inside(path: Path, roots) -> bool:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return any(real.is_relative_to(r) for r in roots)


def ingest_paths(cat, paths: list[str], roots) -> dict:
    """Ingest ``paths`` (absolute, inside ``roots``) into ``cat``; the counts, failures and skipped paths.

    Raises HTTP 403 when no roots are configured or a path lies outside them, 400 for a relative or
    missing path.
    """
    from ..catalog.ingest import analysis_from_folder, records_from_file, scan

    if not roots:
        raise HTTPException(403, "no ingest roots configured: start the server with --root DIR")
    asked = []
    for text in paths:
        p = Path(text)
        if "\x00" in text or not p.is_absolute():
            raise HTTPException(400, f"ingest paths must be absolute paths on the server, got {text[:200]!r}")
        if not _inside(p, roots):
            if p.exists() or p.is_symlink():
                raise HTTPException(403, f"{text[:200]} is outside the ingest roots of this server")
            raise HTTPException(400, f"{text[:200]}: no such file or folder")
        asked.append(p)
    start = time.perf_counter()
    report = {"added": 0, "unchanged": 0, "moved": 0, "updated": 0, "analyses": 0, "failed": [], "skipped": [],
              "ids": []}
    try:
        items = scan(asked)
    except InputError as exc:
        raise HTTPException(400, str(exc)) from None
    for item in items:
        if not _inside(item, roots):  # e.g. a symlink inside a root folder pointing out of it
            report["skipped"].append(str(item))
            continue
        try:
            if item.is_dir() and (item / "provenance.json").is_file():
                rec = analysis_from_folder(item)
                if rec is not None:
                    cat.add_analysis(rec)
                    report["analyses"] += 1
                continue
            for rec in records_from_file(item):
                dataset_id, status = cat.add_dataset(rec)
                report[status] += 1
                report["ids"].append(dataset_id)
        except Exception as exc:  # one unreadable file is recorded; the others still go in
            reason = " ".join(str(exc).split())[:500] or type(exc).__name__
            cat.add_failure(str(item), reason)
            report["failed"].append({"path": str(item), "reason": reason})
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report
