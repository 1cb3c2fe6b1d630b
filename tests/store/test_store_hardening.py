"""Issue 11, items 4-7 and 15: a damaged, read-only, archived, missing or empty database
gets one clear line and exit 2 from every command that cannot use it (and reading commands
read an archived database where it lies), nothing written or left behind; default campaign
names never collide; a resume's claim on a campaign is atomic.

Read-only files and directories mean nothing to root, so those commands run in a child
process without CAP_DAC_OVERRIDE (``setpriv``) when the tests run as root."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migfuzz.db.errors import StoreError
from migfuzz.db.store import Store
from migfuzz.cli import main

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "seed"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """A real campaign (so 'show' has a reproducer to replay), stored once."""
    d = tmp_path_factory.mktemp("made")
    path = d / "m.db"
    rc = main(["fuzz", "--workers", "0", "--variant", "v5.16", "--execs", "1500", "--seed",
               "1", "--db", f"sqlite:///{path}", "--name", CAMPAIGN, "--no-minimize",
               "--out", str(d / "repros"), "--json"])
    assert rc in (0, 1)
    c = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        bug = c.execute("SELECT signature FROM bugs WHERE status != 'duplicate' "
                        "ORDER BY first_seen LIMIT 1").fetchone()[0]
    finally:
        c.close()
    corpus = d / "corpus.jsonl"
    assert main(["corpus", "export", "--name", CAMPAIGN, "-o", str(corpus), "--db",
                 str(path)]) == 0
    assert not any(n.endswith(("-wal", "-shm")) for n in os.listdir(d))
    return {"path": path, "bug": bug, "corpus": corpus}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)            # fuzz's reproducer files, if any, land there


@pytest.fixture
def db(made, tmp_path) -> Path:
    """A copy of the made database alone in a directory of its own."""
    d = tmp_path / "dbdir"
    d.mkdir()
    p = d / "a.db"
    shutil.copy(made["path"], p)
    return p


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


UNPRIV: list[str] = []
if os.geteuid() == 0:
    UNPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def run_unprivileged(*argv, cwd) -> subprocess.CompletedProcess:
    """The CLI in a child process that file permissions apply to (root or not)."""
    if UNPRIV and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([*UNPRIV, sys.executable, "-m", "migfuzz", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def reading_commands(path, bug, out_dir) -> list[list[str]]:
    url = str(path)
    return [["campaigns", "--db", url], ["db", "status", "--db", url],
            ["bugs", "--db", url], ["show", bug, "--db", url],
            ["corpus", "export", "--name", CAMPAIGN, "-o", str(out_dir / "c.jsonl"),
             "--db", url]]


def writing_commands(path, bug, corpus_file) -> list[list[str]]:
    url = str(path)
    return [["triage", bug, "--note", "hi", "--db", url],
            ["fuzz", "--workers", "0", "--execs", "5", "--no-minimize", "--db", url],
            ["fuzz", "--workers", "0", "--execs", "5", "--resume", CAMPAIGN, "--db", url],
            ["corpus", "import", str(corpus_file), "--name", "imported", "--db", url],
            ["db", "upgrade", "--db", url]]


def listing(d: Path) -> list[str]:
    return sorted(os.listdir(d))


# ------------------------------------------------------------------ item 4: damaged file
def _damage(path: Path, how: str) -> None:
    b = bytearray(path.read_bytes())
    r = random.Random(4)
    if how == "header":
        start, n = 0, 2000
    elif how == "page-1":
        start, n = 100, 2000                    # the schema page, after the file header
    else:
        start, n = 4096 * 3, 2000               # inside a table's page
    for i in range(start, start + n):
        b[i] = r.randrange(256)
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("how", ["header", "page-1", "page-3"])
def test_damaged_file_one_line_every_command(db, made, tmp_path, capsys, how):
    _damage(db, how)
    before = db.read_bytes()
    corpus = made["corpus"]
    cmds = (reading_commands(db, made["bug"], tmp_path)
            + writing_commands(db, made["bug"], corpus)
            + [["minimize", made["bug"], "--budget", "5", "--db", str(db)]])
    for argv in cmds:
        rc, out, err = cli(capsys, *argv)
        assert rc == 2, (argv, out, err)
        line = _one_line(err)
        assert str(db) in line and "damaged" in line, (argv, line)
        assert listing(db.parent) == ["a.db"], argv
    assert db.read_bytes() == before
    assert not (tmp_path / "c.jsonl").exists()


def test_damaged_file_api(db, how="page-3"):
    from migfuzz.dashboards.readonly import open_readonly       # the dashboard's opener
    _damage(db, how)
    for opener in (Store.open, Store.open_readonly, open_readonly):
        with pytest.raises(StoreError, match="damaged"):
            opener(f"sqlite:///{db}")
    assert listing(db.parent) == ["a.db"]


# ------------------------------------------------------------------ item 5: read-only file
def test_read_only_file(db, made, tmp_path):
    corpus = made["corpus"]
    before = db.read_bytes()
    db.chmod(0o444)
    for argv in writing_commands(db, made["bug"], corpus):
        p = run_unprivileged(*argv, cwd=tmp_path)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        line = _one_line(p.stderr)
        assert str(db) in line and "read-only" in line, (argv, line)
        assert listing(db.parent) == ["a.db"], argv          # no -wal / -shm left
    for argv in reading_commands(db, made["bug"], tmp_path):
        p = run_unprivileged(*argv, cwd=tmp_path)
        assert p.returncode == 0, (argv, p.stderr)
        assert listing(db.parent) == ["a.db"], argv
    assert db.read_bytes() == before


# ------------------------------------------------------------ item 6: read-only directory
def test_read_only_directory_reading_commands(db, made, tmp_path):
    before = db.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    db.parent.chmod(0o555)
    try:
        for argv in reading_commands(db, made["bug"], out):
            p = run_unprivileged(*argv, cwd=tmp_path)
            assert p.returncode == 0, (argv, p.stderr)
            assert "Traceback" not in p.stderr
        p = run_unprivileged("bugs", "--db", str(db), "--json", cwd=tmp_path)
        assert made["bug"] in {b["signature"] for b in json.loads(p.stdout)}
        p = run_unprivileged("campaigns", "--db", str(db), "--json", cwd=tmp_path)
        assert [c["name"] for c in json.loads(p.stdout)] == [CAMPAIGN]
        assert len((out / "c.jsonl").read_text().splitlines()) > 1
        # the read-only dashboard opens it too
        p = subprocess.run(
            [*UNPRIV, sys.executable, "-c",
             "import sys; from dashboards.readonly import open_readonly\n"
             "st = open_readonly(sys.argv[1]); print(len(st.list_bugs(campaign='seed')))",
             f"sqlite:///{db}"], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and int(p.stdout) >= 1, p.stderr
        # a writing command: one line, nothing created
        p = run_unprivileged("triage", made["bug"], "--note", "x", "--db", str(db),
                             cwd=tmp_path)
        assert p.returncode == 2 and "read-only directory" in _one_line(p.stderr)
        assert listing(db.parent) == ["a.db"]
    finally:
        db.parent.chmod(0o755)
    assert db.read_bytes() == before


def test_read_only_directory_with_a_write_ahead_log(db, tmp_path):
    """A database archived with its -wal (the writer was killed): the log's commits are
    read, not ignored."""
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(db, live / "a.db")
    c = sqlite3.connect(live / "a.db")
    c.execute("PRAGMA wal_autocheckpoint=0")
    c.execute("UPDATE bugs SET notes = 'only in the log'")
    c.commit()
    arch = tmp_path / "arch"
    arch.mkdir()
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(live / f"a.db{suffix}", arch / f"a.db{suffix}")
    c.close()
    assert (arch / "a.db-wal").stat().st_size > 0
    arch.chmod(0o555)
    try:
        p = run_unprivileged("bugs", "--db", str(arch / "a.db"), "--json", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert {b["notes"] for b in json.loads(p.stdout)} == {"only in the log"}
    finally:
        arch.chmod(0o755)


# ------------------------------------------------------------ item 7: missing, empty
def test_missing_database_refused(made, tmp_path, capsys):
    path = tmp_path / "nonexist.db"
    for argv in reading_commands(path, made["bug"], tmp_path) + [
            ["triage", made["bug"], "--note", "x", "--db", str(path)],
            ["minimize", made["bug"], "--db", str(path)],
            ["fuzz", "--workers", "0", "--execs", "5", "--resume", CAMPAIGN,
             "--db", str(path)]]:
        rc, out, err = cli(capsys, *argv)
        assert rc == 2, (argv, out, err)
        assert "no database at" in _one_line(err) and str(path) in err, argv
        assert listing(tmp_path) == [], argv


def test_empty_file_refused_by_commands_that_need_a_database(made, tmp_path, capsys):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    for argv in reading_commands(path, made["bug"], tmp_path) + [
            ["triage", made["bug"], "--note", "x", "--db", str(path)],
            ["fuzz", "--workers", "0", "--execs", "5", "--resume", CAMPAIGN,
             "--db", str(path)]]:
        rc, out, err = cli(capsys, *argv)
        assert rc == 2, (argv, out, err)
        assert "empty (0 bytes)" in _one_line(err), argv
        assert listing(tmp_path) == ["empty.db"] and path.stat().st_size == 0, argv
    # a command that creates a database treats a 0-byte file as a new one
    rc, _, err = cli(capsys, "db", "upgrade", "--db", str(path))
    assert rc == 0, err
    rc, out, _ = cli(capsys, "campaigns", "--db", str(path))
    assert rc == 0 and "no campaigns" in out


def test_postgres_empty_or_missing_database_refused_by_reading_commands(pg_url, capsys):
    """An empty PostgreSQL database is not given migfuzz's tables by a reading command; a
    database that does not exist is one line."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    for argv in (["campaigns"], ["db", "status"], ["bugs"],
                 ["corpus", "export", "--name", "x"]):
        rc, out, err = cli(capsys, *argv, "--db", pg_url)
        assert rc == 2, (argv, out, err)
        assert "no migfuzz schema" in _one_line(err), argv
    eng = create_engine(pg_url)
    try:
        assert inspect(eng).get_table_names() == []
    finally:
        eng.dispose()
    u = make_url(pg_url)
    gone = u.set(database=u.database + "_gone").render_as_string(hide_password=False)
    rc, _, err = cli(capsys, "campaigns", "--db", gone)
    assert rc == 2 and "does not exist" in _one_line(err)


