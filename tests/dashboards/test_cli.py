"""``migfuzz dashboard``: loopback only unless --allow-remote, a real start and stop, and
databases it refuses (missing, unmigrated) without creating or changing them."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import free_port
from migfuzz.dashboards.readonly import open_readonly
from migfuzz.db.errors import StoreError
from migfuzz.cli import UsageError, main
from migfuzz.commands.dashboard import check_bind, is_loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1",
                                  "example.com", "localhost.example.com"])
def test_non_loopback_refused_without_flag(host, capsys, filled_db):
    assert main(["dashboard", "--db", filled_db["url"], "--host", host]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and host in err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_accepted(host):
    assert is_loopback(host)
    check_bind(host, 8000, allow_remote=False)


def test_allow_remote_lets_it_through():
    check_bind("0.0.0.0", 8000, allow_remote=True)
    with pytest.raises(UsageError):
        check_bind("127.0.0.1", 0, allow_remote=False)


def test_command_serves_and_stops(filled_db):
    port = free_port()
    exe = str(Path(sys.executable).with_name("migfuzz"))
    p = subprocess.Popen([exe, "dashboard", "--db", filled_db["url"], "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert p.poll() is None, p.communicate()
                assert time.time() < deadline, "the dashboard did not start"
                time.sleep(0.1)
        assert r.json()["read_only"] is True
        assert httpx.get(f"http://127.0.0.1:{port}/bugs", timeout=10).status_code == 200
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in err


def test_missing_database_is_not_created(tmp_path, capsys):
    path = tmp_path / "nothing.db"
    assert main(["dashboard", "--db", f"sqlite:///{path}"]) == 2
    assert "no database" in capsys.readouterr().err
    assert not path.exists()


def test_unmigrated_database_refused_and_untouched(tmp_path):
    path = tmp_path / "old.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE unrelated (x)")
    c.commit()
    c.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="db upgrade"):
        open_readonly(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["old.db"] or \
        all(n.startswith("old.db") for n in os.listdir(tmp_path))


def _run_dashboard(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("migfuzz"))
    return subprocess.run([exe, "dashboard", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_port_in_use_is_one_line_exit_2_and_no_banner(filled_db):
    """A taken port: checked before the banner; one line, exit 2 (3 means
    non-determinism), no uvicorn traceback or log."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        p = _run_dashboard(["--db", filled_db["url"], "--port", str(port)])
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]
    assert "http://" not in p.stderr and "Traceback" not in p.stderr


def test_unknown_host_is_one_line_exit_2(filled_db):
    p = _run_dashboard(["--db", filled_db["url"], "--host", "no-such-host.invalid",
                        "--allow-remote", "--port", str(free_port())])
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "http://" not in p.stderr and "Traceback" not in p.stderr


def test_remote_bind_warns_there_is_no_authentication(filled_db, capsys, monkeypatch):
    """--allow-remote on a non-loopback address starts (served here by nothing: the
    server's run is stubbed), after a warning line that says there is no authentication."""
    import uvicorn
    served = []
    monkeypatch.setattr(uvicorn.Server, "run",
                        lambda self, sockets=None: served.append(sockets[0].getsockname()))
    port = free_port()
    assert main(["dashboard", "--db", filled_db["url"], "--host", "0.0.0.0",
                 "--allow-remote", "--port", str(port)]) == 0
    assert served and served[0][1] == port
    err = capsys.readouterr().err.splitlines()
    warn = [line for line in err if "WARNING" in line]
    assert len(warn) == 1 and "no authentication" in warn[0] and "0.0.0.0" in warn[0]
    assert err.index(warn[0]) < next(i for i, line in enumerate(err) if "http://" in line)
    # and no warning on loopback
    assert main(["dashboard", "--db", filled_db["url"], "--port", str(free_port())]) == 0
    assert "WARNING" not in capsys.readouterr().err
