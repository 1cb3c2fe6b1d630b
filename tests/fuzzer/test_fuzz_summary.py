"""What fuzz shows a person: progress with a total, a bar and the time left on a terminal
(issue 11 item 24); after --resume, rates of this run and the campaign's totals (item 19);
one count of bugs in the summary, 'campaigns' and 'bugs' (item 14)."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys


def _fuzz(*args, tty=False, cwd=None):
    cmd = [sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0", *args]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, cwd=cwd)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    p.wait(timeout=60)
    os.close(master)
    return subprocess.CompletedProcess(cmd, p.returncode, out.decode(), err.decode())


def test_a_terminal_sees_the_total_a_bar_and_the_time_left(tmp_path):
    p = _fuzz("--execs", "6000", "--no-db", "--no-minimize", "--out", str(tmp_path),
              tty=True)
    assert p.returncode == 0, p.stderr[-500:]
    lines = [x for x in re.split(r"[\r\n]", p.stderr) if "execs" in x]
    assert lines, p.stderr[-500:]
    assert any(re.search(r"\[#*\s*\]\s+\d+% \d+/6000 execs, .* left", x) for x in lines), lines


def test_a_log_file_sees_plain_lines_with_the_share_done(tmp_path):
    p = _fuzz("--duration", "6", "--no-db", "--no-minimize", "--out", str(tmp_path))
    assert p.returncode == 0
    assert re.search(r"^\[\d+s\] \d+ execs, .*\(\d+%, 0:0\d left\)$", p.stderr, re.M), p.stderr


def test_resume_reports_this_runs_rate_and_the_campaigns_totals(tmp_path):
    db = f"sqlite:///{tmp_path}/r.db"
    a = _fuzz("--execs", "1500", "--seed", "3", "--db", db, "--name", "r", "--no-minimize",
              "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    b = _fuzz("--resume", "r", "--execs", "1500", "--db", db, "--no-minimize",
              "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    head = b.stdout.splitlines()[0]
    m = re.match(r"(\d+) executions on v5.16 \((\d+) in this run\) in ([\d.]+) s "
                 r"\((\d+)/s fuzzing\)", head)
    assert m and m[1] == "3000" and m[2] == "1500", head
    if "bug(s)" in head and not head.endswith(" 0 bug(s)"):
        assert "first (this run)" in b.stdout


def test_one_count_of_bugs_in_fuzz_campaigns_and_bugs(tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    p = _fuzz("--execs", "2500", "--seed", "1", "--db", db, "--name", "c", "--json",
              "--no-minimize", "--out", str(tmp_path / "o"))
    store = json.loads(p.stdout)["store"]
    run = lambda *a: json.loads(subprocess.run(  # noqa: E731
        [sys.executable, "-m", "migfuzz", *a, "--db", db, "--json"], capture_output=True,
        text=True, timeout=120).stdout)
    camp = next(c for c in run("campaigns") if c["name"] == "c")
    bugs = run("bugs", "--campaign", "c")
    assert store["bugs"] > 0
    assert camp["bugs"] == store["bugs"] == len(bugs)
    assert camp["duplicates"] == store["duplicates"]
