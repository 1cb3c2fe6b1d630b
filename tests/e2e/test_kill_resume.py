"""A campaign killed with SIGKILL mid-run resumes with nothing lost that was reported as
stored and no partial rows; SIGTERM stops it cleanly as 'stopped'."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(db, *args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0",
                             "--db", db, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def counts(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]
        return {"corpus": q("select count(*) from corpus_entries"),
                "crashes": q("select count(*) from crashes"),
                "stats": q("select count(*) from stats"),
                "executions": q("select coalesce(max(executions), 0) from stats"),
                "bug_counts_match": q(
                    "select count(*) from bugs b where b.count != "
                    "(select count(*) from crashes c where c.signature = b.signature)"),
                "status": q("select status from campaigns where name = 'k'")}
    finally:
        con.close()


def wait_for(path, pred, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        if Path(path).exists():
            try:
                c = counts(path)
                if pred(c):
                    return c
            except sqlite3.Error:
                pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the campaign")


def test_sigkill_then_resume(tmp_path):
    path = tmp_path / "k.db"
    db = f"sqlite:///{path}"
    p = start(db, "--name", "k", "--execs", "10000000", "--seed", "3", cwd=tmp_path)
    try:
        wait_for(path, lambda c: c["corpus"] >= 40 and c["crashes"] >= 5)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    killed = counts(path)
    assert killed["status"] == "running"                       # it never got to say
    assert killed["bug_counts_match"] == 0                     # no half-written batch
    con = sqlite3.connect(path)
    for (text,) in con.execute("select input from corpus_entries"):
        json.loads(text)["schedule"]                            # every row is whole
    con.close()
    r = subprocess.run([sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0", "--db",
                        db, "--resume", "k", "--execs", "1500", "--json"], cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    after = counts(path)
    assert after["status"] == "finished"
    for key in ("corpus", "crashes", "stats"):
        assert after[key] >= killed[key], key                 # nothing stored was lost
    assert after["executions"] == killed["executions"] + 1500
    assert after["bug_counts_match"] == 0
    out = json.loads(r.stdout)
    assert out["store"]["campaign"] == "k" and out["store"]["status"] == "finished"


def test_sigterm_stops_cleanly_and_resume_continues(tmp_path):
    path = tmp_path / "t.db"
    db = f"sqlite:///{path}"
    p = start(db, "--name", "k", "--execs", "10000000", cwd=tmp_path)
    wait_for(path, lambda c: c["stats"] >= 3)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "continue with --resume k" in err
    assert counts(path)["status"] == "stopped"
    r = subprocess.run([sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0", "--db",
                        db, "--resume", "k", "--execs", "300"], cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert counts(path)["status"] == "finished"


def test_resume_of_an_unknown_campaign_is_one_line(tmp_path):
    path = tmp_path / "u.db"
    p = start(f"sqlite:///{path}", "--name", "k", "--execs", "50", cwd=tmp_path)
    assert p.wait(timeout=120) == 0
    r = subprocess.run([sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0", "--db",
                        f"sqlite:///{path}", "--resume", "nope", "--execs", "10"],
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