# ------------------------------------------------------------ item 15: default names
def test_default_names_do_not_collide(tmp_path, monkeypatch):
    """Two campaigns started in the same second, each not seeing the other's row yet
    (the race two processes have): different names, both stored."""
    from migfuzz.fuzzer.search.loop import FuzzConfig
    from migfuzz import session as S
    from migfuzz.corpus.builtin import get_scenario
    url = f"sqlite:///{tmp_path / 'n.db'}"
    frozen = time.gmtime(1_800_000_000)
    monkeypatch.setattr(S.time, "gmtime", lambda *a: frozen)
    monkeypatch.setattr(Store, "list_campaigns", lambda self: [])
    cfg = FuzzConfig("v5.16", [get_scenario("migrate-multiple")], "random", False)
    a = S.CampaignSession.new(cfg, 1, db=url, name=None, no_db=False)
    b = S.CampaignSession.new(cfg, 2, db=url, name=None, no_db=False)
    try:
        assert a.name != b.name
        assert a.name.startswith("fuzz-v5.16-20270115-") and b.name.startswith(
            "fuzz-v5.16-20270115-")
    finally:
        a.close()
        b.close()
    # even a drawn suffix that is taken is drawn again (the unique index decides)
    draws = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    real = S.secrets.token_hex
    monkeypatch.setattr(S.secrets, "token_hex", lambda n: next(draws) if n == 3 else real(n))
    c = S.CampaignSession.new(cfg, 3, db=url, name=None, no_db=False)
    d = S.CampaignSession.new(cfg, 4, db=url, name=None, no_db=False)
    try:
        assert (c.name, d.name) == ("fuzz-v5.16-20270115-080000-aaaaaa",
                                    "fuzz-v5.16-20270115-080000-bbbbbb")
    finally:
        c.close()
        d.close()
    # a name the user gave is never changed
    with pytest.raises(StoreError, match="already exists"):
        S.CampaignSession.new(cfg, 5, db=url, name=c.name, no_db=False)


