"""The farm on a local Ray instance (one for the module, loopback only): two workers find
the known v5.16 bugs; a worker killed with SIGKILL is restarted, its batch re-run, and every
finding is stored once even when each store write is done twice; SIGTERM stops a campaign
as 'stopped' and --resume continues it."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from farmutil import check_stored_once, run, session
from migfuzz.cli import main
from migfuzz.workers.runtime import ray_session


@pytest.fixture(scope="module")
def ray():
    # 2 workers + 1 CPU for background minimization (as `migfuzz fuzz` starts it)
    with ray_session(num_cpus=3) as r:
        yield r


def test_two_workers_find_the_v516_bugs(ray, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'farm.db'}"
    rc = main(["fuzz", "--workers", "2", "--db", url, "--name", "two", "--seed", "1",
               "--scenario", "dp-fault-race", "--scenario", "dirty-page", "--execs", "1500",
               "--out", str(tmp_path / "repros"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["executions"] == 1500 and out["config"]["workers"] == 2
    ws = out["stats"]["workers"]
    assert set(ws) == {"w0", "w1"} and all(w["executions"] > 0 for w in ws.values())
    found = {(b["kind"], s) for b in out["buckets"] for s in b["scenarios"]}
    assert ("USE_AFTER_FREE", "dp-fault-race") in found, found
    assert ("LOST_WRITE", "dirty-page") in found, found
    # minimized in the background, on Ray, and the reproducers replay
    for b in out["buckets"]:
        assert b["minimized"] and "scenario" in b["minimized"], b
        rc = main(["replay", b["repro_path"], "--json"])
        assert rc == 0 and json.loads(capsys.readouterr().out)["reproduced"] is True
    st = check_stored_once(url, "two")
    assert st["status"] == "finished" and st["executions"] == 1500
    assert set(st["workers"]) == {"w0", "w1"}
    assert {"USE_AFTER_FREE", "LOST_WRITE"} <= set(st["kinds"])
    assert out["store"]["crashes"] == st["crashes"]


class _Twice:
    """A recorder whose every transaction is committed twice (a retried write whose
    acknowledgement was lost): the store must not count anything twice."""

    def __init__(self, rec):
        self.rec = rec

    def __getattr__(self, k):
        return getattr(self.rec, k)

    def __setattr__(self, k, v):
        if k == "rec":
            object.__setattr__(self, k, v)
        else:
            setattr(self.rec, k, v)

    def record_many(self, items, buckets):
        self.rec.record_many(items, buckets)
        return self.rec.record_many(items, buckets)


def test_sigkilled_worker_restarts_and_findings_are_stored_once(ray, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    sess = session(url, "kill", ["dp-fault-race", "dirty-page"])
    sess.recorder = _Twice(sess.recorder)
    killed = {}
    logs = []

    def progress(st):
        w1 = st["workers"][1]
        if not killed and w1["executions"] >= 200 and w1["pid"]:
            os.kill(w1["pid"], signal.SIGKILL)      # mid-campaign: its next batch is running
            killed["pid"] = w1["pid"]

    try:
        res, farm = run(ray, sess, 2, 3000, progress=progress, log=logs.append)
    finally:
        sess.close()
    w1 = farm.coord.workers[1]
    assert killed and w1.restarts >= 1 and w1.pid != killed["pid"], (killed, logs)
    assert any("restarted" in m for m in logs), logs
    assert res.executions == 3000                  # the lost batch was run again
    st = check_stored_once(url, "kill")
    assert st["status"] == "finished" and st["executions"] == 3000
    assert {"USE_AFTER_FREE", "LOST_WRITE"} <= set(st["kinds"])
    # every bucket the coordinator made is a stored bug
    assert {b.signature for b in res.buckets} <= set(st["signatures"])


def test_sigterm_stops_the_campaign_and_resume_continues(ray, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    argv = ["fuzz", "--workers", "2", "--db", url, "--seed", "3", "--scenario",
            "dp-fault-race", "--out", str(tmp_path / "r"), "--no-minimize", "--json"]

    def term_when_stored():
        from migfuzz.db.store import Store
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with Store.open(url) as s:
                    if s.load_campaign_state("stop").executions >= 500:
                        break
            except Exception:        # noqa: BLE001 - not created yet
                continue
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=term_when_stored, daemon=True)
    t.start()
    rc = main(argv + ["--name", "stop", "--execs", "1000000"])
    t.join()
    out = json.loads(capsys.readouterr().out)
    assert rc == 130 and out["store"]["status"] == "stopped"
    first = check_stored_once(url, "stop")
    assert first["status"] == "stopped"
    assert 500 <= first["executions"] == out["executions"] < 1000000
    rc = main(["fuzz", "--workers", "2", "--db", url, "--resume", "stop", "--execs", "600",
               "--no-minimize", "--out", str(tmp_path / "r"), "--json"])
    out2 = json.loads(capsys.readouterr().out)
    assert rc == 0 and out2["store"]["status"] == "finished"
    second = check_stored_once(url, "stop")
    assert second["executions"] == first["executions"] + 600 == out2["executions"]
    assert second["corpus"] >= first["corpus"]
