"""Issue 13, items 1-5: kernel-style assertions at the rule, the mapcount checked at every
PTL release, the GUP pin's purpose, the selftests' expectations as invariants, and a
skipped rmap update named by its culprit. Each test injects one bug (tests/engine/
mutations.py) and requires the finding to name the rule and the step that broke it;
each fails on the engine without the check (``without_assertions`` shows the contrast
where the symptom is otherwise something else)."""
from __future__ import annotations

import copy

import pytest

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.kernel.state import Kernel, Page
from migfuzz.fuzzer.kernel.variants import resolve_variant
from migfuzz.fuzzer.findings import KernelBug
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin
from migfuzz.fuzzer.search.campaign import Campaign
from migfuzz.fuzzer.search.loop import FuzzConfig
import mutations as mu

MIG = {"op": "migrate", "mm": "A", "start": 0, "npages": 2}
WRITE = {"op": "write", "mm": "A", "start": 0, "npages": 2}


def one_mm(*programs, npages=2):
    return {"name": "custom", "mms": [{"name": "A", "vmas": [{"start": 0, "npages": npages}]}],
            "layout": [{"mm": "A", "start": 0, "npages": npages}],
            "actors": [{"name": f"t{i}", "program": p} for i, p in enumerate(programs)]}


def run(sc, variant="v6.1", strategy=None):
    sc = get_scenario(sc) if isinstance(sc, str) else sc
    return execute(sc, variant, strategy or RoundRobin(), check=False)


def only(findings):
    assert len(findings) == 1, [f.title for f in findings]
    return findings[0]


# ---- item 1: assertions at the rule ----------------------------------------------------

def test_a_pte_changed_without_the_ptl_names_the_step(monkeypatch):
    mu.skip_lock_ptl(monkeypatch, "finalize:remove_migration_ptes")
    f = only(run("migrate").findings)
    assert f.kind == "VM_BUG_ON"
    assert f.title.startswith("VM_BUG_ON: pte changed at finalize:remove_migration_ptes "
                              "without its page-table lock")
    assert f.sites == ("ptl-not-held", "finalize:remove_migration_ptes")


def test_a_migration_entry_for_an_unlocked_page_names_the_install(monkeypatch):
    # collect's trylock "succeeds" without setting PG_locked
    mu.break_method(monkeypatch, "_set_lock", "collect:trylock")
    f = only(run("migrate").findings)
    assert f.kind == "VM_BUG_ON"
    assert f.sites == ("migration-entry-unlocked", "collect:install_migration")


def _kernel_with_entry():
    """A kernel with page P behind a migration entry at A:0, P not locked (built with no
    actor running, where no rule is checked)."""
    from migfuzz.fuzzer.kernel.state import MM, MIGRATION
    k = Kernel(resolve_variant("v6.1")[1], 1)
    mm = k.mms["A"] = MM("A")
    page = k.alloc_page("test", "migrate")
    k.set_pte(mm, 0, (MIGRATION, page, True, False), "test")
    return k, page


def test_remove_migration_ptes_on_an_unlocked_page():
    from migfuzz.fuzzer.kernel.migration_entries import remove_migration_ptes
    k, page = _kernel_with_entry()
    with pytest.raises(KernelBug) as e:
        list(remove_migration_ptes(k, page, page, "finalize:remove_migration_ptes"))
    assert e.value.finding.title == ("VM_BUG_ON: page not locked in remove_migration_ptes "
                                     "(finalize:remove_migration_ptes)")


def test_a_source_page_moved_unlocked():
    from migfuzz.fuzzer.kernel.migration_entries import remove_migration_ptes
    k, page = _kernel_with_entry()
    page.isolated = True
    new = k.alloc_page("driver:alloc", "driver")
    k._set_lock(new, "driver:alloc")
    with pytest.raises(KernelBug) as e:
        list(remove_migration_ptes(k, page, new, "finalize:remove_migration_ptes"))
    assert e.value.finding.sites == ("not-locked:move", "finalize:remove_migration_ptes")


def test_a_destination_page_moved_unlocked(monkeypatch):
    mu.break_method(monkeypatch, "_set_lock", "driver:alloc")
    f = only(run("migrate").findings)
    assert f.kind == "VM_BUG_ON"
    assert f.title.startswith("VM_BUG_ON: destination page not locked when it is moved "
                              "(pages:move; move_to_new_folio")


def test_a_page_moved_while_on_the_lru(monkeypatch):
    mu.isolate_without_flag(monkeypatch)
    f = only(run("migrate").findings)
    assert f.title == ("ASSERTION: page moved at pages:move without "
                       "being isolated from the LRU")
    # without the assertion the bug is silent: every refcount agrees
    mu.without_assertions(monkeypatch)
    assert run("migrate").findings == []


