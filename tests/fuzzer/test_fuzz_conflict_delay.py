"""Conflict-directed delay: an actor that just touched what another actor is about to touch
is held back, which keeps race windows open (counts of executions, measured in-test)."""
from __future__ import annotations

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import ConflictDelay, RandomWalk


def _hits(name, variant, kind, make, n):
    sc = get_scenario(name)
    return sum(any(f.kind == kind for f in execute(sc, variant, make(i)).findings)
               for i in range(n))


def test_holds_the_stale_tlb_window_open():
    # measured over 3000: 4.6% against a random walk's 0.5%; here 1500 runs each
    args = ("madvise-race", "v5.16", "LOST_WRITE")
    held = _hits(*args, ConflictDelay, 1500)
    walks = _hits(*args, RandomWalk, 1500)
    assert held >= 40 and held > 4 * max(walks, 1)


def test_is_a_random_walk_where_no_next_operations_conflict():
    """On cross-mm-opposite no two actors' next operations ever share an object, so no one
    is held back and the schedule is the seeded random walk's."""
    sc = get_scenario("cross-mm-opposite")
    for seed in range(30):
        a = execute(sc, "blocking-lock", ConflictDelay(seed))
        b = execute(sc, "blocking-lock", RandomWalk(seed))
        assert a.trace_hash == b.trace_hash


def test_deterministic_per_seed_and_finds_nothing_on_v61():
    sc = get_scenario("madvise-race")
    runs = [execute(sc, "v5.16", ConflictDelay(7)).trace_hash for _ in range(3)]
    assert len(set(runs)) == 1
    assert not any(execute(sc, "v6.1", ConflictDelay(i)).findings for i in range(300))
