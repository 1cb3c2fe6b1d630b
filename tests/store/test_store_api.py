"""The store API on both backends: idempotent batches, bug upserts, triage, resume state,
export/import round trip."""
from __future__ import annotations

import io
import json

import pytest
import storedata as D

from migfuzz.corpus import input as inputs
from migfuzz.corpus import jsonl
from migfuzz.db.store import Store, crash_records
from migfuzz.db.errors import StoreError


def test_campaign_lifecycle(store):
    c = store.create_campaign("c1", "v5.16", {"execs": 10}, seed=7)
    assert (c.name, c.variant, c.config, c.seed, c.status) == ("c1", "v5.16", {"execs": 10},
                                                                7, "running")
    with pytest.raises(StoreError, match="already exists"):
        store.create_campaign("c1", "v6.1")
    assert store.create_campaign("c1", "v6.1", exist_ok=True).variant == "v5.16"
    store.set_campaign_status("c1", "stopped")
    c = store.campaign("c1")
    assert c.status == "stopped" and c.ended_at is not None
    store.set_campaign_status("c1", "running")
    assert store.campaign("c1").ended_at is None
    with pytest.raises(StoreError, match="status must be"):
        store.set_campaign_status("c1", "paused")
    with pytest.raises(StoreError, match="no campaign named 'zz'"):
        store.add_corpus_entries("zz", [D.entry(1)])
    assert store.get_campaign("zz") is None
    [row] = store.list_campaigns()
    assert row["name"] == "c1" and row["corpus"] == 0


def test_batches_are_idempotent(store):
    store.create_campaign("c", "v5.16")
    entries = [D.entry(i) for i in range(50)] + [D.entry(3)]        # a duplicate inside
    crashes = [D.crash(i, i % 4) for i in range(30)]
    stats = [{"worker": "w0", "t": 1.0 + i, "executions": 10 * i} for i in range(5)]
    r = store.write_batch("c", corpus=entries, crashes=crashes, stats=stats)
    assert r["corpus"]["added"] == 50 and r["crashes"]["added"] == 30 and r["stats"] == 5
    assert sorted(r["crashes"]["new_bugs"]) == sorted(D.signature(s) for s in range(4))
    before = store.counts()
    bugs_before = [b.to_json() for b in store.list_bugs()]
    r = store.write_batch("c", corpus=entries, crashes=crashes, stats=stats)   # a retry
    assert r["corpus"] == {"added": 0, "new": []}
    assert r["crashes"] == {"added": 0, "new": [], "new_bugs": [], "not_kept": 0}
    assert r["stats"] == 0
    assert store.counts() == before
    assert [b.to_json() for b in store.list_bugs()] == bugs_before
    assert before["corpus_entries"] == 50 and before["crashes"] == 30 and before["bugs"] == 4
    # the same input in another campaign is a separate entry and a separate crash
    store.create_campaign("d", "v5.16")
    assert store.add_corpus_entries("d", entries[:5])["added"] == 5
    assert store.add_crashes("d", crashes[:4])["new_bugs"] == []
    assert store.get_bug(D.signature(0)).count == 8 + 1


def test_bug_upsert_fields(store):
    store.create_campaign("c", "v5.16")
    # one signature, seen on three variants, three titles, different steps and times
    cr = [D.crash(i, 0) for i in (5, 1, 9, 4)]
    store.add_crashes("c", cr[:2])
    store.add_crashes("c", cr[2:])
    b = store.get_bug(D.signature(0))
    assert b.count == 4
    assert (b.first_seen, b.last_seen) == (1001.0, 1009.0)
    assert b.variants == ["v5.15", "v5.16", "v6.1"]
    assert b.title == cr[0]["title"] and len(b.alt_titles) == 2
    assert b.status == "new" and b.duplicate_of is None and b.labels == []
    best = min(cr, key=lambda c: c["steps"])
    assert b.reproducer_steps == best["steps"]
    assert b.reproducer == best["input"]
    assert b.reproducer_hash == inputs.content_hash(best["input"])
    # a minimized reproducer is kept even when a shorter raw crash comes later
    store.set_reproducer(b.signature, D.make_input(77), steps=40)
    store.add_crashes("c", [{**D.crash(500, 0), "steps": 1}])
    b = store.get_bug(b.signature)
    assert b.minimized and b.reproducer == D.make_input(77) and b.count == 5


