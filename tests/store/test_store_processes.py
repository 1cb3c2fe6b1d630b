"""Real processes against one store, on both backends: two concurrent writers of the same
findings, and a writer killed with SIGKILL in the middle of its batches."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import store_writer as W

from migfuzz.corpus import input as inputs
from migfuzz.db.store import Store

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    return subprocess.Popen([sys.executable, str(HERE / "store_writer.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def test_two_writers_same_findings(db_url, tmp_path):
    go = tmp_path / "go"
    # both open a fresh database at once: the first migration and the campaign race too
    procs = [_spawn("concurrent", db_url, "camp", f"w{k}", str(go), str(k)) for k in (0, 1)]
    time.sleep(0.5)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))

    # what the writers reported, as a whole
    expected = {}
    for k, w in enumerate(("w0", "w1")):
        for c in W.shared_crashes(w) + W.own_crashes(w, k):
            expected.setdefault((inputs.content_hash(c["input"]), c["signature"]), c)
    reported = [tuple(x) for o in outs for x in o["new"]]
    assert sorted(reported) == sorted(expected)          # each crash stored exactly once
    assert sum(o["added"] for o in outs) == len(expected)
    new_bugs = [s for o in outs for s in o["new_bugs"]]
    assert sorted(new_bugs) == sorted({s for _, s in expected})   # each bug created once

    st = Store.open(db_url)
    try:
        counts = st.counts()
        assert counts["campaigns"] == 1
        assert counts["crashes"] == len(expected)
        bugs = st.list_bugs()
        assert len(bugs) == counts["bugs"] == W.NSIG
        per_sig = {}
        for (_, s), c in expected.items():
            per_sig.setdefault(s, []).append(c)
        for b in bugs:
            cs = per_sig[b.signature]
            assert b.count == len(cs) == len(st.list_crashes(signature=b.signature))
            assert b.first_seen == min(c["found_at"] for c in cs)
            assert b.last_seen == max(c["found_at"] for c in cs)
            assert b.variants == sorted({c["input"]["variant"] for c in cs})
            assert b.reproducer_steps == min(c["steps"] for c in cs)
    finally:
        st.close()


def _batch_keys(b: int) -> tuple[set, set]:
    rec = W.batch(b, "wk")
    return ({inputs.content_hash(e["input"]) for e in rec["corpus"]},
            {(inputs.content_hash(c["input"]), c["signature"]) for c in rec["crashes"]})


def _present(st: Store, camp: str) -> tuple[set, set, set]:
    state = st.load_campaign_state(camp)
    entries = {e["hash"] for e in state.corpus}
    crashes = {(c["input_hash"], c["signature"]) for c in st.list_crashes(camp)}
    return entries, crashes, state


def test_sigkill_mid_run_loses_nothing_reported(db_url):
    st = Store.open(db_url)                  # migrate first so the writer starts writing fast
    st.close()
    p = _spawn("batches", db_url, "killed", "wk", "0", "100000")
    reported = []
    deadline = time.time() + 60
    while len(reported) < 25 and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        reported.append(int(line.split()[1]))
    time.sleep(0.013)                         # land somewhere inside a later batch
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()
    assert len(reported) == 25, "the writer did not get going"

    st = Store.open(db_url)
    try:
        entries, crashes, state = _present(st, "killed")
        # everything reported as stored is there ...
        last = max(reported)
        for b in range(last + 1):
            e, c = _batch_keys(b)
            assert e <= entries and c <= crashes, f"batch {b} was reported but is missing"
        # ... and every batch is all there or not at all (no partial rows)
        complete = 0
        for b in range(last + 1, last + 200):
            e, c = _batch_keys(b)
            have_e, have_c = e & entries, c & crashes
            assert (have_e, have_c) in ((e, c), (set(), set())), f"batch {b} is partial"
            complete += bool(have_e)
        assert complete <= 1                   # at most the batch in flight at the kill
        nb = last + 1 + complete
        assert len(entries) == nb * W.BATCH_ENTRIES and len(crashes) == nb * W.BATCH_CRASHES
        for b in st.list_bugs():               # bug counts agree with the crash rows
            assert b.count == len(st.list_crashes(signature=b.signature))
        assert state.executions == 100 * nb    # the stats of the last stored batch
    finally:
        st.close()

    # resume: a new writer redoes from the start (idempotent) and goes further
    p = _spawn("batches", db_url, "killed", "wk", "0", str(last + 5))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    st = Store.open(db_url)
    try:
        entries, crashes, state = _present(st, "killed")
        assert len(entries) == (last + 6) * W.BATCH_ENTRIES
        assert len(crashes) == (last + 6) * W.BATCH_CRASHES
        assert state.campaign.status == "running" and state.executions == 100 * (last + 6)
        assert sum(b.count for b in st.list_bugs()) == len(crashes)
    finally:
        st.close()
