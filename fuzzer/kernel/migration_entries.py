"""Migration entries: try_to_migrate() (mm/rmap.c: every mapping of a page becomes a
migration entry) and remove_migration_ptes() (mm/migrate.c: every migration entry
becomes a pte for the new page, or the old one on restore).
"""
from __future__ import annotations

from .state import DEVICE, MIGRATION, PRESENT, Kernel, Page


def try_to_migrate(k: Kernel, page: Page, site: str):
    """try_to_migrate(): an rmap walk replacing every mapping of the page, in any mm, by a
    migration entry (ptep_clear_flush, the dirty bit moves to the page)."""
    for mm, vpn in k.rmap(page):
        yield (site, (mm.name, vpn))
        yield from k.lock_ptl(mm, site)
        pte = mm.pte(vpn)
        if pte[1] is page and (pte[0] == PRESENT or pte[0] == DEVICE):
            if pte[0] == PRESENT:
                k.flush_tlb_range(mm, vpn, vpn + 1, site)
                if pte[3]:
                    page.dirty = True
            # 2e3468778dbe (migration_entry_dirty): the entry keeps the dirty bit
            dirty = pte[0] == PRESENT and pte[3] and k.sw.migration_entry_dirty
            k.set_pte(mm, vpn, (MIGRATION, page, pte[2], dirty), site)
            k.map_dec(page, site)
            k.put(page, "map", site)
        k.unlock_ptl(mm)


def remove_migration_ptes(k: Kernel, old: Page, new: Page, site: str, only=None):
    """remove_migration_ptes(old, new): every migration entry for ``old`` (in every mm
    sharing it, or just ``only``) becomes a pte or device entry for ``new``: clean, or
    dirty when the entry kept the dirty bit (`migration_entry_dirty`).

    The rules checked here: with ``new`` another page this is the move's commit (the
    process sees ``new`` from now on), so the move's rules hold (Kernel.assert_move);
    each pte it maps adds ``new``'s rmap, which page_add_anon_rmap does only on a locked
    page (VM_BUG_ON_PAGE(!PageLocked)); and a restore (``new`` is ``old``) restores every
    pte it cleared, so no migration entry for the page is left behind."""
    if new is not old:
        k.assert_move(old, new, site)
        k.moved[old.pfn] = (new, site)
    targets = only if only is not None else _migration_entries(k, old)
    for mm, vpn in targets:
        yield (site, (mm.name, vpn))
        yield from k.lock_ptl(mm, site)
        pte = mm.pte(vpn)
        if pte[0] == MIGRATION and pte[1] is old:
            k.assert_locked(new, "remove_migration_ptes", site)
            k.get(new, "map", site)
            k.map_inc(new, site)
            kind = DEVICE if new.device else PRESENT
            # remove_migration_pte: pte_mkdirty if the entry was dirty (2e3468778dbe)
            k.set_pte(mm, vpn, (kind, new, pte[2], pte[3] and kind == PRESENT), site)
        k.unlock_ptl(mm)
    if new is old:
        left = k.migration_entry_of(old)
        if left is not None:
            mm, vpn, msite = left
            k.bug("ASSERTION", f"ASSERTION: restore at {site} left a migration entry "
                  f"(installed at {msite}) for the page it restores",
                  ("restore-incomplete", site), pfn=old.pfn, address=[mm.name, vpn])


def _migration_entries(k: Kernel, page: Page):
    """The rmap walk of remove_migration_ptes, live: each mm (in creation order, so a
    fork's child after its parent, even one created during the walk) is searched when
    the walk reaches it, not when the walk starts. That order is what makes a fork racing with the walk safe: fork copies
    the parent's entries into the child under the parent's PTL, so a migration entry it
    copies before the walk fixed the parent's is found in the child, visited later
    (anon_vma_interval_tree: a child's vma is inserted after its parent's and walked
    after it). A snapshot taken at the start missed such a copy and left a migration
    entry behind for an unlocked page (a false VM_BUG_ON on mainline's evict_pfns
    racing with fork, found at 7,695 executions)."""
    seen = 0
    while seen < len(k.mms):
        # a child mm a fork creates during the walk is visited too: in the kernel the
        # fork's anon_vma_fork waits for the walk's anon_vma lock, so its copy either
        # precedes the walk (and is visited) or follows it (and copies fixed ptes)
        mm = list(k.mms.values())[seen]
        seen += 1
        for vpn in sorted(mm.ptes):
            pte = mm.ptes.get(vpn)
            if pte is not None and pte[1] is page and pte[0] == MIGRATION:
                yield mm, vpn