def test_triage_updates(store):
    store.create_campaign("c", "v5.16")
    store.add_crashes("c", [D.crash(1, 1), D.crash(2, 2)])
    s1, s2 = D.signature(1), D.signature(2)
    b = store.update_bug(s1, status="triaged", notes="looks real", labels=["mm", "gpu", "mm"])
    assert (b.status, b.notes, b.labels) == ("triaged", "looks real", ["gpu", "mm"])
    b = store.update_bug(s2, status="duplicate", duplicate_of=s1)
    assert b.duplicate_of == s1
    old = b.title
    b = store.update_bug(s2, title="a better title")
    assert b.title == "a better title" and old in b.alt_titles
    for bad, msg in [({"status": "wontfix"}, "status must be"),
                     ({"status": "duplicate"}, "needs the signature"),
                     ({"status": "duplicate", "duplicate_of": "NOPE-1"}, "no bug"),
                     ({"status": "duplicate", "duplicate_of": s1}, "cannot duplicate itself")]:
        with pytest.raises(StoreError, match=msg):
            store.update_bug(s1, **bad)
    with pytest.raises(StoreError, match="no bug"):
        store.update_bug("NOPE-1", notes="x")
    assert store.get_bug(s1).reliability is None
    store.record_reproduction(s1, 10, 7)
    store.record_reproduction(s1, 10, 10)
    assert store.get_bug(s1).reliability == pytest.approx(17 / 20)
    assert [b.signature for b in store.list_bugs(status="triaged")] == [s1]
    assert [b.signature for b in store.list_bugs(campaign="c")] == [s1, s2]


def test_campaign_state_for_resume(store):
    store.create_campaign("c", "v5.16", {"k": 1}, seed=3)
    store.create_campaign("other", "v5.16")
    store.write_batch("c", corpus=[D.entry(i) for i in range(10)],
                      crashes=[D.crash(i, i % 3) for i in range(6)],
                      stats=[{"worker": w, "t": t, "executions": t * 100}
                             for w in ("w0", "w1") for t in (1, 2, 3)])
    store.write_batch("c", corpus=[{**D.entry(10), "coverage": [["a", "b"], "site:1"]}])
    store.add_crashes("other", [D.crash(1, 0)])
    st = store.load_campaign_state("c")
    assert st.campaign.config == {"k": 1} and st.campaign.seed == 3
    assert [e["hash"] for e in st.corpus] == [inputs.content_hash(D.make_input(i))
                                              for i in sorted(range(10), key=lambda i:
                                              inputs.content_hash(D.make_input(i)))] + \
        [inputs.content_hash(D.make_input(10))]
    assert st.corpus[0]["input"] == D.make_input(int(st.corpus[0]["input"]["seed"]))
    want = {f"site:{i % 97}" for i in range(10)} | {f"pair:{i % 89}" for i in range(10)}
    assert set(st.coverage) == want | {("a", "b")}
    assert {s: b["count"] for s, b in st.buckets.items()} == \
        {D.signature(0): 2, D.signature(1): 2, D.signature(2): 2}
    assert st.crashes == 6 and st.executions == 600
    assert set(st.workers) == {"w0", "w1"} and st.workers["w0"]["t"] == 3
    with pytest.raises(StoreError, match="no campaign"):
        store.load_campaign_state("nope")


def test_real_results(store):
    """Records built from real executions (the way the fuzz loop will call it)."""
    from migfuzz.corpus.builtin import get_scenario
    from migfuzz.fuzzer.execute import execute
    from migfuzz.fuzzer.scheduler import make_strategy
    store.create_campaign("real", "v5.16")
    sc = get_scenario("migrate-release")
    crashes = []
    for seed in range(40):
        r = execute(sc, "v5.16", make_strategy("random", seed), seed=seed)
        inp = inputs.make(sc, "v5.16", r.schedule, strategy="random", seed=seed,
                          result={"trace_hash": r.trace_hash,
                                  "findings": [f.to_json() for f in r.findings]})
        store.add_corpus_entries("real", [{"input": inp, "coverage": r.branches, "worker": "w"}])
        crashes += crash_records(inp, r, "w")
    store.add_crashes("real", crashes)
    for c in store.list_crashes("real"):
        assert c["input"]["result"]["trace_hash"] == c["trace_hash"]
    assert store.counts()["crashes"] == len({(inputs.content_hash(c["input"]),
                                               c["finding"].signature) for c in crashes})