def test_a_skipped_restore_is_named_where_the_page_is_unlocked(monkeypatch):
    mu.skip_restore(monkeypatch)
    fs = run(one_mm([dict(MIG, fail_alloc=[1])]), "v5.16").findings
    f = only(fs)
    assert f.kind == "VM_BUG_ON" and f.sites == ("migration-entry-unlocked",
                                                 "finalize:unlock_old")
    assert "installed at collect:install_migration" in f.title


def test_a_partial_restore_is_named_by_the_restore(monkeypatch):
    # after fork the page is mapped in A and B: try_to_migrate turns both ptes into
    # migration entries, and the broken restore puts back only the first
    sc = one_mm([{"op": "fork", "mm": "A", "child": "B"}, dict(MIG, fail_alloc=[0])])
    mu.partial_restore(monkeypatch)
    f = only(run(sc).findings)
    assert f.title == ("ASSERTION: restore at finalize:remove_migration_ptes left a "
                       "migration entry (installed at unmap:try_to_migrate) for the page it "
                       "restores")
    # without the check the same bug is a stale migration entry found only at the end,
    # named by where the entry was installed, not by the restore that skipped it
    mu.without_assertions(monkeypatch)
    assert {f.kind for f in run(sc).findings} >= {"STALE_MIGRATION_ENTRY"}


def test_a_released_ptl_not_held(monkeypatch):
    # a lock_ptl removed where the path changes no pte: the release is the first sign
    mu.skip_lock_ptl(monkeypatch, "gup:follow_page")
    sc = one_mm([WRITE, {"op": "pin", "mm": "A", "start": 0, "npages": 1}, {"op": "unpin"}])
    f = only(run(sc).findings)
    assert f.sites == ("ptl-unlock-not-held", "gup:follow_page")


def test_flush_removed_on_v61_never_flushed(monkeypatch):
    # the pte was written first, so a TLB holds it when collect clears it
    mu.break_method(monkeypatch, "flush_tlb_range", "collect:flush")
    f = only(run(one_mm([WRITE, MIG])).findings)
    assert f.kind == "ASSERTION" and f.sites == ("tlb-never-flushed",
                                                 "collect:install_migration")


def test_the_known_flush_bug_names_its_clear_in_the_stale_tlb_bucket():
    # v5.16 flushes after the PTL (the bug 60bae7370896 fixed): its lost writes keep their
    # one bucket (test_ground_truth) and now name the clear that broke the rule
    sc = get_scenario("madvise-race")
    titles = {f.title for seed in range(1500)
              for f in execute(sc, "v5.16", RandomWalk(seed), check=False).findings}
    assert titles and all(t.startswith("LOST_WRITE: a ") for t in titles), titles
    assert all("cleared at collect:install_migration and not flushed before its "
               "page-table lock was released" in t for t in titles), titles


def test_a_single_actor_v515_migration_is_clean():
    # v5.15 flushes after the PTL on every migration: harmless without a racing actor, and
    # the flush does come, so nothing is reported (the selftests stay clean)
    assert run(one_mm([WRITE, MIG]), "v5.15").findings == []


# ---- item 2: mapcount after every step ------------------------------------------------

def test_a_skipped_mapcount_update_is_named_at_its_step(monkeypatch):
    mu.break_method(monkeypatch, "map_dec", "unmap:try_to_migrate")
    sc = get_scenario("cross-mm-opposite")
    fs = [f for seed in range(5) for f in run(sc, strategy=RandomWalk(seed)).findings]
    assert fs and all(f.kind == "BAD_MAPCOUNT" for f in fs), [f.title for f in fs]
    assert {f.sites for f in fs} == {("mapcount", "unmap:try_to_migrate")}
    assert fs[0].title.endswith("has mapcount 1 after unmap:try_to_migrate")


def test_a_change_without_a_site_is_named_by_its_step(monkeypatch):
    # zap clears its ptes without naming a site: the finding names the step ("zap:pte"),
    # not where the lock was taken for the whole range ("zap:ptl")
    mu.break_method(monkeypatch, "map_dec", "zap:pte")
    sc = one_mm([WRITE, {"op": "zap", "mm": "A", "start": 0, "npages": 2}])
    f = only(run(sc).findings)
    assert f.sites == ("mapcount", "zap:pte")


def test_the_mapcount_check_is_fatal_and_replays(monkeypatch):
    mu.break_method(monkeypatch, "map_inc", "finalize:remove_migration_ptes")
    r = run(one_mm([MIG]))
    f = only(r.findings)
    assert f.sites == ("mapcount", "finalize:remove_migration_ptes")
    assert f.step < r.steps               # the run stopped there, as a BUG would
    again = replay(one_mm([MIG]), "v6.1", r.schedule)
    assert [(g.signature, g.step) for g in again.findings] == [(f.signature, f.step)]


# ---- item 3: the GUP pin's purpose -------------------------------------------------------

