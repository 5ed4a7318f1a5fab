"""A throw-away PostgreSQL server for the catalog and server tests: temporary data folder, loopback only, trust auth.

Used by the ``postgres_url_base`` fixture of ``tests/conftest.py``; each pytest process (each
xdist worker) starts its own, on its own free port and its own socket folder, so workers never
share a server. ``create_database`` / ``drop_databases`` give each test its own database on it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/local/bin")


class ServerUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the server would not start (the message says why)."""


def find_binaries() -> Path:
    """Folder holding initdb and pg_ctl: PATH first, then the usual install places (newest version first)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    candidates = sorted(glob.glob(_SEARCH[0]), key=lambda p: _version_key(p), reverse=True) + list(_SEARCH[1:])
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise ServerUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
                            + ", ".join(_SEARCH) + "; install Debian's postgresql package")


def _version_key(folder: str):
    part = Path(folder).parent.name
    return (0, int(part)) if part.isdigit() else (-1, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``start()`` -> URL ``postgresql://postgres@127.0.0.1:PORT/postgres``; ``stop()`` removes everything."""

    def __init__(self):
        self.bin = find_binaries()
        self.root: Path | None = None
        self.port: int | None = None
        self.startup_s: float | None = None
        # initdb refuses to run as root: the server then runs as the system's postgres user
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as and shutil.which("runuser") is None:
            raise ServerUnavailable("running as root, but runuser is missing to start PostgreSQL as 'postgres'")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, timeout=120) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}, cwd=self.root)

    def start(self, attempts: int = 3) -> str:
        t0 = time.perf_counter()
        self.root = Path(tempfile.mkdtemp(prefix="atomine-pg-"))
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        try:
            done = self._run(self.bin / "initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                             "--auth=trust", "--no-sync")
        except (OSError, subprocess.SubprocessError) as exc:
            self.stop()
            raise ServerUnavailable(f"initdb failed: {exc}") from None
        if done.returncode:
            self.stop()
            raise ServerUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")
        # trust, but only over the socket folder (private to this run) and loopback TCP
        self._run("sh", "-c", f"printf 'local all all trust\\nhost all all 127.0.0.1/32 trust\\n' > {data}/pg_hba.conf")
        last = ""
        for _ in range(attempts):
            self.port = _free_port()   # another process may take it before us: retried below
            opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            done = self._run(self.bin / "pg_ctl", "-D", data, "-l", self.root / "server.log", "-o", opts,
                             "-w", "-t", "60", "start")
            if done.returncode == 0:
                self.startup_s = time.perf_counter() - t0
                return self.url
            log = self.root / "server.log"
            last = (log.read_text(errors="replace") if log.exists() else done.stderr).strip()[-500:]
        self.stop()
        raise ServerUnavailable(f"PostgreSQL would not start: {last}")

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(self.bin / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", timeout=60)
            except (OSError, subprocess.SubprocessError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def libpq_url(url: str) -> str:
    """The URL as psycopg reads it (no SQLAlchemy driver suffix)."""
    import sqlalchemy as sa
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(base: str, prefix: str = "atomine_test") -> tuple[str, str]:
    """A new empty database on the server of ``base``: (its name, its plain ``postgresql://`` URL)."""
    import psycopg
    import sqlalchemy as sa
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    # plain postgresql:// (no driver): the store must pick psycopg 3 itself
    return name, sa.engine.make_url(libpq_url(base)).set(database=name).render_as_string(hide_password=False)


def drop_databases(base: str, names) -> None:
    import psycopg
    with psycopg.connect(libpq_url(base), autocommit=True) as conn:
        for name in names:
            # FORCE: a test that failed may have left a Catalog (and its pool) open
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
