"""Write to a temporary sibling, then rename: an interrupted write leaves no half-written result."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import OutputExistsError


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; the parent folder must exist."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if not path.parent.exists():
        raise OutputExistsError(f"folder {path.parent} does not exist; create it first")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place, on error remove it."""
    target = check_target(path, overwrite)
    parent = target.parent
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
        shutil.rmtree(tmp)  # the writer creates it
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=parent)
        os.close(fd)
        os.unlink(name)
        tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if target.exists():
        # Keep the old result until the new one is complete, then swap.
        old = target.with_name(f".{target.name}.old")
        _remove(old)
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()
