"""Each oracle, proven on a deliberately broken copy of one step: an unlock removed, a
reference not dropped, a reference dropped twice, a flush removed, a restore skipped. The
oracle must fire, with a title that names the site."""
import pytest

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin
from migfuzz.fuzzer.kernel.state import Kernel
from mutations import break_method, skip_restore


def findings(scenario, variant, seeds=range(1), strategy=RandomWalk, **kw):
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    out = []
    for seed in seeds:
        out += execute(sc, variant, strategy(seed), check=False, **kw).findings
    return out


def kinds(fs):
    return {f.kind for f in fs}


@pytest.mark.parametrize("variant", ["v5.15", "v5.16", "v6.1"])
def test_intact_engine_is_clean(variant):
    assert findings("migrate", variant, strategy=RoundRobin) == []
    assert findings("overlap-2", variant, seeds=range(30)) == []


def test_unlock_removed_is_a_lock_leak(monkeypatch):
    break_method(monkeypatch, "unlock", "finalize:unlock_old")
    fs = findings("migrate", "v5.16", strategy=RoundRobin)
    leaks = [f for f in fs if f.kind == "LOCK_LEAK"]
    assert leaks and all("collect:trylock" in f.title for f in leaks)


def test_unlock_removed_on_a_failed_migration_leaves_the_page_locked(monkeypatch):
    # gup-pin: the pinned pages fail check_page and go through the restore loop
    break_method(monkeypatch, "unlock", "unmap:restore")
    fs = findings("gup-pin", "v5.16", strategy=RoundRobin)
    titles = [f.title for f in fs if f.kind in ("LOCK_LEAK", "DEADLOCK")]
    assert any("collect:trylock" in t for t in titles), titles


def one_mm(*actors, npages=2):
    return {"name": "custom", "mms": [{"name": "A", "vmas": [{"start": 0, "npages": npages}]}],
            "layout": [{"mm": "A", "start": 0, "npages": npages}],
            "actors": [{"name": n, "program": p} for n, p in actors]}


def migrate(**kw):
    return dict({"op": "migrate", "mm": "A", "start": 0, "npages": 2}, **kw)


def test_orphaned_lock_is_a_deadlock_with_its_holder(monkeypatch):
    # the first migration fails to isolate page 0 and finishes still holding its lock; the
    # second (blocking lock_page) waits for it forever
    break_method(monkeypatch, "unlock", "unmap:restore")
    sc = one_mm(("mig0", [migrate(fail_isolate=[0])]), ("mig1", [migrate()]))
    fs = execute(sc, "blocking-lock", RoundRobin()).findings
    # the leak is named where mig0's migration ended, by the restore that forgot it; the
    # waiter's deadlock is its consequence, not a second bucket
    assert [(f.kind, f.sites) for f in fs] == [
        ("LOCK_LEAK", ("collect:lock_page", "path:unmap:restore"))]
    assert fs[0].title.endswith("then took the path unmap:isolate_fail > unmap:restore)")
    # with that check off, the orphaned lock is still a DEADLOCK naming its holder and path
    from migfuzz.fuzzer.kernel.state import Kernel
    monkeypatch.setattr(Kernel, "assert_released", lambda self, *a: None)
    fs = execute(sc, "blocking-lock", RoundRobin()).findings
    dl = [f for f in fs if f.kind == "DEADLOCK"]
    assert dl, fs
    assert "mig1 waits at collect:lock_page" in dl[0].title
    assert "finished without releasing it" in dl[0].title and "mig0" in dl[0].title
    assert dl[0].title.endswith("then took the path unmap:isolate_fail > unmap:restore)")
    assert dl[0].sites == ("collect:lock_page", "collect:lock_page", "orphaned",
                           "path:unmap:restore")


def test_reference_not_dropped_is_a_refcount_leak(monkeypatch):
    break_method(monkeypatch, "put", "unmap:put_collect_ref")
    fs = findings("migrate", "v5.16", strategy=RoundRobin)
    leaks = [f for f in fs if f.kind == "REFCOUNT_LEAK"]
    assert leaks, fs
    assert any("migrate reference taken at collect:get" in f.title for f in leaks)
    audit = leaks[0].detail["audit"]
    assert any(row[2] == "collect:get" for row in audit)     # the page_ref-style log


def test_reference_dropped_twice_is_an_underflow(monkeypatch):
    break_method(monkeypatch, "put", "finalize:put_new", times=2)
    fs = findings("migrate", "v5.16", strategy=RoundRobin)
    under = [f for f in fs if f.kind == "REFCOUNT_UNDERFLOW"]
    assert under and under[0].title.startswith("REFCOUNT_UNDERFLOW: finalize:put_new dropped")


def test_isolation_never_undone_is_an_lru_leak(monkeypatch):
    break_method(monkeypatch, "putback_lru_page", "finalize:putback_old")
    fs = findings("gup-pin", "v5.16", strategy=RoundRobin)
    assert any(f.kind == "LRU_LEAK" and "unmap:isolate" in f.title for f in fs), fs


def test_flush_removed_loses_writes_on_v61(monkeypatch):
    break_method(monkeypatch, "flush_tlb_range", "collect:flush")
    fs = findings("madvise-race", "v6.1", seeds=range(3000))
    assert kinds(fs) & {"LOST_WRITE", "USE_AFTER_FREE"}, fs
    # the stale-TLB damage names the clear whose flush is missing
    lost = [f for f in fs if f.kind == "LOST_WRITE"]
    assert lost and all("cleared at collect:install_migration" in f.title for f in lost)


def test_restore_skipped_is_named_where_the_page_is_unlocked(monkeypatch):
    skip_restore(monkeypatch)
    # the driver fails to allocate a destination for page 1: finalize must restore it, and
    # unlocks the page with collect's migration entry still installed (the BUG_ON of
    # pfn_swap_entry_to_page: migration entries are used only under the page lock)
    fs = execute(one_mm(("mig0", [migrate(fail_alloc=[1])])), "v5.16", RoundRobin()).findings
    assert [(f.kind, f.sites) for f in fs] == [
        ("VM_BUG_ON", ("migration-entry-unlocked", "finalize:unlock_old"))], fs


def test_restore_skipped_leaves_a_stale_migration_entry(monkeypatch):
    skip_restore(monkeypatch)
    # without the unlock-time check (a kernel without the BUG_ON) the entry is still found
    # at the end, named by where it was installed
    monkeypatch.setattr(Kernel, "migration_entry_of", lambda self, page: None)
    fs = execute(one_mm(("mig0", [migrate(fail_alloc=[1])])), "v5.16", RoundRobin()).findings
    stale = [f for f in fs if f.kind == "STALE_MIGRATION_ENTRY"]
    assert [f.sites for f in stale] == [("collect:install_migration",)], fs
    assert "installed at collect:install_migration" in stale[0].title


def test_unpinned_device_fault_is_a_use_after_free():
    """v6.1 with the fix's switch turned off: the device page is freed under
    migrate_to_ram (the bug 16ce101db85d fixed)."""
    fs = findings("dp-fault-race", "v6.1-dp_fault_pins", seeds=range(3000))
    uaf = [f for f in fs if f.kind == "USE_AFTER_FREE"]
    assert uaf and "migrate_to_ram:zone_device_data" in uaf[0].title


def test_step_bound_is_a_hang():
    sc = get_scenario("overlap-2")
    sc["max_steps"] = 100
    fs = execute(sc, "v5.16", RoundRobin(), check=True).findings
    assert [f.kind for f in fs] == ["HANG"] and "100 steps" in fs[0].title
