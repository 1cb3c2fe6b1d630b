"""Strategies: PCT, POS, coverage-guided, bounded exhaustive."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.search.bounded import prove
from migfuzz.fuzzer.scheduler import STRATEGIES, make_strategy
from migfuzz.fuzzer.scheduler.coverage_guided import CoverageGuided, Guided, mutate_schedule
from migfuzz.fuzzer.scheduler.exhaustive import Exhaustive
from migfuzz.fuzzer.scheduler.pct import PCT
from migfuzz.fuzzer.scheduler.pos import POS
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk
from migfuzz.fuzzer.scheduler.replay import rle_decode

import random

DP = get_scenario("dp-fault-race")
XMM = get_scenario("cross-mm-opposite")


def test_registered_with_the_engine_strategies():
    assert {"random", "round-robin", "pct", "pos"} <= set(STRATEGIES)
    assert isinstance(make_strategy("pct", 1), PCT)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["pct", "pos", "guided"]))
def test_determinism_same_seed_same_trace(seed, which):
    """Checks determinism: a strategy's execution is a function of its seed."""
    def mk():
        if which == "pct":
            return PCT(seed, 3, 20)
        if which == "pos":
            return POS(seed)
        base = rle_decode(execute(DP, "v5.16", RandomWalk(7)).schedule)
        return CoverageGuided(seed, base, nactors=3)
    a = execute(DP, "v5.16", mk())
    b = execute(DP, "v5.16", mk())
    assert a.trace_hash == b.trace_hash and a.schedule == b.schedule
    # and the recorded schedule replays exactly
    assert replay(DP, "v5.16", a.schedule).trace_hash == a.trace_hash


def _rate(make, n=400, variant="v5.16", sc=DP, kind="USE_AFTER_FREE"):
    return sum(any(f.kind == kind for f in execute(sc, variant, make(s)).findings)
               for s in range(n))


def test_pct_and_pos_beat_random_on_dp_fault_race():
    # measured: random 0.27%, PCT d=3 (k=10) ~11%, POS ~9% per execution
    r = _rate(RandomWalk)
    assert _rate(lambda s: PCT(s, 3, 10)) > max(4 * r, 10)
    assert _rate(POS) > max(4 * r, 10)


def test_pct_change_points_lower_priority():
    p = PCT(3, depth=3, steps=5)
    p.new_execution(["a", "b", "c"])
    assert len(p.change) == 2 and all(v < 3 for v in p.change.values())
    assert sorted(p.prio) == [3, 4, 5]


def test_pct_and_pos_become_fair_after_the_bound():
    # a strict-priority scheduler would pick the same actor forever
    for s in (PCT(1, 1, 5, fair_after=10), POS(1, fair_after=10)):
        s.new_execution(["a", "b"])
        picks = {s.next_actor([0, 1], 0, i) for i in range(60)}
        assert picks == {0, 1}


def test_schedule_mutations_change_the_schedule():
    base = [0, 0, 0, 1, 1, 1, 0, 0, 1, 1]
    rng = random.Random(1)
    for op in ("preempt", "unpreempt", "shift", "splice", "truncate"):
        outs = {tuple(mutate_schedule(base, 2, rng, [1] * 10, op)) for _ in range(20)}
        assert outs - {tuple(base)}, op


def test_guided_follows_the_guide_and_runs_every_mutant():
    r = execute(DP, "v5.16", RandomWalk(3))
    g = Guided(rle_decode(r.schedule))
    assert execute(DP, "v5.16", g).trace_hash == r.trace_hash
    assert g.followed == len(g.guide)
    for s in range(30):       # lenient: mutants never diverge
        execute(DP, "v5.16", CoverageGuided(s, rle_decode(r.schedule), nactors=3))


def test_exhaustive_proves_v61_cross_mm_clean_within_two_preemptions():
    p = prove(XMM, "v6.1", 2)
    assert p.clean and p.complete
    # measured: 250 schedules, every one a distinct trace; a bound on the work
    assert p.executions <= 400 and p.traces == p.executions


def test_exhaustive_finds_the_blocking_lock_deadlock_within_one_preemption():
    p = prove(XMM, "blocking-lock", 1)
    assert p.findings and p.findings[0][1].kind == "DEADLOCK"
    n, f, sched = p.findings[0]
    assert n <= 42                     # the whole bound-1 tree has 42 schedules
    assert replay(XMM, "blocking-lock", sched).findings[0].signature == f.signature


def test_exhaustive_bound_zero_has_no_preemptions_and_terminates():
    ex = Exhaustive(0, 0)
    seen = []
    while True:
        r = execute(DP, "v5.16", ex)
        assert r.preemptions == 0
        seen.append(r.trace_hash)
        if not ex.advance():
            break
    assert len(seen) == len(set(seen)) >= 2   # only the free choices: who runs first
