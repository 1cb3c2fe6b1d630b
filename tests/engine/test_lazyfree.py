"""MADV_FREE (kernel/lazyfree.py): a lazyfree page is discarded by reclaim while clean and
kept once written again, so its dirty bit must survive every hop of a migration: collect
(fd35ca3d12cc, reading the pte ptep_get_and_clear returns, not a copy from before a
CPU's write), the move (folio_migrate_flags) and the way back. Issue 13: the mutant that
drops the move's dirty copy was missed while the model had no MADV_FREE."""
from __future__ import annotations

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.kernel import driver
from migfuzz.fuzzer.oracles import value_at
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin
from test_assertions import one_mm
from test_ref_freeze import mutated

FREE = {"op": "free", "mm": "A", "start": 0, "npages": 2}
WRITE = {"op": "write", "mm": "A", "start": 0, "npages": 2, "value": 70}
RECLAIM = {"op": "reclaim", "mm": "A", "start": 0, "npages": 2}
READ = {"op": "read", "mm": "A", "start": 0, "npages": 2}
MIG = {"op": "migrate", "mm": "A", "start": 0, "npages": 2}
SEEDS = 300       # the lost dirty bit shows in 30 of 300 random walks of lazyfree-migrate


def test_a_clean_lazyfree_page_is_discarded_and_reads_zero():
    r = execute(one_mm([FREE, RECLAIM]), "v6.1", RoundRobin())
    assert not r.findings, [f.title for f in r.findings]
    mm = r.kernel.mms["A"]
    assert [value_at(r.kernel, mm, v) for v in (0, 1)] == [0, 0]
    assert "reclaim:discarded" in r.branches


def test_a_write_after_madv_free_keeps_the_page():
    r = execute(one_mm([FREE, WRITE, RECLAIM, READ]), "v6.1", RoundRobin())
    assert not r.findings, [f.title for f in r.findings]
    assert "reclaim:lazyfree_redirtied" in r.branches and "reclaim:discarded" not in r.branches


def test_the_dirty_bit_survives_a_migration_and_back():
    # written after MADV_FREE, moved to the device and faulted back: reclaim keeps it
    r = execute(one_mm([FREE, WRITE, MIG, READ, RECLAIM, READ]), "v6.1", RoundRobin())
    assert not r.findings, [f.title for f in r.findings]
    assert r.migrated == 2 and "reclaim:discarded" not in r.branches


def _findings(variant, seeds=SEEDS):
    out = set()
    for seed in range(seeds):
        r = execute(get_scenario("lazyfree-migrate"), variant, RandomWalk(seed), seed=seed,
                    check=False)
        out |= {f.title for f in r.findings}
    return out


def test_every_release_with_the_dirty_fix_keeps_the_write():
    # includes a CPU's write landing between collect's read of the pte and its clear:
    # the clear's returned pte carries the MMU's dirty bit
    for variant in ("v6.1", "6.1.192", "6.12.117", "mainline"):
        assert _findings(variant) == set(), variant


def test_before_fd35ca3d12cc_the_write_is_lost():
    # v5.16's collect drops the pte's dirty bit (the dirty-page bug): here it shows as a
    # lazyfree page discarded with data written after MADV_FREE
    assert ("LOST_WRITE: reclaim discarded a lazyfree page written since MADV_FREE (its "
            "dirty bit was lost)") in _findings("v5.16")


def test_a_move_that_drops_the_dirty_bit_loses_the_write(monkeypatch):
    monkeypatch.setattr(driver, "pages", mutated("move-dirty-not-copied").pages)
    assert ("LOST_WRITE: reclaim discarded a lazyfree page written since MADV_FREE (its "
            "dirty bit was lost)") in _findings("v6.1")


def test_a_read_after_madv_free_does_not_settle_the_content():
    # read (the old data), then reclaim discards the still-clean page: the next read of
    # zero is what MADV_FREE allows. Reads used to pin the expected value down (as after
    # a racing MADV_DONTNEED), so the zero was taken for a lost write (found by the
    # blocking-lock baseline of bench/mutants.py, 222 hits in 100,000 executions)
    r = execute(one_mm([FREE, READ, RECLAIM, READ]), "v6.1", RoundRobin())
    assert not r.findings, [f.title for f in r.findings]
    assert "reclaim:discarded" in r.branches
