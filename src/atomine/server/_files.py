"""Serving files from disk without escaping their folder: analysis reports and the page's static files.

A requested name is checked twice: lexically (no empty, '.', '..' segments, no absolute path, no
backslash or NUL) and on disk (the resolved path, symlinks followed, must stay inside the resolved
folder and be a regular file). Either failure is a plain 404, so a probe learns nothing.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import HTTPException

REPORT_SUFFIXES = (".html", ".png", ".json", ".csv")

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json", ".csv": "text/csv; charset=utf-8",
          ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}


def media_type(path: Path) -> str:
    """The Content-Type to send for a file (a fixed table first: the system's mime.types varies)."""
    return _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def safe_file(folder: str | Path, name: str, *, nested: bool = False) -> Path:
    """The regular file ``folder/name``, or HTTP 404 when ``name`` would leave ``folder`` or is no file.

    Parameters
    ----------
    folder : path
        The folder files may come from.
    name : str
        The requested name, already URL-decoded. With ``nested=False`` a single file name only.
    nested : bool
        Allow sub-folders (``css/style.css``), still inside ``folder``.
    """
    not_found = HTTPException(404, "no such file")
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name or name.startswith("/"):
        raise not_found
    parts = name.split("/")
    if (not nested and len(parts) != 1) or any(p in ("", ".", "..") for p in parts):
        raise not_found
    try:
        root = Path(folder).resolve(strict=True)
        target = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
        raise not_found from None
    if not target.is_relative_to(root) or not target.is_file():
        raise not_found
    return target


def report_files(folder: str | Path) -> list[str]:
    """Names of the report-like files (.html .png .json .csv) directly in ``folder`` that can be served."""
    try:
        root = Path(folder).resolve(strict=True)
        entries = sorted(p.name for p in root.iterdir() if p.suffix.lower() in REPORT_SUFFIXES)
    except OSError:
        return []  # the folder moved or was deleted since it was catalogued
    out = []
    for name in entries:
        try:
            safe_file(root, name)
        except HTTPException:
            continue  # a symlink out of the folder, or not a regular file: not offered
        out.append(name)
    return out
