"""End to end: fuzz a v5.16 campaign into a fresh database, then list, show, replay,
minimize, triage, bisect and export its LOST_WRITE and USE_AFTER_FREE bugs from the CLI."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def migfuzz(*args, env=None, cwd=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=e, timeout=600)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    db = f"sqlite:///{d}/fuzz.db"
    r = migfuzz("fuzz", "--workers", "0", "--db", db, "--name", "e2e", "--variant", "v5.16",
                "--execs", "3000", "--seed", "1", "--out", str(d / "repros"), "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    bugs = json.loads(migfuzz("bugs", "--db", db, "--json").stdout)
    every = json.loads(migfuzz("bugs", "--db", db, "--json", "--all").stdout)
    # the campaign's summary counts what 'migfuzz bugs' lists, duplicates apart
    stored = json.loads(r.stdout)["store"]
    assert (stored["bugs"], stored["duplicates"]) == (len(bugs), len(every) - len(bugs))
    by_kind = {}
    for b in bugs:
        by_kind.setdefault(b["kind"], b)
    assert {"LOST_WRITE", "USE_AFTER_FREE"} <= set(by_kind), [b["title"] for b in bugs]
    return {"db": db, "dir": d, "bugs": bugs, "by_kind": by_kind}


KINDS = ["LOST_WRITE", "USE_AFTER_FREE"]


@pytest.mark.parametrize("kind", KINDS)
def test_show_replay_minimize(campaign, kind):
    db, sig = campaign["db"], campaign["by_kind"][kind]["signature"]
    out = json.loads(migfuzz("show", sig, "--db", db, "--json").stdout)
    assert out["signature"] == sig and out["kind"] == kind and out["trace"]
    assert out["audit"], "the involved page's audit log"
    rep = migfuzz("replay", sig, "--db", db, "--json")
    assert rep.returncode == 0 and json.loads(rep.stdout)["reproduced"] is True
    other = migfuzz("replay", sig, "--db", db, "--variant", "v6.1", "--json")
    assert other.returncode == 1 and json.loads(other.stdout)["reproduced"] is False
    m = migfuzz("minimize", sig, "--db", db, "--json", "--budget", "500")
    assert m.returncode == 0, m.stderr
    mj = json.loads(m.stdout)
    assert mj["after"]["actors"] <= 3 and mj["reliability"] == "3/3"
    bug = next(b for b in json.loads(migfuzz("bugs", "--db", db, "--json").stdout)
               if b["signature"] == sig)
    assert bug["repro_attempts"] >= 3 and bug["reliability"] == 1.0
    # the minimized reproducer still replays exactly
    assert migfuzz("replay", sig, "--db", db).returncode == 0


FIX = {"LOST_WRITE": {"absent when dirty_to_page is on", "absent when flush_under_ptl is on"},
       "USE_AFTER_FREE": {"absent when dp_fault_pins is on"}}


@pytest.mark.parametrize("kind", KINDS)
def test_bisect_names_the_fix(campaign, kind):
    sig = campaign["by_kind"][kind]["signature"]
    out = json.loads(migfuzz("bisect", sig, "--db", campaign["db"], "--json",
                             "--budget", "200").stdout)
    assert set(out["fixed_by"]) & FIX[kind], out["fixed_by"]
    assert {v["variant"]: v["present"] for v in out["variants"]}["v6.1"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_export_fails_on_v516_passes_on_v61(campaign, kind, tmp_path):
    sig = campaign["by_kind"][kind]["signature"]
    f = tmp_path / f"test_{kind.lower()}.py"
    assert migfuzz("export", sig, "--db", campaign["db"], "-o", str(f)).returncode == 0

    def run(variant):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(f)], capture_output=True, text=True, cwd=tmp_path,
                              env=dict(os.environ, PYTHONPATH=str(ROOT),
                                       MIGFUZZ_VARIANT=variant), timeout=300)
    assert run("v5.16").returncode == 1
    assert run("v6.1").returncode == 0


def test_triage_lifecycle(campaign):
    db = campaign["db"]
    sig = campaign["by_kind"]["USE_AFTER_FREE"]["signature"]
    # marking it fixed where it still reproduces is refused, and nothing changes
    r = migfuzz("triage", sig, "--db", db, "--status", "fixed", "--fixed-in", "v5.16")
    assert r.returncode == 1 and "still reproduces on v5.16" in r.stderr
    def status():
        return next(b["status"] for b in
                    json.loads(migfuzz("bugs", "--db", db, "--json", "--all").stdout)
                    if b["signature"] == sig)
    assert status() == "new"
    note = "<script>alert(1)</script> seen on <b>v5.16</b>"
    r = migfuzz("triage", sig, "--db", db, "--status", "triaged", "--note", note,
                "--label", "uaf", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "triaged"
    r = migfuzz("triage", sig, "--db", db, "--status", "fixed", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "fixed"
    bug = next(b for b in json.loads(migfuzz("bugs", "--db", db, "--json", "--all").stdout)
               if b["signature"] == sig)
    assert status() == "fixed" and note in bug["notes"] and bug["labels"] == ["uaf"]
    lw = campaign["by_kind"]["LOST_WRITE"]["signature"]
    r = migfuzz("triage", lw, "--db", db, "--dup-of", sig, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["duplicate_of"] == sig
    assert all(b["signature"] != lw for b in
               json.loads(migfuzz("bugs", "--db", db, "--json").stdout))


CHILD = r"""
import json, sys
from migfuzz.db.store import Store
from migfuzz.fuzzer.execute import replay
st = Store.open(sys.argv[1], upgrade=False)
bad = []
n = 0
for c in st.list_crashes(campaign="e2e"):
    if c["kind"] == "POTENTIAL_DEADLOCK":
        continue
    inp = c["input"]
    r = replay(inp["scenario"], inp["variant"], inp["schedule"])
    n += 1
    if r.trace_hash != c["trace_hash"] or c["signature"] not in [f.signature for f in r.findings]:
        bad.append(c["input_hash"])
print(json.dumps({"replayed": n, "bad": bad}))
"""


def test_every_stored_crash_replays_in_a_fresh_process(campaign):
    """Determinism over a whole campaign: another process, another PYTHONHASHSEED, the
    same trace hash and signature for every crash."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="4242")
    out = subprocess.run([sys.executable, "-c", CHILD, campaign["db"]], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["replayed"] >= 10 and res["bad"] == []


def test_bad_references_are_one_line_and_write_nothing(campaign, tmp_path):
    db = campaign["db"]
    path = db[len("sqlite:///"):]
    before = Path(path).read_bytes()
    for args, msg in [(["show", "NOPE-123", "--db", db], "no such bug"),
                      (["replay", "c:abcdef", "--db", db], "no such crash"),
                      (["triage", "NOPE", "--db", db, "--status", "fixed"], "no such bug"),
                      (["bugs", "--db", f"sqlite:///{tmp_path}/missing.db"], "no database at")]:
        r = migfuzz(*args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "missing.db").exists()
    assert Path(path).read_bytes() == before
    # a database of a newer schema is refused by every triage command
    newer = tmp_path / "newer.db"
    newer.write_bytes(before)
    con = sqlite3.connect(newer)
    con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    con.commit()
    con.close()
    for args in (["bugs"], ["show", campaign["by_kind"]["LOST_WRITE"]["signature"]]):
        r = migfuzz(*args, "--db", f"sqlite:///{newer}")
        assert r.returncode == 2 and "newer than this migfuzz" in r.stderr, r.stderr
