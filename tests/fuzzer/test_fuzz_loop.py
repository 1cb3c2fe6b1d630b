"""The fuzz loop: deterministic under a fixed seed, finds the known bugs, merges."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.search.campaign import Campaign
from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop

SCS = [get_scenario(n) for n in scenario_names("concurrency") + scenario_names("known-bug")]


def _trace(loop: FuzzLoop, batches) -> list:
    out = []
    for n in batches:
        rep = loop.run_batch(n)
        out.append([(e.id, e.scenario, e.schedule) for e in rep.new_entries])
        out.append([(ev.execution, ev.finding.signature, ev.input_hash) for ev in rep.findings])
        out.append(rep.new_features)
    return [x for part in out for x in part]


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31), split=st.integers(1, 299))
def test_determinism_same_seed_same_results_whatever_the_batches(seed, split):
    """Checks determinism: same seed and execution count give the same corpus, findings
    and coverage, whether run as one batch of 300 or two."""
    a = _trace(FuzzLoop(FuzzConfig("v5.16", SCS), seed), [300])
    b = _trace(FuzzLoop(FuzzConfig("v5.16", SCS), seed), [split, 300 - split])
    assert sorted(map(repr, a)) == sorted(map(repr, b))
    assert a != _trace(FuzzLoop(FuzzConfig("v5.16", SCS), seed + 1), [300])


def test_finds_the_v516_bugs_in_a_make_fuzz_sized_campaign():
    c = Campaign(FuzzConfig("v5.16", SCS), 1)
    c.run(execs=4000)
    kinds = {b.kind for b in c.buckets}
    assert {"LOST_WRITE", "USE_AFTER_FREE"} <= kinds
    titles = " ".join(t for b in c.buckets for t in [b.title] + b.alt_titles)
    assert "stale TLB" in titles and "zone_device_data" in titles
    assert c.minimize_all() > 0
    for b in c.buckets:
        if b.minimized and "actors" in b.minimized and b.scenarios[0] in (
                "dp-fault-race", "madvise-race", "dirty-page"):
            assert b.minimized["actors"] <= 3


def test_coverage_grows_and_the_corpus_keeps_what_added_it():
    loop = FuzzLoop(FuzzConfig("v5.16", SCS, generate=False), 0)
    r1 = loop.run_batch(200)
    assert r1.new_entries and len(loop.coverage) == len(r1.new_features)
    assert all(e.new_features >= 1 for e in r1.new_entries)
    assert loop.stats()["corpus"] == len(r1.new_entries)


def test_merge_takes_other_workers_entries_and_coverage():
    a = FuzzLoop(FuzzConfig("v5.16", SCS), 1)
    b = FuzzLoop(FuzzConfig("v5.16", SCS), 2)
    ra = a.run_batch(300)
    b.merge(ra.new_entries, ra.new_scenarios, ra.new_features, ra.lock_edges)
    assert set(a.coverage.hits) <= set(b.coverage.hits)
    assert b.stats()["corpus"] >= len([e for e in ra.new_entries if e.scenario in b.pool])
    for sc in ra.new_scenarios:
        assert sc["name"] in b.pool


def test_v61_known_bug_scenarios_stay_clean():
    scs = [get_scenario(n) for n in ("cross-mm-opposite", "dirty-page", "madvise-race",
                                     "dp-fault-race")]
    loop = FuzzLoop(FuzzConfig("v6.1", scs, generate=False), 5)
    assert not loop.run_batch(2000).findings
