"""Oracles that look at a whole execution: the deadlock analysis when no actor can run, the
step bound, and the end-state checks once every actor has finished. (Oracles that fire
during the run, such as use-after-free and refcount underflow, live in the primitives.)"""
from __future__ import annotations

from .kernel.state import DEVICE, MIGRATION, NONE, PRESENT, SWAP, Kernel
from .kernel.fault import report_lost_write
from .kernel.gup import report_pin_lost_write
from .kernel.trail import leak_suffix, lock_taker, ref_taker

# references that a page may legitimately still hold once every actor has finished
_RESIDENT = ("map", "swapcache", "pagecache", "pgmap")


def _resource_site(k: Kernel, obj) -> str:
    kind, name = obj
    if kind == "page":
        return k.pages[name].lock_site
    if kind == "ptl":
        return k.mms[name].ptl_site
    return f"{kind}-lock"


def deadlock(k: Kernel, blocked: list) -> None:
    """No enabled actor while some are unfinished: report the wait-for cycle, or the
    orphaned lock whose holder has finished."""
    waiting = {a.name: (a, w) for a, w in blocked}
    for a, w in blocked:
        # follow holders from a until we return to a, or leave the blocked set
        path, cur = [a.name], a.name
        while True:
            holders = [h for h in waiting[cur][1].holders() if h is not None]
            nxt = next((h for h in holders if h in waiting), None)
            if nxt is None:
                break
            if nxt in path:
                cycle = path[path.index(nxt):]
                edges = []
                for name in cycle:
                    act, wt = waiting[name]
                    edges.append((wt.site, _resource_site(k, wt.obj), wt.what))
                parts = [f"{n} waits at {s} for a {what} taken at {held}"
                         for n, (s, held, what) in zip(cycle, edges)]
                k.report("DEADLOCK", "DEADLOCK: " + "; ".join(parts),
                         tuple(sorted(f"{s}<-{held}" for s, held, _ in edges)),
                         cycle=cycle, pfns=[waiting[n][1].obj[1] for n in cycle
                                            if waiting[n][1].obj[0] == "page"])
                return
            path.append(nxt)
            cur = nxt
    a, w = blocked[0]
    if w.obj[0] == "page" and any(f.kind == "LOCK_LEAK" and f.detail.get("pfn") == w.obj[1]
                                  for f in k.findings):
        return      # the leak a migration's end already reported: this wait is its effect
    holders = [h for h in w.holders() if h is not None]
    held = _resource_site(k, w.obj)
    text, extra = "", ()
    if w.obj[0] == "page":
        page = k.pages[w.obj[1]]
        text, extra = leak_suffix(k, page, lock_taker(k, page))
    k.report("DEADLOCK",
             f"DEADLOCK: {a.name} waits at {w.site} for a {w.what} taken at {held} by "
             f"{', '.join(holders) or 'nobody'}, which finished without releasing it"
             + text, (w.site, held, "orphaned") + extra, holders=holders,
             **({"pfn": w.obj[1]} if w.obj[0] == "page" else {}))


def hang(k: Kernel, blocked: list, max_steps: int, steps: int | None = None) -> None:
    """The step bound was reached, or (``steps`` below it) every live actor spins on, or
    waits behind, something no one can change any more (a livelock, the kernel's soft
    lockup): name what blocks, not where the actors happen to be.

    A page still locked by an actor that has finished is a leaked lock and the live actors
    spin on its consequences (fault retries, migration-entry waits): that is reported as
    the leak, under the signature the end-state check gives it, so one missing unlock is one
    bug. Otherwise the HANG's signature is the sites where the pages still locked were
    locked (what the spinning actors wait behind), and only with no page locked the sites
    still running. Measured on one injected missing unlock (finalize:unlock_old skipped,
    20,000 v6.1 executions): 12 HANG buckets by program counters, 1 by what blocks."""
    sites = sorted({(w.site if w is not None else a.pending[0]) for a, w in blocked})
    live = {a.name for a, _ in blocked}
    end = (f"no end within {max_steps} steps" if steps is None or steps >= max_steps
           else f"a livelock after {steps} steps (nothing left can change what they spin on)")
    running = f"{end}; {', '.join(sorted(live))} still running at " + ", ".join(sites)
    if any(f.kind in ("REFCOUNT_LEAK", "LRU_LEAK", "LOCK_LEAK") for f in k.findings):
        # a migration's leak seen when it ended (PageAlloc.assert_released): what the
        # live actors spin on is its consequence, one bug
        return
    locked = [p for p in k.pages.values() if not p.free and p.locked_by is not None]
    leaked = [p for p in locked if p.locked_by not in live]
    for page in leaked:
        k.lock_leak(page, consequence="HANG: " + running)
    if leaked or _leaked_references(k, live, "HANG: " + running):
        return
    held = sorted({p.lock_site for p in locked})
    if held:
        k.report("HANG", f"HANG: pages locked at {', '.join(held)} stay locked; " + running,
                 tuple(f"locked:{h}" for h in held))
    else:
        k.report("HANG", f"HANG: {end}; still running at " + ", ".join(sites),
                 tuple(sites))


