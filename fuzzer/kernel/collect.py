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
    """The THP branch of migrate_vma_collect_pmd(), the same in v5.15, v5.16 and v6.1:
    under the pmd lock recheck the pmd, take a reference, drop the lock, trylock the
    head; split it under the lock, unlock and put. Returns True to go on with the
    pte-level walk over the split range, False for migrate_vma_collect_skip() (src stays
    0 for the whole range).

    The trylock-failure return keeps the reference just taken: nothing ever drops it (a
    refcount leak, kernel-model.md section 4; `thp_skip_put` is the hypothetical fix)."""
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
    k.unlock_ptl(mm)
    yield ("collect_pmd:trylock", ("page", head.pfn))
    if not k.trylock(head, "collect_pmd:trylock"):
        k.branch("collect_pmd:trylock_fail")
        if k.sw.thp_skip_put:
            k.put(head, "migrate", "collect_pmd:trylock_fail")
        return False
    yield ("collect_pmd:split", ("page", head.pfn))
    ret = yield from split_huge_page(k, head, "collect_pmd:split")
    k.unlock(head, "collect_pmd:unlock")
    k.put(head, "migrate", "collect_pmd:put_page")
    if ret:
        k.branch("collect_pmd:split_fail")
        return False
    return True


def _collect_ptes(k: Kernel, m: MigrateVma, lo: int, hi: int):
    """The pte-level part of migrate_vma_collect_pmd() over entries [lo, hi), under the
    PTL, then the TLB flush for what it unmapped."""
    sw = k.sw
    mm, vma = m.mm, m.vma
    yield from k.lock_ptl(mm, "collect:ptl")
    unmapped = 0
    for i in range(lo, hi):
        vpn = m.start + i
        yield ("collect:pte", (mm.name, vpn))
        pte = mm.pte(vpn)
        kind = pte[0]
        if kind == NONE or kind == ZERO:
            if kind == ZERO or vma.anonymous:
                k.branch("collect:hole")
                m.src[i] = MIGRATE
                m.cpages += 1
            continue
        page = pte[1]
        if kind == DEVICE:
            if not m.select_device or page.device != m.owner:
                k.branch("collect:device_skip")
                continue
        elif kind == PRESENT:
            if not m.select_system:
                continue
        else:                       # someone else's migration entry, or swap
            k.branch("collect:nonpresent_skip")
            continue
        mpfn = VALID | MIGRATE | (WRITE if pte[2] else 0)
        # "By getting a reference on the page we pin it and that blocks any kind of
        # migration. Side effect is that it freezes the pte."
        k.get(page, "migrate", "collect:get")
        if sw.pfn_locked:
            m.cpages += 1
            if not k.trylock(page, "collect:trylock"):
                k.branch("collect:defer_lock")      # prepare will retry the trylock
                m.src_page[i], m.src[i] = page, mpfn
                continue
            mpfn |= LOCKED
        elif sw.blocking_lock:
            if page.locked_by is not None:
                # cannot sleep under a spinlock: drop the PTL, sleep, retake, recheck
                k.unlock_ptl(mm)
                yield from k.lock_page(page, "collect:lock_page")
                yield from k.lock_ptl(mm, "collect:ptl")
                if mm.pte(vpn) != pte:
                    k.branch("collect:pte_changed_while_sleeping")
                    k.unlock(page, "collect:pte_changed")
                    k.put(page, "migrate", "collect:pte_changed")
                    continue
            else:
                yield from k.lock_page(page, "collect:lock_page")
            m.cpages += 1
        elif k.trylock(page, "collect:trylock"):
            m.cpages += 1
        else:
            k.branch("collect:trylock_fail")
            k.put(page, "migrate", "collect:trylock_fail")
            continue
        yield ("collect:install_migration", (mm.name, vpn))
        if kind == PRESENT and pte[3] and sw.dirty_to_page:
            page.dirty = True      # fd35ca3d12cc: the dirty bit moves to the page
        # ptep_get_and_clear: the pte (and, before fd35ca3d12cc, its dirty bit) is gone
        k.set_pte(mm, vpn, (MIGRATION, page, pte[2], False), "collect:install_migration")
        k.map_dec(page, "collect:install_migration")
        # "This is like regular unmap: we remove the rmap and drop page refcount."
        k.put(page, "map", "collect:unmap_put")
        if kind == PRESENT:
            unmapped += 1
        m.src_page[i], m.src[i] = page, mpfn
    start, end = m.start + lo, m.start + hi
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
