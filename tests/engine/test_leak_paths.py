"""Issue 13 item 3 for leaks: a leaked lock or reference is named by where it was taken
AND by the path its holder took afterwards (the failure path that forgot the release),
charged to the actor that took it, not to whoever took the same site's reference last;
a page in use that is on no LRU list is a leak too; a device entry's zap is named apart.
Each test injects the bug with tests/engine/mutations.py and fails on the engine before
page trails (titles then named only the taking site)."""
from __future__ import annotations

from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RoundRobin
import mutations as mu
from test_assertions import one_mm

MIG = {"op": "migrate", "mm": "A", "start": 0, "npages": 2}
READ = {"op": "read", "mm": "A", "start": 0, "npages": 2}
WRITE = {"op": "write", "mm": "A", "start": 0, "npages": 2}


def findings(sc, variant="v6.1"):
    return execute(sc, variant, RoundRobin(), check=False).findings


def test_a_put_missing_on_a_failure_path_names_that_path(monkeypatch):
    # unmap's check fails for page 0 (its isolation is refused) and the restore forgets
    # collect's reference: the leak names the restore, where it should have been put
    mu.break_method(monkeypatch, "put", "unmap:restore")
    fs = findings(one_mm([dict(MIG, fail_isolate=[0])]))
    leak = [f for f in fs if f.kind == "REFCOUNT_LEAK"]
    assert len(leak) == 1, [f.title for f in fs]
    assert leak[0].title == (
        "REFCOUNT_LEAK: migrate reference taken at collect:get was never dropped (its "
        "holder t0 then took the path unmap:isolate_fail > unmap:restore)")
    assert leak[0].sites == ("migrate", "collect:get", "path:unmap:restore")


def test_a_putback_skipped_on_a_restore_names_the_restore(monkeypatch):
    # finalize's putback of the old page removed; page 0 was restored (its new page
    # failed to allocate) and stays isolated: seen when that finalize returns, named by
    # the restore
    mu.break_method(monkeypatch, "putback_lru_page", "finalize:putback_old")
    fs = findings(one_mm([dict(MIG, fail_alloc=[0])]))
    assert [(f.title, f.sites, f.detail["seen_at"]) for f in fs] == [
        ("LRU_LEAK: page isolated at unmap:isolate was never put back (its holder t0 then "
         "took the path finalize:restore)", ("unmap:isolate", "path:finalize:restore"),
         "finalize:done"),
        ("LRU_LEAK: page isolated at unmap:isolate was never put back (its holder t0 then "
         "took the path pages:moved)", ("unmap:isolate", "path:pages:moved"),
         "finalize:done")]


def test_the_same_sites_leak_is_charged_to_its_own_holder():
    # two migrations of one THP: both take collect_pmd:get_page's reference; the one whose
    # split fails puts its own, the one whose trylock failed keeps it (the known leak).
    # Charged to the last taker instead, the path was the split's ("split:busy").
    from migfuzz.corpus.builtin import get_scenario
    from migfuzz.fuzzer.scheduler import RandomWalk
    for seed in range(60):
        r = execute(get_scenario("thp-collect-race"), "v6.1", RandomWalk(seed), seed=seed,
                    check=False)
        if r.findings:
            break
    f = r.findings[0]
    assert f.sites[-1] == "path:collect_pmd:trylock_fail", f.title
    holder = f.title.split("its holder ")[1].split()[0]
    took = [row for row in f.detail["audit"] if row[2] == "collect_pmd:trylock_fail"
            or (row[2] == "collect_pmd:put_page" and row[1] == holder)]
    assert not [row for row in took if row[1] == holder], (holder, took)


def test_a_lock_freed_while_held_is_the_same_bucket_as_its_leak(monkeypatch):
    # finalize forgets to unlock the old page: seen when finalize returns (the migration
    # still holds it); the page freed still locked later is the same bug, the same bucket
    # (taking site and holder's path), not one of its own ("freed-while-locked" before)
    mu.break_method(monkeypatch, "unlock", "finalize:unlock_old")
    fs = [f for f in findings(one_mm([MIG])) if f.kind == "LOCK_LEAK"]
    assert [(f.title, f.sites, f.detail.get("seen_at")) for f in fs] == [
        ("LOCK_LEAK: page locked at collect:trylock by t0 was never unlocked (its holder t0 "
         "then took the path pages:moved)", ("collect:trylock", "path:pages:moved"),
         "finalize:done")]
    assert fs[0].signature == findings_sig_freed_while_locked(monkeypatch)


def findings_sig_freed_while_locked(monkeypatch):
    # the same leak reported by the free (the check at finalize switched off)
    from migfuzz.fuzzer.kernel.state import Kernel
    monkeypatch.setattr(Kernel, "assert_released", lambda self, *a: None)
    fs = [f for f in findings(one_mm([MIG])) if f.kind == "LOCK_LEAK"]
    assert "was freed by lru_add_drain while locked" in fs[0].title
    return fs[0].signature


def test_a_page_never_added_to_the_lru_is_a_leak(monkeypatch):
    # 6.1.192's finalize adds the new page to the LRU first (finalize_lru_first); without
    # that add the page migrate_to_ram brought back is mapped but on no LRU list
    mu.break_method(monkeypatch, "lru_cache_add", "finalize:add_lru")
    fs = findings(one_mm([MIG, READ]), "6.1.192")
    lru = [f for f in fs if f.kind == "LRU_LEAK"]
    assert lru and lru[0].sites[0] == "off-lru", [f.title for f in fs]
    assert "is on no LRU list" in lru[0].title


def test_without_the_bug_every_page_in_use_is_on_an_lru():
    assert findings(one_mm([MIG, READ]), "6.1.192") == []


def test_a_device_entry_zapped_without_its_rmap_update_names_the_device_branch(monkeypatch):
    # the child's copy keeps the device page alive, so the mapcount check at the PTL
    # release sees it: named by the device-entry branch, not by the zap's step
    mu.break_method(monkeypatch, "map_dec", "zap:device_entry")
    sc = one_mm([MIG, {"op": "fork", "mm": "A", "child": "B"},
                 {"op": "zap", "mm": "A", "start": 0, "npages": 2}])
    bad = [f for f in findings(sc) if f.kind == "BAD_MAPCOUNT"]
    assert bad and bad[0].sites == ("mapcount", "zap:device_entry"), [f.title for f in bad]
