"""POTENTIAL_DEADLOCK: a lock-order cycle across executions, none of which deadlocked."""
from __future__ import annotations

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.search.lockgraph import LockGraph
from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk

XMM = get_scenario("cross-mm-opposite")


def test_reported_from_runs_none_of_which_deadlocked():
    g = LockGraph()
    found, fed = [], 0
    for seed in range(200):
        r = execute(XMM, "blocking-lock", RandomWalk(seed))
        if r.findings:            # skip every run with any finding (the deadlocked ones)
            continue
        assert r.lock_edges
        fed += 1
        found += g.add(XMM["name"], r.lock_edges, {"seed": seed})
        if found:
            break
    assert found, "two clean runs locking in opposite orders make a cycle"
    f = found[0]
    assert f.kind == "POTENTIAL_DEADLOCK" and fed >= 2
    assert not f.detail["from_deadlocked_run"]
    assert len(f.detail["edges"]) == 2
    for e in f.detail["edges"]:          # the sites on every edge
        assert e["held_site"] == "collect:lock_page" and e["site"] == "collect:lock_page"
        assert "seed" in e["origin"]
    # reported once, and with a page-independent signature
    again = []
    for seed in range(200, 260):
        r = execute(XMM, "blocking-lock", RandomWalk(seed))
        again += g.add(XMM["name"], r.lock_edges)
    assert not again
    assert f.signature == LockGraph().add("other", [
        ("x", "collect:lock_page", "y", "collect:lock_page"),
        ("y", "collect:lock_page", "x", "collect:lock_page")])[0].signature


def test_never_on_v516_or_v61():
    scs = [get_scenario(n) for n in scenario_names("concurrency")]
    for variant in ("v5.16", "v6.1"):
        loop = FuzzLoop(FuzzConfig(variant, scs, generate=True), 3)
        rep = loop.run_batch(1500)
        assert not [e for e in rep.findings if e.finding.kind == "POTENTIAL_DEADLOCK"]
        assert loop.lockgraph.edges == 0      # trylock never waits: no edges at all


def test_the_loop_reports_it_on_blocking_lock():
    loop = FuzzLoop(FuzzConfig("blocking-lock", [XMM], generate=False), 1)
    rep = loop.run_batch(300)
    pot = [e for e in rep.findings if e.finding.kind == "POTENTIAL_DEADLOCK"]
    assert len(pot) == 1
    assert rep.lock_edges and len(loop.lockgraph.export()) == 2


def test_merged_edges_complete_a_cycle():
    a, b = LockGraph(), LockGraph()
    a.add("s", [("p0", "x", "p1", "y")])
    b.add("s", [("p1", "y", "p0", "x")])
    assert a.merge(b.export())[0].kind == "POTENTIAL_DEADLOCK"