# ------------------------------------------------------------ item 16: one writer, atomic
def test_claim_is_atomic(db_url):
    """Two resumers that both saw the campaign stale: exactly one claim wins."""
    with Store.open(db_url) as setup:
        setup.create_campaign("c", "v5.16")
        setup.set_campaign_status("c", "running")
        from sqlalchemy import update
        from migfuzz.db.models import Campaign as Row
        with setup.engine.begin() as conn:      # a dead owner on another host
            conn.execute(update(Row).values(owner="elsewhere:1:dead", heartbeat_at=1.0))
    a, b = Store.open(db_url), Store.open(db_url)
    try:
        seen = b.campaign("c")                   # b reads before a claims
        a.claim_campaign("c")
        b.campaign = lambda name: seen           # ... and decides on what it read
        with pytest.raises(StoreError, match="claimed by another process"):
            b.claim_campaign("c")
        del b.campaign
        owner = a.campaign("c").owner
        assert owner and owner != "elsewhere:1:dead" and owner == a._owned["c"]
        # the loser writes nothing; the winner's writes go on
        with pytest.raises(StoreError, match="is running"):
            b.claim_campaign("c")                # now it sees a live owner
        a.write_batch("c", stats=[{"worker": "local", "t": 1.0, "executions": 1}])
    finally:
        a.close()
        b.close()