def _off_lru(k: Kernel, page) -> None:
    """A system page in use (mapped, or in the swap or page cache) that is on no LRU list
    once every batch is drained, and not isolated by anyone: reclaim and compaction can
    never see it again, and every later migration of it fails to isolate it (-EBUSY).
    Every path that gives a page its first mapping adds it (lru_cache_add with the
    fault, the swap-in, the copy on write, a migration's new page); the finding is named
    by the page's first reference (where it was allocated) and the place that mapped it
    last."""
    born = next((row[2] for row in k.audit if row[3] == page.pfn and row[4][0] == "+"),
                "?")
    mapped = (page.refs.get("map") or ["?"])[-1]
    k.report("LRU_LEAK", f"LRU_LEAK: page allocated at {born} and mapped at {mapped} is on "
             f"no LRU list (never added, or taken off and not put back)",
             ("off-lru", born), pfn=page.pfn, audit=k.page_audit(page.pfn))


# references a command may leave behind on purpose: the mapping's and the caches' (above),
# a CPU's LRU batch, a GUP pin (dropped by a later unpin command), an isolation (reported
# by the end state's LRU_LEAK), and H3's stale swap-cache slot (its own finding)
_OUTLIVE_COMMAND = _RESIDENT + ("batch", "pin", "isolate", "swap_xarray")


def _leaked_references(k: Kernel, live: set, consequence: str) -> bool:
    """In a hang: kernel references whose taking command has ended (its actor went on to
    its next command, or finished): a put missing on a failure path, since every
    reference a syscall or fault takes for itself is dropped before it returns. What the
    live actors spin on is then their consequence (a migration that keeps failing its
    refcount check, a device pool that never refills), so the leak is reported under the
    signature the end-state check would give it, not as a HANG. Measured on collect's
    trylock-failure path without its put (v6.1, 1,500 executions): 13 HANG buckets by
    program counters, then one leak."""
    found = False
    starts = k.command_starts
    for page in k.pages.values():
        if page.free:
            continue
        for owner, takers in page.takers.items():
            if owner in _OUTLIVE_COMMAND:
                continue
            gone = [i for i, (who, step) in enumerate(takers) if who != "init" and (
                who not in live or any(s > step for s in starts.get(who, ())))]
            if gone:
                k.reference_leak(page, owner, gone[-1], consequence=consequence)
                found = True
    return found


def value_at(k: Kernel, mm, vpn: int):
    """What a read of (mm, vpn) would return now, without side effects."""
    pte = mm.walk(vpn) if mm.pmds else mm.pte(vpn)
    kind = pte[0]
    if kind in (PRESENT, DEVICE, MIGRATION):
        return pte[1].data
    if kind == SWAP:
        page = k.swapcache.get(pte[1])
        return page.data if page is not None else k.swap[pte[1]][0]
    vma = mm.vma_at(vpn)
    if kind == NONE and vma is not None and vma.shared:
        page = k.shm.get((vma.shm, vpn - vma.start))
        return page.data if page is not None else 0
    return 0


def _mappings(k: Kernel) -> dict[int, int]:
    """pfn -> how many present or device-private ptes and huge pmds map it: what its
    mapcount must be once every actor has finished (migration and swap entries are not
    mappings; a THP's pmd maps its head). Held over 3,780 random executions of every
    built-in scenario on v5.15, v5.16 and v6.1 with no exception."""
    out: dict[int, int] = {}
    for mm in k.mms.values():
        for pte in mm.ptes.values():
            if pte[0] in (PRESENT, DEVICE) and pte[1] is not None:
                out[pte[1].pfn] = out.get(pte[1].pfn, 0) + 1
        for pmd in mm.pmds.values():
            if pmd[0] == PRESENT:
                out[pmd[1].pfn] = out.get(pmd[1].pfn, 0) + 1
    return out


