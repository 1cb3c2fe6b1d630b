"""CPU accesses and their fault paths: what a user reads and writes, and what it should
have read.

Follows mm/memory.c (handle_mm_fault -> handle_pte_fault: do_anonymous_page,
do_wp_page, do_swap_page with its device-private branch), mm/shmem.c (shmem_fault) and
mm/migrate.c (migration_entry_wait; migration_entry_wait_on_locked in mm/filemap.c from
v6.1). kernel-model.md section 3.
"""
from __future__ import annotations

from .driver import devmem_fault
from .state import DEVICE, MIGRATION, MM, NONE, PRESENT, SWAP, ZERO, Kernel, Wait


def check_read(k: Kernel, key: tuple, value: int, site: str, stale: bool = False) -> None:
    if k.zaps_inflight.get(key):
        return      # racing with MADV_DONTNEED: the old data, zeroes or a new write are all fine
    exp = k.expect.get(key)
    if exp is not None and value not in exp:
        report_lost_write(k, key, value, exp, site, stale)
    elif k.last_write.get(key) != "madvise-free":
        # a racing write's outcome is now known (after MADV_FREE it is not: reclaim may
        # still discard the page until the next write)
        k.expect[key] = frozenset((value,))


def report_lost_write(k: Kernel, key: tuple, value: int, exp: frozenset, site: str,
                      stale_read: bool = False) -> None:
    how = k.last_write.get(key, "initial")
    # one bucket for both faces of a stale TLB entry: the write it swallowed, the old data
    # it still shows
    if how == "stale-tlb":
        title = ("LOST_WRITE: a write through a stale TLB entry (pte already cleared, "
                 "flush still pending) never reached the page that is mapped now")
        sites = ("stale-tlb",)
    elif stale_read:
        title = ("LOST_WRITE: a read through a stale TLB entry (pte already cleared, "
                 "flush still pending) returned data the address no longer holds")
        sites = ("stale-tlb",)
    else:
        origin = k.origin.get(key, "initial")
        via = k.write_via.get(key) if how in ("pte", "tlb") else None
        title = (f"LOST_WRITE: read at {site} returned data older than the last write "
                 f"(page filled by {origin}{_mapped_by(k, key)}"
                 + (f"; the write went through a pte set at {via})" if via else ")"))
        sites = ("read-after:" + origin,)
    pfn = k.written_pfn.get(key)
    k.report("LOST_WRITE", title, sites, address=list(key), read=value,
             expected=sorted(exp), **({"pfn": pfn} if pfn is not None else {}))


def _mapped_by(k: Kernel, key: tuple) -> str:
    """Where the pte a stale value was read through was written (title text): the
    mapping that should not be there is the culprit more often than the page's origin
    (a remap from a stale pte read, a restore after a zap)."""
    mm = k.mms.get(key[0])
    site = mm.pte_sites.get(key[1]) if mm is not None and len(key) == 2 else None
    return f", mapped at {site}" if site else ""


def cpu_access(k: Kernel, actor, mm: MM, vpn: int, write: bool, value: int = 0):
    """One user load or store: TLB hit, else a hardware walk, else a page fault and retry.
    Returns False on SIGSEGV. A huge pmd maps its subpage like a pte; a write through a
    writable pmd never faults, so the fault paths only ever see ptes (a split pmd is
    ordinary ptes)."""
    key = k.mem_key(mm, vpn)
    tlb = k.tlbs[actor.cpu]
    tkey = (mm.name, vpn)
    while True:
        yield ("cpu:write" if write else "cpu:read", tkey)
        ent = tlb.get(tkey)
        if ent is not None and (not write or (ent[2] and ent[3])):
            page, gen = ent[0], ent[1]
            pte = mm.walk(vpn) if mm.pmds else mm.pte(vpn)
            stale = not (pte[0] == PRESENT and pte[1] is page)
            site = "cpu:tlb_write" if write else "cpu:tlb_read"
            if not k.touch(page, gen, site, "CPU access through a TLB entry"):
                return True
            if write:
                page.data = value
                k.expect_write(key, value, "stale-tlb" if stale else "tlb", page.pfn)
                if not stale:       # the TLB entry is the pte's: name where it was set
                    k.write_via[key] = mm.pte_sites.get(vpn, "")
            else:
                check_read(k, key, page.data, site, stale)
            return True
        # the hardware walk reads the pte (or huge pmd) without locks
        pte = mm.walk(vpn) if mm.pmds else mm.pte(vpn)
        if pte[0] == PRESENT and (not write or pte[2]):
            page = pte[1]
            if write and not pte[3]:
                base = mm.pmd_base(vpn) if mm.pmds else None
                if base is None:
                    k.set_pte(mm, vpn, (PRESENT, page, True, True))
                else:                 # the walk sets the huge pmd's dirty bit
                    mm.pmds[base] = (PRESENT, mm.pmds[base][1], True, True)
            tlb[tkey] = (page, page.gen, pte[2], write or pte[3])
            if not k.touch(page, page.gen, "cpu:walk", "CPU access through a pte"):
                return True
            if write:
                page.data = value
                k.expect_write(key, value, "pte", page.pfn)
                k.write_via[key] = mm.pte_sites.get(vpn, "")
            else:
                check_read(k, key, page.data, "cpu:walk")
            return True
        if pte[0] == ZERO and not write:
            check_read(k, key, 0, "cpu:zero_page")
            return True
        ok = yield from handle_fault(k, actor, mm, vpn, write)
        if not ok:
            k.branch("fault:sigsegv")
            return False


