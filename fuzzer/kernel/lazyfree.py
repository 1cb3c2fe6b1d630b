"""MADV_FREE: lazily freed anonymous memory, after mm/madvise.c (madvise_free_pte_range,
v6.1: folio_clear_dirty, pte_mkclean, folio_mark_lazyfree) and the reclaim side in
mm/rmap.c (try_to_unmap_one's lazyfree branch) and mm/vmscan.c (shrink_folio_list).

A lazyfree page is clean and not swap-backed: reclaim may discard it instead of writing
it to swap, and the address then reads zero. A write after MADV_FREE cancels that: the
pte (or the page) is dirty again, and reclaim must keep the page (folio_set_swapbacked).
That is why a page's dirty bit has to survive every hop a migration makes: collect moves
the pte's dirty bit to the page (fd35ca3d12cc), the move copies the page's dirty bit and
its lazyfree state to the new page (folio_migrate_flags, folio_migrate_mapping's
swapbacked copy). A dirty bit lost on the way lets reclaim discard data written after the
MADV_FREE: a LOST_WRITE the model reports at the discard, naming it.

Simplified: a THP is skipped (the kernel splits a folio the process owns alone), and the
TLB entries of a cleaned pte are flushed under the PTL (the kernel's mmu_gather flushes
before madvise returns; no reader can tell the two apart here)."""
from __future__ import annotations

from .state import MM, NONE, PRESENT, SWAP, Kernel, Page


def madvise_free(k: Kernel, mm: MM, start: int, end: int):
    """madvise(MADV_FREE) over [start, end) of a private anonymous mapping: under the
    mmap read lock and the PTL, a swap entry is freed and cleared (the address reads
    zero from now on); a small system page mapped only here is cleaned (the page's dirty
    bit and the pte's) and marked lazyfree, its content now either what it held or zero."""
    yield ("free:mmap_lock", ("mmap", mm.name))
    yield from k.mmap_read_lock(mm, "free:mmap_lock")
    vma = mm.vma_at(start)
    if vma is None or vma.shared or vma.special or end > vma.end:
        k.branch("free:einval")
        k.mmap_read_unlock(mm)
        return
    yield from k.lock_ptl(mm, "free:pte")
    for vpn in range(start, end):
        yield ("free:pte", (mm.name, vpn))
        pte = mm.pte(vpn)
        key = k.mem_key(mm, vpn)
        if pte[0] == SWAP:
            k.set_pte(mm, vpn, (NONE, None, False, False), "free:pte")
            k.swap_free(pte[1])
            k.expect_zapped(key)
            k.origin[key] = "madvise-free"
            continue
        if pte[0] != PRESENT:
            continue
        page: Page = pte[1]
        if (page.device or page.tails or page.head is not None or page.mapcount != 1
                or page.mapping is not None or page.locked_by is not None):
            # shared, in the swap cache, large, or locked by someone (folio_trylock)
            k.branch("free:skip", page)
            continue
        k.branch("free:lazyfree", page)
        page.dirty = False                              # folio_clear_dirty
        if pte[3]:
            k.set_pte(mm, vpn, (PRESENT, page, pte[2], False), "free:pte")  # pte_mkclean
        k.flush_tlb_range(mm, vpn, vpn + 1, "free:pte")
        page.lazyfree = True                            # folio_mark_lazyfree
        page.lazyfree_data = page.data
        k.expect[key] = frozenset((page.data, 0))
        k.last_write[key] = "madvise-free"
    k.unlock_ptl(mm)
    k.mmap_read_unlock(mm)


def discard(k: Kernel, page: Page):
    """Reclaim of a lazyfree page (try_to_unmap_one, then shrink_folio_list's
    "anon && !swapbacked" branch): if the page or any pte mapping it is dirty, it was
    written since MADV_FREE and becomes swap-backed again (False: reclaim goes on as for
    any anonymous page); else every pte is cleared (the addresses read zero) and the page
    is freed. A discarded page whose data changed since MADV_FREE lost its dirty bit on
    the way (LOST_WRITE)."""
    maps = k.rmap(page, (PRESENT,))
    if page.dirty or any(mm.pte(vpn)[3] for mm, vpn in maps):
        k.branch("reclaim:lazyfree_redirtied", page)
        page.lazyfree = False                           # folio_set_swapbacked
        return False
    for mm, vpn in maps:
        yield ("reclaim:discard", (mm.name, vpn))
        yield from k.lock_ptl(mm, "reclaim:discard")
        pte = mm.pte(vpn)
        if pte[0] == PRESENT and pte[1] is page:
            k.flush_tlb_range(mm, vpn, vpn + 1, "reclaim:discard")
            if pte[3]:                                  # written meanwhile: keep it
                k.unlock_ptl(mm)
                page.lazyfree = False
                k.branch("reclaim:lazyfree_redirtied", page)
                return False
            k.set_pte(mm, vpn, (NONE, None, False, False), "reclaim:discard")
            k.map_dec(page, "reclaim:discard")
            k.put(page, "map", "reclaim:discard")
            key = k.mem_key(mm, vpn)
            if page.data != page.lazyfree_data:
                k.report("LOST_WRITE", "LOST_WRITE: reclaim discarded a lazyfree page "
                         "written since MADV_FREE (its dirty bit was lost)",
                         ("reclaim:discard_written",), pfn=page.pfn, address=list(key))
            k.origin[key] = "madvise-free"
        k.unlock_ptl(mm)
    if page.mapcount:
        page.lazyfree = False
        return False
    k.branch("reclaim:discarded", page)
    return True