def test_taken_over_writer_stops(db_url):
    """A writer whose campaign another process took over (it was silent too long) can
    no longer write it: its batch fails whole."""
    with Store.open(db_url) as a, Store.open(db_url) as b:
        a.create_campaign("c", "v5.16", own=True)
        from sqlalchemy import update
        from migfuzz.db.models import Campaign as Row
        with a.engine.begin() as conn:          # as if a's owner had gone silent elsewhere
            conn.execute(update(Row).values(owner="elsewhere:1:old", heartbeat_at=1.0))
        a._owned["c"] = "elsewhere:1:old"
        b.claim_campaign("c")
        with pytest.raises(StoreError, match="taken over"):
            a.write_batch("c", stats=[{"worker": "local", "t": 5.0, "executions": 9}])
        assert b.load_campaign_state("c").executions == 0
        assert a.heartbeat("c") is False


def test_heartbeat_on_writes_and_between_them(db_url, monkeypatch):
    from migfuzz.db import liveness
    monkeypatch.setattr(liveness, "HEARTBEAT_EVERY", 0.05)
    with Store.open(db_url) as st:
        st.create_campaign("c", "v5.16", own=True)
        first = st.campaign("c").heartbeat_at
        owner = st.campaign("c").owner
        host, pid, token = liveness.parse(owner)
        assert host == liveness.HOST and pid == os.getpid() and token
        deadline = time.time() + 10
        while st.campaign("c").heartbeat_at == first and time.time() < deadline:
            time.sleep(0.05)
        assert st.campaign("c").heartbeat_at > first          # the thread beats
        st.set_campaign_status("c", "stopped")
        t = st.campaign("c").heartbeat_at
        time.sleep(0.3)
        assert st.campaign("c").heartbeat_at == t             # ... until it ends
    with Store.open(db_url) as st:
        st.claim_campaign("c")
        t = st.campaign("c").heartbeat_at
        time.sleep(0.01)
        st.write_batch("c", stats=[{"worker": "local", "t": 1.0, "executions": 1}])
        assert st.campaign("c").heartbeat_at > t              # every batch write beats


def test_failed_resume_gives_the_campaign_back(tmp_path):
    """A resume refused after its claim (the campaign's engine version is another) leaves
    the campaign as it was: status, end time, owner."""
    from migfuzz.session import CampaignSession
    url = f"sqlite:///{tmp_path / 'v.db'}"
    with Store.open(url) as st:
        st.create_campaign("old", "v5.16", {"variant": "v5.16"}, 1, engine_version="0")
        st.set_campaign_status("old", "stopped")
        before = st.campaign("old")
    with pytest.raises(StoreError, match="engine version 0"):
        CampaignSession.resume(db=url, name="old")
    with Store.open_readonly(url) as st:
        after = st.campaign("old")
    assert (after.status, after.ended_at, after.owner) == ("stopped", before.ended_at, None)
