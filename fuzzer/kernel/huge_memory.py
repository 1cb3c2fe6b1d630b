"""Transparent huge pages at pmd level: splitting an anonymous THP
(mm/huge_memory.c: split_huge_page_to_list, can_split_folio, __split_huge_page), with the
refcount freeze of page_ref.py.

A THP is a head page (refcount, lock and mapcount for the whole folio) and HPAGE_NR - 1
tail pages, mapped by one huge pmd (``MM.pmds``). The model covers what migrate_vma meets:
collect's pmd path (collect.py), CPU reads and writes through the pmd, MADV_DONTNEED of a
whole pmd (fault.py, zap.py) and the split below. See docs/model.md for what is left out.
"""
from __future__ import annotations

from .page_ref import ref_freeze
from .state import HPAGE_NR, MM, PRESENT, Kernel, Page

EBUSY = "EBUSY"


def _mapped_at(k: Kernel, head: Page) -> tuple[MM, int] | None:
    """The (mm, first vpn) of the huge pmd mapping ``head`` (a THP is mapped by at most
    one pmd here: fork and sharing of THP ranges are not modelled)."""
    for mm in k.mms.values():
        for base, pmd in mm.pmds.items():
            if pmd[1] is head:
                return mm, base
    return None


def split_huge_page(k: Kernel, head: Page, site: str):
    """split_huge_page() on a locked, pmd-mapped anonymous THP; returns 0 or EBUSY.

    The kernel: no anon_vma (page not mapped) -> -EBUSY; can_split_huge_page() wants
    total_mapcount == page_count - 1 (the caller's reference; no swap cache here), else
    -EBUSY; otherwise it unmaps the pmd (migration entries), freezes the refcount, splits
    the compound page and remaps every subpage with its own pte (remove_migration_ptes),
    leaving the head with the caller's reference plus its mapping and each tail with its
    mapping's reference, all still on the LRU, the pmd's dirty bit moved to the pages.

    The refcount check below stands for both can_split_folio() and the
    folio_ref_freeze(folio, 1 + extra_pins) after unmap_folio() (the model does not
    unmap in between, so both see the same count: 1 + the mapping's 1). The unfreeze
    then gives each page the count __split_huge_page computes, not the one it had
    (ref_freeze): with that check right the two are equal and nothing changes; with it
    weakened, a reference the check let through is lost at the split.

    Simplified: the whole split is one step under the page-table lock, so no other actor
    sees its transient migration entries (a CPU would wait on them for the page lock the
    splitter already holds: the same outcome, a retried fault after the split).
    """
    loc = _mapped_at(k, head)
    if loc is None:
        ret = yield from _split_pte_mapped(k, head, site)
        return ret
    if head.mapcount == 0:
        k.branch(site + ":unmapped", head)          # page_get_anon_vma() fails: -EBUSY
        return EBUSY
    mm, base = loc
    yield from k.lock_ptl(mm, site)
    pmd = mm.pmds.get(base)
    if pmd is None or pmd[1] is not head:       # zapped while we waited for the PTL
        k.branch(site + ":unmapped", head)
        k.unlock_ptl(mm)
        return EBUSY
    if head.refcount != head.mapcount + 1:
        k.branch(site + ":busy", head)               # an extra reference: can_split fails
        k.unlock_ptl(mm)
        return EBUSY
    k.branch(site + ":split", head)
    # folio_ref_freeze + the unfreeze: the head ends with the caller's reference and its
    # mapping's (the pmd's, which becomes its pte's), each tail with its pte's (below)
    ref_freeze(k, head, head.mapcount + 1, site, own=1)
    _, _, write, dirty = mm.pmds.pop(base)
    k.flush_tlb_range(mm, base, base + HPAGE_NR, site)
    subpages = (head,) + head.tails
    head.tails = ()
    for i, page in enumerate(subpages):
        if i:
            page.head = None
            page.lru = head.lru
            ref_freeze(k, page, 0, site)     # a tail holds nothing of its own before
            k.set_mapcount(page, 1, site)
            k.get(page, "map", site)
        if dirty:
            page.dirty = True
        # the head keeps the pmd's mapping reference and mapcount for its own pte
        k.set_pte(mm, base + i, (PRESENT, page, write, False))
    k.unlock_ptl(mm)
    return 0


def _split_pte_mapped(k: Kernel, head: Page, site: str):
    """split_folio() of a THP that ptes map (layout state "thp-pte": the pmd was split
    before, the folio not). Here each subpage carries its own pte's reference and
    mapcount (the kernel counts them on the folio; the totals are the same), so
    can_split_folio()'s "total mapcount == refcount - 1" (the caller's reference) is the
    sum over the subpages. Success unmaps and remaps every pte (one step under the PTL,
    flushed), leaving small pages with the counts the unfreeze and remap give them: each
    its ptes' references, the head also the caller's (ref_freeze; with the check right,
    the references they had)."""
    subpages = (head,) + head.tails
    maps = [(mm, vpn) for p in subpages for mm, vpn in k.rmap(p)]
    if not maps:
        k.branch(site + ":unmapped", head)
        return EBUSY
    mm = maps[0][0]
    yield from k.lock_ptl(mm, site)
    refs = sum(p.refcount for p in subpages)
    if refs != sum(p.mapcount for p in subpages) + 1 or head.batch_cpu is not None:
        k.branch(site + ":busy", head)
        k.unlock_ptl(mm)
        return EBUSY
    k.branch(site + ":split_ptes", head)
    for i, page in enumerate(subpages):
        ref_freeze(k, page, page.mapcount + (0 if i else 1), site, own=0 if i else 1)
    for m2, vpn in maps:
        k.flush_tlb_range(m2, vpn, vpn + 1, site)
    head.tails = ()
    for page in subpages[1:]:
        page.head = None
        page.lru = head.lru
    k.unlock_ptl(mm)
    return 0
