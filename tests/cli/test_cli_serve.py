"""``atomine serve``: loopback by default, a warning for other interfaces, token and roots, and a real start."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from cli_helpers import assert_user_error

import atomine.cli.serve as serve_cli


@pytest.fixture
def captured(monkeypatch):
    """The uvicorn config the command would serve (serving itself replaced by recording the config)."""
    configs = []
    monkeypatch.setattr(serve_cli, "run_server", configs.append)
    return configs


def test_build_server_config_defaults_to_loopback(tmp_path):
    from atomine.server import build_server_config

    config = build_server_config(tmp_path / "c.sqlite")
    assert config.host == "127.0.0.1" and config.port == 8765
    assert config.app.state.token is None and config.app.state.roots == ()


def test_cli_default_host_is_loopback(cli, captured, tmp_path, monkeypatch):
    monkeypatch.delenv("ATOMINE_TOKEN", raising=False)
    result = cli("serve", "--catalog", tmp_path / "c.sqlite")
    assert result.exit_code == 0, result.stderr
    [config] = captured
    assert config.host == "127.0.0.1" and config.port == 8765 and config.app.state.token is None
    assert "http://127.0.0.1:8765/" in result.stdout and "read-only" in result.stdout
    assert "warning" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_cli_non_loopback_host_warns(cli, captured, tmp_path, host):
    result = cli("serve", "--catalog", tmp_path / "c.sqlite", "--host", host, "--port", "9999")
    assert result.exit_code == 0, result.stderr
    assert captured[0].host == host and captured[0].port == 9999
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and host in warnings[0] and "other machines" in warnings[0]


def test_cli_token_from_option_or_environment_and_roots(cli, captured, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = cli("serve", "--catalog", tmp_path / "c.sqlite", "--token", "t1", "--root", tmp_path / "a",
                 "--root", tmp_path / "b")
    assert result.exit_code == 0, result.stderr
    assert captured[-1].app.state.token == "t1"
    assert captured[-1].app.state.roots == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    monkeypatch.setenv("ATOMINE_TOKEN", "from-env")
    assert cli("serve", "--catalog", tmp_path / "c.sqlite").exit_code == 0
    assert captured[-1].app.state.token == "from-env"


def test_cli_bad_inputs_exit_2_one_line(cli, captured, tmp_path):
    assert_user_error(cli("serve", "--catalog", tmp_path / "missing" / "c.sqlite"), "does not exist")
    assert_user_error(cli("serve", "--catalog", tmp_path), "folder")
    assert_user_error(cli("serve", "--catalog", tmp_path / "c.sqlite", "--root", tmp_path / "nope"), "--root")
    assert_user_error(cli("serve", "--catalog", tmp_path / "c.sqlite", "--port", "70000"), "port")
    assert captured == []  # nothing was served


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 1))
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)  # http.client sends the path as written: no dot-segment normalisation
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_real_server_on_loopback(tmp_path):
    from atomine.catalog import Catalog

    Catalog(tmp_path / "c.sqlite").close()
    port = _free_port()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("ATOMINE_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "atomine.cli.main", "serve", "--catalog", str(tmp_path / "c.sqlite"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline, status, body = time.monotonic() + 60, None, b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = _get("127.0.0.1", port, "/api/stats")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, proc.stderr.read1().decode() if proc.poll() is not None else "server did not start"
        stats = json.loads(body)
        assert stats["datasets"] == 0 and stats["url"].endswith("c.sqlite")
        status, body = _get("127.0.0.1", port, "/static/../../../../etc/passwd")
        assert status in (400, 404) and b"root:" not in body
        assert _get("127.0.0.1", port, "/api/search?q=" + "a" * 9000)[0] in (414, 431, 400)
        outward = _outward_address()
        if outward is not None:  # listening on loopback only: the machine's other address refuses
            with pytest.raises(OSError):
                _get(outward, port, "/api/stats")
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/" in out.decode()