def handle_fault(k: Kernel, actor, mm: MM, vpn: int, write: bool):
    """handle_mm_fault under the mmap read lock, for a user access (and GUP). Returns False
    for SIGSEGV; True means 'retry the access'. A device-private fault that lost its
    trylock returns to user space and refaults until the folio is unlocked: a spin, but
    a preemptible one (the return to user space is a schedule point; GUP's loop has its
    cond_resched)."""
    yield ("fault:mmap_lock", ("mmap", mm.name))
    yield from k.mmap_read_lock(mm, "fault:mmap_lock")
    ok, spin = yield from handle_mm_fault(k, actor, mm, vpn, write)
    k.mmap_read_unlock(mm)
    if spin is not None:
        yield from spin_retry(k, actor, spin, preemptible=True)
    return ok


def handle_mm_fault(k: Kernel, actor, mm: MM, vpn: int, write: bool):
    """handle_mm_fault -> handle_pte_fault with the mmap lock held by the caller. Returns
    (ok, spin): ok False for SIGSEGV; spin, when not None, is what a failed device-private
    trylock read (page, mm, vpn, pte): the caller retries until it changes."""
    vma = mm.vma_at(vpn)
    if vma is None or vma.prot == "none" or (write and not vma.writable):
        return False, None
    orig = mm.pte(vpn)                # vmf->orig_pte, read without the PTL
    kind = orig[0]
    spin = None
    if kind == NONE:
        if vma.shared:
            yield from shmem_fault(k, mm, vpn)
        else:
            yield from do_anonymous_page(k, mm, vpn, write)
    elif kind == ZERO or kind == PRESENT:
        if write:
            yield from do_wp_page(k, actor, mm, vpn)
    elif kind == SWAP:
        yield from do_swap_page(k, mm, vpn, orig, write)
    elif kind == MIGRATION:
        yield from migration_entry_wait(k, mm, vpn)
    elif kind == DEVICE:
        spin = yield from device_private_fault(k, mm, vpn, orig)
    return True, spin


def spin_retry(k: Kernel, actor, spin: tuple, preemptible: bool):
    """The fault retried after a failed device-private trylock (1afaeb8293c9 without
    b570f37a2ce4): every retry finds the same locked folio behind the same pte until the
    holder unlocks it or the pte changes. The model does not run those identical retries
    one by one (an unfair schedule could run them forever while the holder waits to be
    picked: a hang no kernel has); the actor waits for the change instead, registered
    as spinning, so the CPU counts as busy when the spin has no schedule point
    (``preemptible`` False: hmm_range_fault's walk) and a stall with it is a livelock."""
    page, mm, vpn, orig = spin

    def changed() -> bool:
        return page.locked_by is None or mm.pte(vpn) != orig

    if changed():
        return
    k.spin(actor, "fault:dp_trylock_spin", preemptible)
    yield Wait("fault:dp_trylock_spin", ("page", page.pfn), changed,
               lambda: [page.locked_by], "page lock (trylock retried without sleeping)")
    k.unspin(actor)


def do_anonymous_page(k: Kernel, mm: MM, vpn: int, write: bool):
    key = k.mem_key(mm, vpn)
    if not write:
        yield from k.lock_ptl(mm, "fault:anon_zero")
        if mm.pte(vpn)[0] == NONE:
            k.set_pte(mm, vpn, (ZERO, None, False, False))
            k.origin[key] = "zero-page"
        k.unlock_ptl(mm)
        return
    page = k.alloc_page("fault:anon_alloc", owner="map")
    page.ident = "anon:%s#%d" % (mm.name, vpn)
    yield ("fault:anon_map", (mm.name, vpn))
    yield from k.lock_ptl(mm, "fault:anon_map")
    if mm.pte(vpn)[0] != NONE:
        k.branch("fault:anon_raced", page)
        k.unlock_ptl(mm)
        k.put(page, "map", "fault:anon_raced")
        return
    k.set_mapcount(page, 1, "fault:anon_map")
    k.lru_cache_add(page, "fault:anon_map")
    k.set_pte(mm, vpn, (PRESENT, page, True, True))
    k.origin[key] = "zero-fill"
    k.unlock_ptl(mm)


