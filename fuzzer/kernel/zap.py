"""MADV_DONTNEED: zap the ptes (and huge pmds) of a range under the mmap read lock, after
mm/madvise.c (madvise_dontneed_single_vma) and mm/memory.c (zap_pte_range,
zap_huge_pmd).
"""
from __future__ import annotations

from .state import DEVICE, HPAGE_NR, MIGRATION, MM, NONE, PRESENT, SWAP, Kernel, Page


def zap(k: Kernel, mm: MM, start: int, end: int):
    """MADV_DONTNEED (zap_pte_range) under the mmap read lock; pages are released only after
    the TLB flush (mmu_gather)."""
    yield ("zap:mmap_lock", ("mmap", mm.name))
    yield from k.mmap_read_lock(mm, "zap:mmap_lock")
    keys = [k.mem_key(mm, vpn) for vpn in range(start, end)]
    for key in keys:
        k.zaps_inflight[key] = k.zaps_inflight.get(key, 0) + 1
    yield from k.lock_ptl(mm, "zap:ptl")
    gathered: list[Page] = []
    for vpn, key in zip(range(start, end), keys):
        yield ("zap:pte", (mm.name, vpn))
        if mm.pmds and vpn in mm.pmds:
            # zap_huge_pmd: clear the whole pmd (the range covers it: scenario.validate),
            # drop the folio's mapcount; its reference goes after the flush
            head = mm.pmds.pop(vpn)[1]
            k.map_dec(head, "zap:pte")
            gathered.append(head)
            k.branch("zap:huge_pmd", head)
            for off in range(HPAGE_NR):
                hkey = k.mem_key(mm, vpn + off)
                k.expect_zapped(hkey)
                k.origin[hkey] = "zap"
            continue
        pte = mm.pte(vpn)
        kind = pte[0]
        if kind == NONE:
            continue
        vma = mm.vma_at(vpn)
        # a device-private entry's clear is named apart: its rmap and reference updates
        # are zap_pte_range's device-entry branch, not the present-page one
        k.set_pte(mm, vpn, (NONE, None, False, False),
                  "zap:device_entry" if kind == DEVICE else "")
        if kind == PRESENT:
            page = pte[1]
            if vma.shared and pte[3]:
                page.dirty = True
            k.map_dec(page, "zap:pte")
            gathered.append(page)
        elif kind == MIGRATION:
            k.branch("zap:migration_entry")     # no reference to drop
        elif kind == DEVICE:
            k.map_dec(pte[1], "zap:device_entry")
            k.put(pte[1], "map", "zap:device_entry")
        elif kind == SWAP:
            k.swap_free(pte[1])
        if not vma.shared:
            k.expect_zapped(key)
            k.origin[key] = "zap"
    k.unlock_ptl(mm)
    if gathered:
        yield ("zap:flush", (mm.name, "tlb"))
        k.flush_tlb_range(mm, start, end, "zap:flush")
        for page in gathered:
            k.put(page, "map", "zap:free_pages")
    for key in keys:
        k.zaps_inflight[key] -= 1
    k.mmap_read_unlock(mm)
