"""migrate_vma_collect(): the page-table walk that picks the pages to migrate.

Follows migrate_vma_collect() and migrate_vma_collect_pmd() (mm/migrate.c up to v6.0,
mm/migrate_device.c from v6.1): the pmd path of a pmd-mapped THP (split it under its
lock), then the pte path (reference, trylock, migration entry, TLB flush). The
variants' switches flush_under_ptl, dirty_to_page, pfn_locked, blocking_lock and
thp_skip_put change this step.
"""
from __future__ import annotations

from .huge_memory import split_huge_page
from .migrate_vma import LOCKED, MIGRATE, VALID, WRITE, MigrateVma
from .state import DEVICE, HPAGE_NR, MIGRATION, NONE, PRESENT, ZERO, Kernel


def collect(k: Kernel, m: MigrateVma):
    """migrate_vma_collect(): walk the range pmd by pmd (migrate_vma_collect_pmd).

    Without huge pmds in the mm the whole range is one pte-level walk (one PTL per mm in
    this model). With huge pmds the walk goes pmd by pmd, as walk_page_range does: a
    pmd-mapped THP first goes through the pmd path, then the ptes are collected."""
    if not m.mm.pmds:
        # a plain function returning the generator: no extra frame on every step
        return _collect_ptes(k, m, 0, m.end - m.start)
    return _collect_pmds(k, m)


def _collect_pmds(k: Kernel, m: MigrateVma):
    mm = m.mm
    n = m.end - m.start
    lo = 0
    while lo < n:
        vpn = m.start + lo
        hi = min(n, lo + HPAGE_NR - vpn % HPAGE_NR)
        walk_ptes = True
        if mm.pmd_base(vpn) is not None:        # pmd_trans_huge(), read without the lock
            walk_ptes = yield from _collect_huge_pmd(k, m, vpn - vpn % HPAGE_NR)
        if walk_ptes:
            yield from _collect_ptes(k, m, lo, hi)
        lo = hi


def _collect_huge_pmd(k: Kernel, m: MigrateVma, base: int):
    """The THP branch of migrate_vma_collect_pmd(): under the pmd lock recheck the pmd,
    take a reference, drop the lock, trylock the head; split it under the lock, unlock
    and put. Returns True to go on with the pte-level walk over the split range, False
    for migrate_vma_collect_skip() (src stays 0 for the whole range).

    v5.15 to 6.12.117 and mainline up to v6.18: the trylock-failure return keeps the
    reference just taken; nothing ever drops it (a refcount leak, kernel-model.md section
    4; `thp_skip_put` is the hypothetical fix). `thp_fault_skip` (~v6.15) adds a second
    such return, "WARN_ON_ONCE(fault_folio == folio)", before the trylock.
    `thp_collect_locked` (the device-private THP series, v6.19) trylocks under the pmd
    lock and drops the reference when it fails.

    Also in the kernel, not here: the huge zero pmd (split_huge_pmd, then the pte level
    sees zero ptes; 6.1.192 skips the range if the pmd became unstable) and, after a
    successful split, 6.1.192's pmd_none() check / 6.12.117's failing
    pte_offset_map_lock() and "goto again" (docs/model.md says why neither changes an
    outcome in this model)."""
    sw = k.sw
    mm = m.mm
    yield ("collect:pmd", (mm.name, base))
    yield from k.lock_ptl(mm, "collect:pmd_lock")
    pmd = mm.pmds.get(base)
    if pmd is None:
        # split or zapped since the unlocked read: "goto again", the pte level handles it
        k.branch("collect:pmd_changed")
        k.unlock_ptl(mm)
        return True
    head = pmd[1]
    k.get(head, "migrate", "collect_pmd:get_page")
    if sw.thp_collect_locked:
        # v6.19: folio_trylock() with the pmd lock held; a lost trylock drops the
        # reference before migrate_vma_collect_skip()
        if not k.trylock(head, "collect_pmd:trylock_locked"):
            k.branch("collect_pmd:trylock_locked_fail", head)
            k.put(head, "migrate", "collect_pmd:trylock_locked_fail")
            k.unlock_ptl(mm)
            return False
        k.unlock_ptl(mm)
    else:
        k.unlock_ptl(mm)
        if sw.thp_fault_skip and head is m.fault_page:
            # "FIXME: we don't expect THP for fault_folio": skipped with the reference
            # held. The model's fault folio is always a device page and its THPs are
            # system memory, so no scenario reaches this (docs/model.md).
            k.branch("collect_pmd:fault_folio_skip", head)
            return False
        yield ("collect_pmd:trylock", ("page", head.pfn))
        if not k.trylock(head, "collect_pmd:trylock"):
            k.branch("collect_pmd:trylock_fail", head)
            if sw.thp_skip_put:
                k.put(head, "migrate", "collect_pmd:trylock_fail")
            return False
    yield ("collect_pmd:split", ("page", head.pfn))
    ret = yield from split_huge_page(k, head, "collect_pmd:split")
    if ret:
        k.branch("collect_pmd:split_fail", head)
    k.unlock(head, "collect_pmd:unlock")
    k.put(head, "migrate", "collect_pmd:put_page")
    return not ret