def shmem_fault(k: Kernel, mm: MM, vpn: int):
    vma = mm.vma_at(vpn)
    skey = (vma.shm, vpn - vma.start)
    page = k.shm.get(skey)
    if page is None:
        page = k.alloc_page("shmem:alloc", owner="pagecache")
        page.mapping = "shmem"
        page.ident = "shm:%s#%d" % skey
        k.shm[skey] = page
        k.lru_cache_add(page, "shmem:alloc")
    yield ("fault:shmem_map", (mm.name, vpn))
    yield from k.lock_ptl(mm, "fault:shmem_map")
    if mm.pte(vpn)[0] == NONE:
        k.get(page, "map", "fault:shmem_map")
        k.map_inc(page, "fault:shmem_map")
        k.set_pte(mm, vpn, (PRESENT, page, vma.writable, False))
    k.unlock_ptl(mm)


def do_wp_page(k: Kernel, actor, mm: MM, vpn: int):
    """Write to a read-only pte (or the zero page): reuse the page if nobody else can see
    it, else copy it."""
    key = k.mem_key(mm, vpn)
    vma = mm.vma_at(vpn)
    yield from k.lock_ptl(mm, "fault:wp")
    pte = mm.pte(vpn)
    if pte[0] == PRESENT and pte[2]:
        k.unlock_ptl(mm)
        return
    if pte[0] == PRESENT:
        page = pte[1]
        if vma.shared:
            k.set_pte(mm, vpn, (PRESENT, page, True, True))
            k.unlock_ptl(mm)
            return
        if page.batch_cpu == actor.cpu:
            k.lru_add_drain(actor.cpu)
        # "if (page_count(page) > 1 + PageSwapCache(page)) goto copy", and a swap slot
        # still referenced by another mm's swap pte (after fork) keeps the page shared:
        # try_to_free_swap fails and the page is copied. An exclusive page stays in the
        # swap cache when reused, as with PageAnonExclusive (5.19+) or writeback (5.15).
        swap_shared = (page.mapping == "swapcache"
                       and k.swap.get(page.swap_slot, (0, 0))[1] > 0)
        if (page.mapcount == 1 and not swap_shared
                and page.refcount == 1 + (page.mapping == "swapcache")):
            k.branch("fault:wp_reuse", page)
            k.set_pte(mm, vpn, (PRESENT, page, True, True), "fault:wp_reuse")
            k.unlock_ptl(mm)
            return
        k.get(page, "cow", "fault:wp_copy")
    elif pte[0] != ZERO:
        k.unlock_ptl(mm)
        return
    else:
        page = None
    k.unlock_ptl(mm)
    new = k.alloc_page("fault:wp_alloc", owner="map")
    new.ident = "cow:%s#%d" % (mm.name, vpn)
    if page is not None:
        yield ("fault:wp_copy", ("page", page.pfn))
        if k.touch(page, page.gen, "fault:wp_copy", "copy on write"):
            new.data = page.data
    yield ("fault:wp_map", (mm.name, vpn))
    yield from k.lock_ptl(mm, "fault:wp_map")
    if mm.pte(vpn) == pte:
        k.flush_tlb_range(mm, vpn, vpn + 1, "fault:wp_map")
        k.set_mapcount(new, 1, "fault:wp_map")
        k.lru_cache_add(new, "fault:wp_map")
        k.set_pte(mm, vpn, (PRESENT, new, True, True))
        k.origin[key] = "cow"
        if page is not None:
            k.map_dec(page, "fault:wp_unmap_old")
            k.put(page, "map", "fault:wp_unmap_old")
    else:
        k.branch("fault:wp_raced", new)
        k.put(new, "map", "fault:wp_raced")
    k.unlock_ptl(mm)
    if page is not None:
        k.put(page, "cow", "fault:wp_copy_done")


