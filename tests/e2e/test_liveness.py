"""Issue 11, items 16 and 17: a running campaign has one writer (a second --resume is
refused while its owner lives; of two racing resumers one wins), and a campaign whose
process was SIGKILLed, or whose other-host owner went silent, shows as stale and is taken
over by --resume at once."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from migfuzz.db import liveness

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def migfuzz(*args, cwd, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migfuzz", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def start(db, name, cwd, *more) -> subprocess.Popen:
    return migfuzz("fuzz", "--workers", "0", "--db", db, "--name", name, "--execs",
                   "10000000", "--seed", "5", "--no-minimize", *more, cwd=cwd)


def row(path, name) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        r = con.execute("SELECT c.status, c.owner, c.heartbeat_at, "
                        "(SELECT count(*) FROM stats s WHERE s.campaign_id = c.id) AS stats "
                        "FROM campaigns c WHERE c.name = ?", (name,)).fetchone()
        return dict(r) if r else {}
    finally:
        con.close()


def wait_stats(path, name, n=3, timeout=120) -> dict:
    t = time.time()
    while time.time() - t < timeout:
        if Path(path).exists():
            try:
                r = row(path, name)
                if r.get("stats", 0) >= n:
                    return r
            except sqlite3.Error:
                pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the campaign to write")


def campaigns(db, cwd) -> dict:
    p = run("campaigns", "--db", db, "--json", cwd=cwd)
    assert p.returncode == 0, p.stderr
    return {c["name"]: c for c in json.loads(p.stdout)}


def one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def stop(p: subprocess.Popen, sig=signal.SIGTERM) -> tuple[int, str, str]:
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


def test_resume_of_a_running_campaign_is_refused(tmp_path):
    path = tmp_path / "l.db"
    db = f"sqlite:///{path}"
    first = start(db, "live", tmp_path)
    try:
        before = wait_stats(path, "live")
        p = run("fuzz", "--workers", "0", "--db", db, "--resume", "live", "--execs", "50",
                cwd=tmp_path)
        assert p.returncode == 2, (p.stdout, p.stderr)
        line = one_line(p.stderr)
        assert "'live' is running" in line and f"pid {first.pid}" in line
        assert before["owner"].split(":")[1] == str(first.pid)
        assert row(path, "live")["owner"] == before["owner"]         # nothing taken
        assert campaigns(db, tmp_path)["live"]["status"] == "running"
    finally:
        rc, _, err = stop(first)
    assert rc == 130 and "continue with --resume live" in err     # SIGTERM: stopped
    assert row(path, "live")["status"] == "stopped"
    # once its writer has stopped, the campaign resumes
    p = run("fuzz", "--workers", "0", "--db", db, "--resume", "live", "--execs", "50",
            "--no-minimize", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert row(path, "live")["status"] == "finished"


def test_sigkilled_campaign_is_stale_and_resumes_at_once(tmp_path):
    path = tmp_path / "k.db"
    db = f"sqlite:///{path}"
    p = start(db, "k", tmp_path)
    try:
        wait_stats(path, "k")
    finally:
        stop(p, signal.SIGKILL)
    c = campaigns(db, tmp_path)["k"]
    assert c["status"] == "stale" and c["stored_status"] == "running"
    assert f"pid {p.pid}" in c["liveness"] and "gone" in c["liveness"]
    out = run("campaigns", "--db", db, cwd=tmp_path).stdout
    assert "stale" in out and "running" not in out.split("\n")[2]
    assert "--resume k" in out
    dead = row(path, "k")["owner"]
    r = run("fuzz", "--workers", "0", "--db", db, "--resume", "k", "--execs", "50",
            "--no-minimize", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    c = campaigns(db, tmp_path)["k"]
    assert c["status"] == "finished" and c["owner"] != dead


def _set_owner(path, name, owner, heartbeat_at):
    con = sqlite3.connect(path)
    try:
        con.execute("UPDATE campaigns SET status = 'running', ended_at = NULL, owner = ?, "
                    "heartbeat_at = ? WHERE name = ?", (owner, heartbeat_at, name))
        con.commit()
    finally:
        con.close()


def test_owner_on_another_host_judged_by_its_heartbeat(tmp_path):
    path = tmp_path / "h.db"
    db = f"sqlite:///{path}"
    r = run("fuzz", "--workers", "0", "--db", db, "--name", "h", "--execs", "30",
            "--no-minimize", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _set_owner(path, "h", "another-host:4242:beef", time.time())
    assert campaigns(db, tmp_path)["h"]["status"] == "running"
    r = run("fuzz", "--workers", "0", "--db", db, "--resume", "h", "--execs", "30",
            cwd=tmp_path)
    assert r.returncode == 2 and "on another-host, heartbeat" in one_line(r.stderr)
    _set_owner(path, "h", "another-host:4242:beef", time.time() - 3600)
    c = campaigns(db, tmp_path)["h"]
    assert c["status"] == "stale" and "no heartbeat for 60m" in c["liveness"]
    r = run("fuzz", "--workers", "0", "--db", db, "--resume", "h", "--execs", "30",
            "--no-minimize", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert row(path, "h")["owner"].startswith(liveness.HOST + ":")


def test_two_resumers_one_wins(tmp_path):
    path = tmp_path / "r.db"
    db = f"sqlite:///{path}"
    p = start(db, "r", tmp_path)
    try:
        wait_stats(path, "r")
    finally:
        stop(p, signal.SIGKILL)
    procs = [migfuzz("fuzz", "--workers", "0", "--db", db, "--resume", "r", "--execs",
                     "10000000", "--no-minimize", cwd=tmp_path) for _ in range(2)]
    try:
        t = time.time()
        while all(q.poll() is None for q in procs) and time.time() - t < 120:
            time.sleep(0.1)
        losers = [q for q in procs if q.poll() is not None]
        assert len(losers) == 1, "both resumers ran (or neither was refused)"
        _, err = losers[0].communicate(timeout=30)
        assert losers[0].returncode == 2 and "'r' is running" in one_line(err)
        winner = next(q for q in procs if q is not losers[0])
        time.sleep(1)
        assert winner.poll() is None
        assert row(path, "r")["owner"].split(":")[1] == str(winner.pid)
    finally:
        for q in procs:
            if q.poll() is None:
                rc, _, err = stop(q)
                assert rc == 130, err
    assert row(path, "r")["status"] == "stopped"


def test_a_reused_pid_is_not_the_owner():
    """A pid on this host that started after the owner's last heartbeat is another
    program: the owner is dead."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        owner = f"{liveness.HOST}:{child.pid}:feed"
        assert liveness.owner_alive(owner, time.time())[0]
        alive, why = liveness.owner_alive(owner, time.time() - 3600)
        assert not alive and "reused" in why
    finally:
        child.kill()
        child.wait()
    alive, why = liveness.owner_alive(owner, time.time())
    assert not alive and "gone" in why