def _pin_not_counted(monkeypatch):
    # the pin takes no reference, so check_page and the move's refcount test miss it
    mu.break_method(monkeypatch, "get", "gup:pin")


def test_a_write_through_a_pin_to_a_migrated_page_is_lost(monkeypatch):
    _pin_not_counted(monkeypatch)
    monkeypatch.setattr(Kernel, "assert_move", lambda self, *a: None)   # item 4's check off
    fs = run("gup-pin").findings
    lost = [f for f in fs if f.kind == "LOST_WRITE"]
    assert lost and lost[0].title == (
        "LOST_WRITE: a write through a GUP pin landed in a page the process no longer "
        "sees (the pinned page was migrated at finalize:remove_migration_ptes)")


def test_a_write_through_a_pin_reaches_the_process():
    # intact engine: the pinned pages stay, the device's writes are what the process reads
    r = run("gup-pin")
    assert r.findings == []
    k = r.kernel
    assert [k.last_write[("A", vpn)] for vpn in (0, 1)] == ["gup-pin", "gup-pin"]


def test_a_pin_write_after_a_zap_is_not_the_processs(monkeypatch):
    sc = one_mm([WRITE, {"op": "pin", "mm": "A", "start": 0, "npages": 1, "write": True},
                 {"op": "zap", "mm": "A", "start": 0, "npages": 1}, {"op": "unpin"},
                 {"op": "read", "mm": "A", "start": 0, "npages": 1}])
    assert run(sc).findings == []


# ---- item 4: the selftests' expectations as invariants --------------------------------------

def _without_expect(sc):
    sc = copy.deepcopy(sc)
    for a in sc["actors"]:
        for cmd in a["program"]:
            cmd.pop("expect", None)
    return sc


def test_a_pinned_page_never_migrates_without_the_selftests_expect(monkeypatch):
    # campaigns drop `expect`: the rule now holds in every execution
    _pin_not_counted(monkeypatch)
    f = only(run(_without_expect(get_scenario("gup-pin"))).findings)
    assert f.title.startswith("ASSERTION: a GUP-pinned page (pinned by test) was migrated "
                              "at pages:move")


def test_a_mapped_page_never_moves_to_device_memory():
    k = Kernel(resolve_variant("v6.1")[1], 1)
    k.add_device("dev0", 1)
    src = k.alloc_page("test", "migrate")
    src.mapping = "shmem"
    src.locked_by = "t"
    src.isolated = True
    dst = k.alloc_device_page("dev0", "test")      # allocated locked, as the driver does
    with pytest.raises(KernelBug) as e:
        k.assert_move(src, dst, "pages:move")
    assert e.value.finding.sites == ("mapping-to-device", "pages:move")


# ---- the intact engine: no assertion fires -----------------------------------------------

@pytest.mark.parametrize("variant", ["v5.15", "v5.16", "v6.1", "6.1.192", "6.12.117",
                                     "mainline", "blocking-lock"])
def test_no_assertion_on_the_builtin_scenarios(variant):
    for name in scenario_names():
        sc = get_scenario(name)
        for seed in range(6):
            r = execute(sc, variant, RandomWalk(seed), check=False)
            bad = [f.title for f in r.findings
                   if f.kind in ("VM_BUG_ON", "ASSERTION", "BAD_MAPCOUNT")]
            assert not bad, (name, seed, bad)


# ---- item 5: a skipped rmap update is one bucket named by its culprit ---------------------

SCS = [get_scenario(n) for n in scenario_names("concurrency") + scenario_names("known-bug")]


def test_a_skipped_rmap_update_is_one_bucket_named_by_its_step(monkeypatch):
    mu.break_method(monkeypatch, "map_dec", "collect:install_migration")
    c = Campaign(FuzzConfig("v6.1", SCS), 1)
    c.run(execs=3000)
    buckets = list(c.buckets)
    assert [b.kind for b in buckets].count("HANG") == 0, [b.title for b in buckets]
    named = [b for b in buckets if "collect:install_migration" in b.title]
    assert named and named[0] is buckets[0], [b.title for b in buckets]


def test_a_use_after_free_through_a_late_flushed_tlb_names_the_clear():
    # the other face of 60bae7370896's race (a stale TLB entry to a page freed since):
    # the title names the clear, the bucket stays the access site's
    k = Kernel(resolve_variant("v5.16")[1], 1)
    page = k.alloc_page("test", "map")
    k.flush_late_pfn[page.pfn] = "collect:install_migration"
    k.use_after_free(page, "cpu:tlb_write", "CPU access through a TLB entry")
    f = only(k.findings)
    assert f.sites == ("cpu:tlb_write",)
    assert f.title.endswith("the pte was cleared at collect:install_migration and not "
                            "flushed before its page-table lock was released "
                            "(60bae7370896's rule)")
