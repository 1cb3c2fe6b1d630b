"""What the farm no longer sends changes nothing it shows (no Ray):

- workers.worker.Summary: a worker counts the findings of a *full* bug instead of sending
  them; the coordinator's buckets (signatures, hits, last seen, titles, scenarios, the
  smallest input) come out as when every finding is sent;
- db.recorder.Recorder._thin: crashes past the store's cap per bug go as one record per bug
  and write; the stored bugs and crash rows are those of writing every crash.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from migfuzz.corpus.builtin import scenario_names
from migfuzz.commands.engine import load_scenario
from migfuzz.db.recorder import Recorder, campaign_config
from migfuzz.db.store import Store
from migfuzz.fuzzer.search.buckets import input_size
from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop
from migfuzz.workers.coordinator import Coordinator
from migfuzz.workers.worker import Summary

NWORKERS = 2


@pytest.fixture(scope="module")
def reports():
    """Real batch reports of two loops (3,000 executions each, batches of 100)."""
    names = scenario_names("concurrency") + scenario_names("known-bug")
    cfg = FuzzConfig("v5.16", [load_scenario(n) for n in names], "portfolio", True)
    out = []
    for seed in range(NWORKERS):
        loop = FuzzLoop(cfg, seed + 1)
        out.append([loop.run_batch(100) for _ in range(30)])
    assert sum(len(r.findings) for st in out for r in st) > 500
    return cfg, out


def _absorb(cfg, streams, summarize: bool, full_after: int = 5) -> Coordinator:
    coord = Coordinator(cfg, NWORKERS, variant=cfg.variant, full_after=full_after)
    for st in streams:
        for r in st:
            for sc in r.new_scenarios:
                coord.scenarios.setdefault(sc["name"], sc)
    sums = [Summary() for _ in range(NWORKERS)]
    sent = 0
    for j in range(len(streams[0])):
        for i in range(NWORKERS):
            sync = coord.sync_for(i)
            r = streams[i][j]
            hits = None
            if summarize:
                sums[i].full.update(sync.get("full", ()))
                kept, hits = sums[i].split(list(r.findings))
                r = replace(r, findings=kept)
            sent += len(r.findings)
            coord.absorb(i, r, hits=hits)
    coord.sent_findings = sent
    return coord


def _buckets(coord) -> dict:
    return {b.signature: (sorted(b.signatures), b.hits, b.last_seen, b.kind,
                          sorted([b.title] + b.alt_titles), sorted(b.scenarios),
                          input_size(b.input))
            for b in coord.buckets.buckets.values()}


def test_summarized_findings_leave_the_buckets_as_they_were(reports):
    cfg, streams = reports
    every = _absorb(cfg, streams, summarize=False)
    summed = _absorb(cfg, streams, summarize=True)
    assert _buckets(summed) == _buckets(every)
    assert len(summed.buckets) >= 3
    # the hub said which bugs were full, and the workers then sent far fewer findings
    assert summed.sync_for(0, full=True)["full"]
    assert summed.sent_findings < every.sent_findings / 2, (summed.sent_findings,
                                                             every.sent_findings)


def test_without_full_bugs_everything_is_sent(reports):
    cfg, streams = reports
    coord = _absorb(cfg, streams, summarize=True, full_after=10 ** 9)
    assert coord.sent_findings == sum(len(r.findings) for st in streams for r in st)


def _store_all(url, cfg, coord_items, scenario_of, thin: bool):
    with Store.open(url, check_inputs=False, max_crashes_per_bug=4) as st:
        st.create_campaign("c", cfg.variant, campaign_config(cfg), 1)
        rec = Recorder(st, "c", scenario_of, cfg.variant)
        if not thin:
            rec._thin = lambda found: found
        for k in range(0, len(coord_items), 7):          # 7 batches a write
            rec.record_many(coord_items[k:k + 7], 0)
        crashes = st.list_crashes(campaign="c")
        bugs = {b.signature: (b.count, b.reproducer_steps, b.status, b.duplicate_of,
                              b.kind, b.title)
                for b in st.list_bugs(campaign="c")}
        return crashes, bugs, rec


def test_thinned_crashes_store_the_same_bugs(reports, tmp_path):
    cfg, streams = reports
    coord = _absorb(cfg, streams, summarize=False)
    items = coord.pending
    all_c, all_b, _ = _store_all(f"sqlite:///{tmp_path / 'a.db'}", cfg, items,
                                 coord.scenario_of, thin=False)
    thin_c, thin_b, rec = _store_all(f"sqlite:///{tmp_path / 'b.db'}", cfg, items,
                                     coord.scenario_of, thin=True)
    assert thin_b == all_b
    assert all(v[0] <= 4 for v in thin_b.values())
    key = lambda c: (c["signature"], c["input_hash"])     # noqa: E731
    assert sorted(map(key, thin_c)) == sorted(map(key, all_c))
    assert rec.held_back > rec.sent, (rec.held_back, rec.sent)