def _anon_exclusive(page) -> bool:
    """PageAnonExclusive, as this model can tell it: a system page of private anonymous
    memory (no mapping, or the swap cache) mapped by exactly one pte. The kernel keeps a
    page flag (set on a new anon page, a reused or exclusive swap-in, cleared when fork
    shares the page); a page mapped twice is never exclusive, and the model's pages
    mapped once are exclusive except the parent's copy after the child's COW (which the
    kernel re-marks exclusive at its next write fault): docs/model.md."""
    return (page.device is None and page.mapping != "shmem" and page.mapcount == 1)


def _large(page) -> bool:
    """folio_test_large() / PageTransCompound(): part of a THP that is mapped by ptes."""
    return bool(page.tails) or page.head is not None


def _collect_ptes(k: Kernel, m: MigrateVma, lo: int, hi: int):
    """The pte-level part of migrate_vma_collect_pmd() over entries [lo, hi), under the
    PTL, then the TLB flush for what it unmapped."""
    sw = k.sw
    mm, vma = m.mm, m.vma
    yield from k.lock_ptl(mm, "collect:ptl")
    unmapped = 0
    start, end = m.start + lo, m.start + hi
    i = lo
    while i < hi:
        vpn = m.start + i
        yield ("collect:pte", (mm.name, vpn))
        pte = mm.pte(vpn)
        kind = pte[0]
        if kind == NONE or kind == ZERO:
            # an empty pte of an anonymous vma is a hole for every caller; the zero page
            # only when system pages are selected (every release read: v5.15's "goto next"
            # before the zero-pfn test, 6.1+'s "is_zero_pfn(pfn) && SELECT_SYSTEM"), so the
            # device fault's migrate_to_ram (device-private only) skips it
            if (kind == ZERO and m.select_system) or (kind == NONE and vma.anonymous):
                k.branch("collect:hole")
                m.src[i] = MIGRATE
                m.cpages += 1
            i += 1
            continue
        page = pte[1]
        if kind == DEVICE:
            if not m.select_device or page.device != m.owner:
                k.branch("collect:device_skip")
                i += 1
                continue
        elif kind == PRESENT:
            if not m.select_system:
                i += 1
                continue
            if _large(page) and sw.collect_split_folio:
                # late 2025 (H2): drop the PTL, split the folio, "goto again"
                split = yield from _split_folio(k, m, page.head or page, unmapped,
                                                start, end)
                if not split:
                    return                   # migrate_vma_collect_skip(addr, end)
                yield from k.lock_ptl(mm, "collect:ptl")
                continue                     # the same address, now a small page
        else:                       # someone else's migration entry, or swap
            k.branch("collect:nonpresent_skip")
            i += 1
            continue
        if _large(page):
            # "FIXME support THP": a pte-mapped large folio is skipped (src = 0)
            k.branch("collect:compound_skip", page)
            i += 1
            continue
        mpfn = VALID | MIGRATE | (WRITE if pte[2] else 0)
        # "By getting a reference on the page we pin it and that blocks any kind of
        # migration. Side effect is that it freezes the pte."
        k.get(page, "migrate", "collect:get")
        if m.fault_locked and page is m.fault_page:
            # 1afaeb8293c9: do_swap_page already holds the fault folio's lock
            # ("fault_folio == folio || folio_trylock(folio)")
            k.branch("collect:fault_folio_locked", page)
            m.cpages += 1
        elif sw.pfn_locked:
            m.cpages += 1
            if not k.trylock(page, "collect:trylock"):
                k.branch("collect:defer_lock", page)      # prepare will retry the trylock
                m.src_page[i], m.src[i] = page, mpfn
                i += 1
                continue
            mpfn |= LOCKED
        elif sw.blocking_lock:
            if page.locked_by is not None:
                # cannot sleep under a spinlock: drop the PTL, sleep, retake, recheck
                k.unlock_ptl(mm)
                yield from k.lock_page(page, "collect:lock_page")
                yield from k.lock_ptl(mm, "collect:ptl")
                if mm.pte(vpn) != pte:
                    k.branch("collect:pte_changed_while_sleeping", page)
                    k.unlock(page, "collect:pte_changed")
                    k.put(page, "migrate", "collect:pte_changed")
                    i += 1
                    continue
            else:
                yield from k.lock_page(page, "collect:lock_page")
            m.cpages += 1
        elif k.trylock(page, "collect:trylock"):
            m.cpages += 1
        else:
            k.branch("collect:trylock_fail", page)
            k.put(page, "migrate", "collect:trylock_fail")
            i += 1
            continue
        yield ("collect:install_migration", (mm.name, vpn))
        # ptep_get_and_clear / ptep_clear_flush return the pte as it is now: with the PTL
        # held only the MMU can have changed it since it was read, setting the dirty bit
        # of a CPU's write in between, which must not be lost (fd35ca3d12cc reads the
        # returned pte; a stale copy lost a write after MADV_FREE to reclaim's discard)
        pte = mm.pte(vpn)
        if kind == PRESENT and sw.try_share_anon and _anon_exclusive(page):
            # 6c287605fd56: ptep_clear_flush() for an anon-exclusive page, then
            # page_try_share_anon_rmap(), which fails for a possibly pinned page: the pte
            # goes back and the page is left out before any migration entry exists
            k.flush_tlb_range(mm, vpn, vpn + 1, "collect:clear_flush")
            if page.refs.get("pin"):
                k.branch("collect:try_share_fail", page)
                m.cpages -= 1
                if not (m.fault_locked and page is m.fault_page):
                    k.unlock(page, "collect:try_share_fail")
                k.put(page, "migrate", "collect:try_share_fail")
                i += 1
                continue
            k.branch("collect:clear_flush", page)
        if kind == PRESENT and pte[3] and sw.dirty_to_page:
            page.dirty = True      # fd35ca3d12cc: the dirty bit moves to the page
        # ptep_get_and_clear: the pte (and, before fd35ca3d12cc, its dirty bit) is gone;
        # 2e3468778dbe keeps the dirty bit in the migration entry for the restore
        dirty = kind == PRESENT and pte[3] and sw.migration_entry_dirty
        k.set_pte(mm, vpn, (MIGRATION, page, pte[2], dirty), "collect:install_migration")
        k.map_dec(page, "collect:install_migration")
        # "This is like regular unmap: we remove the rmap and drop page refcount."
        k.put(page, "map", "collect:unmap_put")
        if kind == PRESENT:
            unmapped += 1
        m.src_page[i], m.src[i] = page, mpfn
        i += 1
    if sw.flush_under_ptl:
        if unmapped:
            yield ("collect:flush", (mm.name, "tlb"))
            k.flush_tlb_range(mm, start, end, "collect:flush")
        k.unlock_ptl(mm)
    else:
        k.unlock_ptl(mm)
        if unmapped:
            # the window 60bae7370896 closed: ptes are gone, other CPUs' TLBs are not
            yield ("collect:flush", (mm.name, "tlb"))
            k.branch("collect:flush_after_unlock")
            k.flush_tlb_range(mm, start, end, "collect:flush")