def do_swap_page(k: Kernel, mm: MM, vpn: int, orig: tuple, write: bool):
    """Swap-in: find or read the page into the swap cache, lock it, recheck the pte, map."""
    key = k.mem_key(mm, vpn)
    slot = orig[1]
    page = k.swapcache.get(slot)
    if page is None:
        if slot not in k.swap:
            return
        page = k.alloc_page("swapin:alloc", owner="map")
        page.ident = "swap:%d" % slot
        page.data = k.swap[slot][0]
        page.mapping = "swapcache"
        page.swap_slot = slot
        k.swapcache[slot] = page
        k.get(page, "swapcache", "swapin:add_to_swap_cache")
        k.lru_cache_add(page, "swapin:alloc")
    else:
        k.get(page, "map", "swapin:lookup")
    yield ("fault:swap_lock_page", ("page", page.pfn))
    yield from k.lock_page(page, "fault:swap_lock_page")
    yield ("fault:swap_map", (mm.name, vpn))
    yield from k.lock_ptl(mm, "fault:swap_map")
    if mm.pte(vpn) != orig or page.swap_slot != slot:
        k.branch("fault:swap_raced", page)
        k.unlock_ptl(mm)
        k.unlock(page, "fault:swap_raced")
        k.put(page, "map", "fault:swap_raced")
        return
    # reuse_swap_page (v5.15/v5.16: mapcount + swap count <= 1, checked before this
    # mapping is added) and v6.1's exclusive-or-sole-reference test agree: a swap-cache
    # page that another mm already mapped (a fork child that swapped it in first) is
    # shared even when this pte is the slot's last user, so it is mapped read-only and
    # the write goes through do_wp_page's copy
    exclusive = k.swap[slot][1] <= 1 and page.mapcount == 0
    writable = write and exclusive
    k.map_inc(page, "fault:swap_map")
    k.set_pte(mm, vpn, (PRESENT, page, writable, writable))
    k.origin[key] = "swap-in"
    k.swap_free(slot)
    k.unlock_ptl(mm)
    k.unlock(page, "fault:swap_unlock")


def migration_entry_wait(k: Kernel, mm: MM, vpn: int):
    """Wait for the page behind a migration entry to be unlocked, then retry the fault."""
    yield from k.lock_ptl(mm, "fault:migration_wait")
    pte = mm.pte(vpn)
    if pte[0] != MIGRATION:
        k.unlock_ptl(mm)
        return
    page = pte[1]
    if k.sw.wait_takes_ref:
        # __migration_entry_wait: get_page_unless_zero, drop the PTL, then
        # put_and_wait_on_page_locked drops the reference once queued
        if not k.get_unless_zero(page, "wait", "fault:migration_wait_ref"):
            k.unlock_ptl(mm)
            return
        k.unlock_ptl(mm)
        yield ("fault:migration_wait_put", ("page", page.pfn))
        k.put(page, "wait", "fault:migration_wait_put")
    else:
        k.unlock_ptl(mm)       # migration_entry_wait_on_locked: queued, then the PTL drops
    k.branch("fault:migration_wait", page)
    yield from k.wait_unlocked(page, "fault:migration_wait")


def device_private_fault(k: Kernel, mm: MM, vpn: int, orig: tuple):
    """do_swap_page on a device-private entry: call the driver's migrate_to_ram.

    Up to v6.0 with no reference, lock or PTL; from v6.1 (dp_fault_pins) the pte is
    rechecked under the PTL and a reference pins the page; from 1afaeb8293c9
    (dp_fault_trylock, ~v6.15) the folio is also trylocked under the PTL ("if
    (trylock_page(vmf->page))": lock, then get_page, drop the PTL, migrate_to_ram,
    unlock_page, put_page). A failed trylock drops the PTL and returns 0, so the fault is
    retried at once (returned to the caller as the spin to retry); with b570f37a2ce4
    (dp_fault_waits) it sleeps in softleaf_entry_wait_on_locked instead: queued on the
    folio under the PTL, which it drops, with no reference. Returns None or the spin."""
    page = orig[1]
    gen = page.gen
    sw = k.sw
    if not sw.dp_fault_pins:
        # up to v6.0: no reference, no lock, no PTL while the callback runs.
        # dp_fault_trylock changes 16ce101db85d's recheck-and-pin block, so without that
        # block it has nothing to change (a variant with the trylock but not the pin is
        # this path, not a trylock without the pin that migrate_vma_pages would refuse)
        yield from devmem_fault(k, mm, vpn, page, gen, None)
        return None
    yield from k.lock_ptl(mm, "fault:dp_recheck")
    if mm.pte(vpn) != orig:
        k.branch("fault:dp_raced", page)
        k.unlock_ptl(mm)
        return None
    if not sw.dp_fault_trylock:
        k.get(page, "fault", "fault:dp_pin")
        k.unlock_ptl(mm)
        yield from devmem_fault(k, mm, vpn, page, gen, page)
        k.put(page, "fault", "fault:dp_unpin")
        return None
    if k.trylock(page, "fault:dp_trylock"):
        k.get(page, "fault", "fault:dp_pin")
        k.unlock_ptl(mm)
        yield from devmem_fault(k, mm, vpn, page, gen, page)
        yield ("fault:dp_unlock", ("page", page.pfn))
        k.unlock(page, "fault:dp_unlock")
        k.put(page, "fault", "fault:dp_unpin")
        return None
    if sw.dp_fault_waits:
        k.unlock_ptl(mm)
        k.branch("fault:dp_wait_locked", page)
        yield from k.wait_unlocked(page, "fault:dp_wait_locked")
        return None
    k.unlock_ptl(mm)
    k.branch("fault:dp_trylock_fail", page)
    return (page, mm, vpn, orig)