def _bad_mapcount(k: Kernel, page, maps: int) -> None:
    """The kernel's "Bad page map" (and page_mapcount underflow) class: a mapcount that
    does not match the page tables. Too low: named by where the last mapping reference was
    taken (a pte installed there without its rmap update). Too high: by the last place
    that changed the mapcount (an unmap that skipped its update shows as the one before)."""
    if page.mapcount < maps:
        site = (page.refs.get("map") or ["none"])[-1]
        how = f"mapped at {site} without a mapcount"
    else:
        site = next((row[2] for row in reversed(k.audit)
                     if row[3] == page.pfn and row[4] in ("+mapcount", "-mapcount")), "none")
        how = f"last mapcount change at {site}"
    k.report("BAD_MAPCOUNT", f"BAD_MAPCOUNT: page mapped by {maps} pte(s)/pmd(s) has "
             f"mapcount {page.mapcount} ({how})", ("mapcount", site), pfn=page.pfn,
             audit=k.page_audit(page.pfn))


def end_state(k: Kernel) -> None:
    """Every actor finished: drain the LRU batches, then check locks, references, LRU
    isolation, leftover migration entries and the data each address should hold."""
    k.cur = None
    k.lru_add_drain_all()
    mapped = _mappings(k)
    for page in k.pages.values():
        if page.free:
            continue
        if page.mapcount != mapped.get(page.pfn, 0):
            _bad_mapcount(k, page, mapped.get(page.pfn, 0))
        if page.locked_by is not None:
            k.lock_leak(page)
        if not (page.lru or page.isolated or page.device or page.head is not None) and (
                page.mapcount or page.mapping is not None):
            _off_lru(k, page)
        if page.isolated:
            k.isolation_leak(page)
        for owner, sites in page.refs.items():
            if not sites or owner in _RESIDENT or (owner == "isolate" and page.isolated):
                continue
            k.reference_leak(page, owner)
        maps = len(page.refs.get("map", ()))
        if maps > page.mapcount:
            site, who, step = ref_taker(page, "map")
            text, extra = leak_suffix(k, page, (who, step))
            k.report("REFCOUNT_LEAK", f"REFCOUNT_LEAK: mapping reference taken at {site} "
                     f"outlived its mapping" + text, ("map", site) + extra, pfn=page.pfn,
                     audit=k.page_audit(page.pfn))
    for mm in k.mms.values():
        for vpn, pmd in mm.pmds.items():
            if pmd[1].free:
                k.report("USE_AFTER_FREE", f"USE_AFTER_FREE: a huge pmd still maps a THP "
                         f"freed at {pmd[1].free_site}", ("pmd-maps-freed", pmd[1].free_site),
                         address=[mm.name, vpn])
        for vpn, pte in mm.ptes.items():
            if pte[0] == MIGRATION:
                site = mm.pte_sites.get(vpn, "?")
                k.report("STALE_MIGRATION_ENTRY", f"STALE_MIGRATION_ENTRY: migration entry "
                         f"installed at {site} was left behind", (site,),
                         address=[mm.name, vpn], pfn=pte[1].pfn)
            elif pte[0] in (PRESENT, DEVICE) and pte[1].free:
                k.report("USE_AFTER_FREE", f"USE_AFTER_FREE: a pte still maps a page freed "
                         f"at {pte[1].free_site}", ("pte-maps-freed", pte[1].free_site),
                         address=[mm.name, vpn])
    for key, exp in list(k.expect.items()):
        if key[0] == "shm":
            continue
        mm = k.mms.get(key[0])
        if mm is None:
            continue
        value = value_at(k, mm, key[1])
        if value not in exp:
            if k.last_write.get(key) == "gup-pin":
                pfn = k.written_pfn.get(key)
                report_pin_lost_write(k, key, k.pages[pfn], k.moved.get(pfn, (0, None))[1],
                                      value, sorted(exp)[0])
            else:
                report_lost_write(k, key, value, exp, "final check")
    _never_flushed(k)


def _never_flushed(k: Kernel) -> None:
    """60bae7370896's rule at the end: a present pte cleared while a TLB still held it
    and never flushed at all (a flush removed, not just late). Left out when the stale
    entry already did visible damage: that LOST_WRITE names the clear in its title."""
    if not k.tlb_pending or any(f.sites == ("stale-tlb",) for f in k.findings):
        return
    (name, vpn), (_, where, _) = next(iter(k.tlb_pending.items()))
    k.report("ASSERTION", f"ASSERTION: pte cleared at {where} while a TLB held it was "
             f"never flushed (60bae7370896's rule: flushed before its page-table lock is "
             f"released)", ("tlb-never-flushed", where), address=[name, vpn])


def page_audit(k: Kernel, pfn: int) -> list[list]:
    """The page_ref-style log of one page (Rmap.page_audit)."""
    return k.page_audit(pfn)