def _split_folio(k: Kernel, m: MigrateVma, head, unmapped: int, start: int, end: int):
    """The large-folio exit of the pte loop (mainline, late 2025; H2): with the
    PTL dropped (pte_unmap_unlock), migrate_vma_split_folio(): folio_get, a blocking
    folio_lock (unless it is the fault folio) while the pages collected so far stay
    locked, split_folio, unlock, put. Success: True ("goto again": the caller retakes
    the PTL and collects the same address, now a small page). Failure: the TLB is
    flushed for what was already unmapped, after the PTL was dropped, and the rest of
    the range is skipped: False.

    Entries cleared before this point without a flush (ptep_get_and_clear for pages
    that are not anon-exclusive) stay in other CPUs' TLBs from the unlock until the
    flush at the end of the walk (success) or here (failure). And the folio, read from
    the pte under the PTL, is referenced only after the unlock: a migration or zap that
    frees it in between makes folio_get/folio_lock/split_folio touch a freed page
    (`split_folio_get_first` is the hypothetical fix)."""
    mm = m.mm
    own = not (m.fault_locked and head is m.fault_page)
    if own and k.sw.split_folio_get_first:
        # the hypothetical fix: pin the folio while the pte still maps it
        k.get(head, "migrate", "collect:split_folio_get")
    k.unlock_ptl(mm)
    k.branch("collect:split_folio", head)
    yield ("collect:split_folio", ("page", head.pfn))
    if own:
        if not k.sw.split_folio_get_first:
            # folio_get() with no lock held: nothing kept the folio alive since the
            # unlock (a racing migration or zap may have freed it)
            k.get(head, "migrate", "collect:split_folio_get")
        yield from k.lock_page(head, "collect:split_folio_lock")
    ret = yield from split_huge_page(k, head, "collect:split_folio")
    if own:
        k.unlock(head, "collect:split_folio_unlock")
        k.put(head, "migrate", "collect:split_folio_put")
    if ret:
        k.branch("collect:split_folio_fail", head)
        if unmapped:
            yield ("collect:flush", (mm.name, "tlb"))
            k.branch("collect:split_fail_flush_after_unlock")
            k.flush_tlb_range(mm, start, end, "collect:flush")
        return False
    return True