def test_bad_records_write_nothing(store):
    store.create_campaign("c", "v5.16")
    before = store.counts()
    bad_input = {**D.make_input(1), "schedule": [[99, 1]]}
    for kw, msg in [({"corpus": [D.entry(1), {"input": bad_input}]}, "bad schedule run"),
                    ({"corpus": [D.entry(1), {"input": "x"}]}, "must be an input object"),
                    ({"crashes": [D.crash(1, 1), {**D.crash(2, 1), "signature": "x" * 65}]},
                     "signature"),
                    ({"crashes": [D.crash(1, 1), {**D.crash(2, 1), "kind": None}]}, "kind"),
                    ({"corpus": [D.entry(1)], "stats": [{"executions": "many"}]}, "numbers")]:
        with pytest.raises(StoreError, match=msg):
            store.write_batch("c", **kw)
    assert store.counts() == before


def test_export_import_round_trip(store, tmp_path):
    """Export from this backend, import into a SQLite file: same corpus, same hashes."""
    store.create_campaign("c", "v5.16")
    store.add_corpus_entries("c", [D.entry(i, worker=f"w{i % 2}") for i in range(25)])
    buf = io.StringIO()
    c = store.campaign("c")
    n = jsonl.write(buf, {"campaign": "c", "variant": c.variant,
                          "engine_version": c.engine_version, "entries": 25},
                    store.iter_corpus("c"))
    assert n == 25
    lines = buf.getvalue().splitlines()
    assert json.loads(lines[0])["format"] == "migfuzz-corpus" and len(lines) == 26
    header, entries = jsonl.read(io.BytesIO(buf.getvalue().encode()), "x.jsonl")
    assert header["campaign"] == "c"
    other = Store.open(f"sqlite:///{tmp_path / 'other.db'}")
    other.create_campaign("c", "v5.16")
    assert other.add_corpus_entries("c", entries)["added"] == 25
    a, b = store.load_campaign_state("c"), other.load_campaign_state("c")
    assert a.corpus == b.corpus and a.coverage == b.coverage
    buf2 = io.StringIO()
    jsonl.write(buf2, header, other.iter_corpus("c"))
    assert buf2.getvalue() == buf.getvalue()           # byte-identical re-export
    other.close()


def test_crash_rows_per_bug_are_capped(db_url):
    """Past the cap a crash leaves no row and no count (a retried batch still changes
    nothing), but it moves the bug's last seen and may give it a smaller reproducer."""
    from sqlalchemy import func, select

    from migfuzz.db.models import Crash
    st = Store.open(db_url, max_crashes_per_bug=5)
    try:
        sig = D.signature(1)
        st.create_campaign("c", "v5.16")
        first = st.add_crashes("c", [D.crash(i, 1) for i in range(3)])
        assert (first["added"], first["not_kept"]) == (3, 0)
        batch = [D.crash(i, 1) for i in range(3, 12)]
        out = st.add_crashes("c", batch)
        assert (out["added"], out["not_kept"]) == (2, 7)
        bug = st.get_bug(sig)
        with st.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(Crash)
                                .where(Crash.signature == sig)).scalar()
        assert rows == bug.count == 5
        assert bug.last_seen == 1000.0 + 11
        assert bug.reproducer_steps == min(D.crash(i, 1)["steps"] for i in range(12))
        assert st.add_crashes("c", batch)["added"] == 0          # a retry
        assert st.get_bug(sig).to_json() == bug.to_json()
        # another bug has its own room
        assert st.add_crashes("c", [D.crash(i, 2) for i in range(4)])["added"] == 4
        # and so has another campaign: it lists the bug through rows of its own (with one
        # cap per bug, a second campaign stored none and showed 0 bugs)
        st.create_campaign("d", "v5.16")
        assert st.add_crashes("d", batch)["added"] == 5
        assert [b.signature for b in st.list_bugs(campaign="d")] == [sig]
        assert st.get_bug(sig).count == 10
    finally:
        st.close()
    with pytest.raises(StoreError, match="at least 1"):
        Store.open(db_url, max_crashes_per_bug=0)
