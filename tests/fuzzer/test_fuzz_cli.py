"""``migfuzz fuzz``: output, determinism, reproducer files that replay, user errors."""
from __future__ import annotations

import json
import os

from migfuzz.cli import main


def _fuzz(capsys, *argv):
    rc = main(["fuzz", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_is_deterministic_and_repros_replay(tmp_path, capsys):
    args = ["--workers", "0", "--execs", "800", "--seed", "1", "--json", "--out", str(tmp_path / "r"),
            "--no-db"]
    rc, out, _ = _fuzz(capsys, *args)
    assert rc == 0
    a = json.loads(out)
    assert a["executions"] == 800 and a["buckets"]
    rc, out, _ = _fuzz(capsys, *args)
    b = json.loads(out)
    strip = lambda d: json.dumps({k: v for k, v in d.items() if k != "seconds"} | {
        "stats": {k: v for k, v in d["stats"].items() if k != "seconds"}}, sort_keys=True)
    assert strip(a) == strip(b)
    for bk in a["buckets"]:
        path = bk["repro_path"]
        assert os.path.exists(path)
        if bk["kind"] == "POTENTIAL_DEADLOCK":
            continue
        rc = main(["replay", path, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0 and out["reproduced"] is True, (path, out)


def test_table_and_fail_on_finding(tmp_path, capsys):
    rc, out, _ = _fuzz(capsys, "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
                       "--out", str(tmp_path), "--fail-on-finding", "--no-db")
    assert rc == 1
    assert "USE_AFTER_FREE" in out and "reproducer" in out and str(tmp_path) in out


def test_exhaustive_mode(capsys):
    rc, out, _ = _fuzz(capsys, "--workers", "0", "--variant", "v6.1", "--scenario", "cross-mm-opposite",
                       "--strategy", "exhaustive", "--bound", "2", "--no-db")
    assert rc == 0 and "no finding within 2 preemption(s): all 250 schedules run" in out


def test_workers_other_than_zero_is_a_usage_error(capsys):
    rc, _, err = _fuzz(capsys, "--workers", "-1", "--execs", "10")
    assert rc == 2 and "--workers must be 0" in err
    rc, _, err = _fuzz(capsys, "--workers", "0", "--execs", "0")
    assert rc == 2
    rc, _, err = _fuzz(capsys, "--workers", "0", "--scenario", "no-such", "--execs", "10")
    assert rc == 2 and "unknown scenario" in err


def test_store_keeps_at_most_max_crashes_per_bug_rows(tmp_path, capsys):
    from migfuzz.db.store import Store

    def campaign(cap: int):
        db = f"sqlite:///{tmp_path / f'cap{cap}.db'}"
        rc, _, _ = _fuzz(capsys, "--workers", "0", "--scenario", "dp-fault-race", "--execs",
                         "400", "--seed", "3", "--out", str(tmp_path / "r"), "--db", db,
                         "--max-crashes-per-bug", str(cap), "--json")
        assert rc == 0
        with Store.open(db) as st:
            bugs = st.list_bugs(kind="USE_AFTER_FREE")
            assert len(bugs) == 1
            return st.counts()["crashes"], bugs[0].count, bugs[0].reproducer_steps

    rows, hits, smallest = campaign(1000)
    assert rows == hits > 3                  # without the cap: a row per distinct input
    # with it: three rows, the count equal to them, the same smallest reproducer
    assert campaign(3) == (3, 3, smallest)
    rc, _, err = _fuzz(capsys, "--workers", "0", "--execs", "1", "--no-db",
                       "--max-crashes-per-bug", "0")
    assert rc == 2 and "at least 1" in err


def test_check_determinism_fails_the_campaign(tmp_path, capsys, monkeypatch):
    from migfuzz.db.store import Store
    from migfuzz.fuzzer.kernel.state import Kernel
    db = f"sqlite:///{tmp_path / 'det.db'}"
    args = ["--workers", "0", "--execs", "300", "--seed", "1", "--out", str(tmp_path / "r"),
            "--check-determinism", "--db", db]
    rc, _, _ = _fuzz(capsys, *args, "--name", "ok")
    assert rc == 0
    init = Kernel.__init__
    built = [0]

    def leaky(self, *a, **kw):             # page numbers depend on earlier executions
        init(self, *a, **kw)
        built[0] += 1
        self.next_pfn += built[0] % 2

    monkeypatch.setattr(Kernel, "__init__", leaky)
    rc, _, err = _fuzz(capsys, *args, "--name", "leaky")
    assert rc == 3 and "nondeterministic execution" in err
    with Store.open(db) as st:
        status = {c["name"]: c["status"] for c in st.list_campaigns()}
    assert status == {"ok": "finished", "leaky": "failed"}
    rc, _, err = _fuzz(capsys, "--workers", "2", "--execs", "1", "--check-determinism", "--no-db")
    assert rc == 2 and "--workers 0" in err
