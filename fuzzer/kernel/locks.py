"""The page-table lock and the mmap lock: one PTL per mm (pte_offset_map_lock /
pmd_lock in include/linux/mm.h, split per page table in the kernel, one per mm here)
and mmap_read_lock / mmap_write_lock (include/linux/mmap_lock.h, an rw_semaphore).

Releasing a PTL is where the rules of the pte changes made under it are checked (the
kernel's ptes and rmap are consistent whenever the PTL is free): every page whose mapping
or mapcount changed has a mapcount equal to the ptes and pmds that map it (the "Bad page
map" class, named by the change), and where 60bae7370896's rule (a cleared pte is
flushed before the lock is released) is seen broken.
"""
from __future__ import annotations

from .state import DEVICE, MM, PRESENT, Page, Wait


class Locks:
    """Kernel's page-table and mmap locks."""

    def lock_ptl(self, mm: MM, site: str):
        if mm.ptl is not None:
            yield Wait(site, ("ptl", mm.name), lambda: mm.ptl is None, lambda: [mm.ptl],
                       "page-table lock")
        mm.ptl = self.who
        mm.ptl_site = site

    def unlock_ptl(self, mm: MM) -> None:
        if mm.ptl != self.who and self.cur is not None:
            # lockdep's "bad unlock balance": the actor releases a lock it does not hold
            # (its own lock_ptl was skipped, or it releases the lock twice)
            where = self.step_site()
            self.bug("VM_BUG_ON", f"VM_BUG_ON: page-table lock released at {where} by an "
                     f"actor that does not hold it (held by {mm.ptl or 'nobody'}; lockdep: "
                     f"bad unlock balance)", ("ptl-unlock-not-held", where))
        mm.ptl = None
        if self.tlb_pending:
            self._flushed_late(mm)
        if self.touched:
            self.check_mapcounts()

    def mapped_by(self, page: Page) -> int:
        """How many present or device-private ptes and huge pmds map ``page`` (migration
        and swap entries are not mappings; a THP's pmd maps its head)."""
        n = 0
        for mm in self.mms.values():
            for pte in mm.ptes.values():
                if pte[1] is page and (pte[0] == PRESENT or pte[0] == DEVICE):
                    n += 1
            if mm.pmds:
                for pmd in mm.pmds.values():
                    if pmd[1] is page:
                        n += 1
        return n

    def check_mapcounts(self) -> None:
        """The pages whose mapping or mapcount changed since the last PTL release: each
        live one's mapcount must equal its mappings (page_add_*_rmap and page_remove_rmap
        go with the pte change, under the same lock). A mismatch is fatal (the mapcount
        then drives every later decision: can_split, check_page, reuse on a write fault)
        and is named by the last change of the actor whose mapcount and mapping changes
        do not cancel out (Rmap.touch_map), else by the page's last change (a pmd or a
        fork child's pte is written directly, unlogged). Checked only over the pages
        touched, so it costs one scan of the page tables per touched page at a PTL
        release (8-12% of an execution's CPU time, measured on the concurrency
        scenarios)."""
        touched = self.touched
        self.touched = {}
        for page, log, last in touched.values():
            if page.free:
                continue            # a freed page's mapcount is _free's check
            maps = self.mapped_by(page)
            if maps != page.mapcount:
                site = next((s for bal, s in log.values() if bal), last)
                self.bug("BAD_MAPCOUNT", f"BAD_MAPCOUNT: page mapped by {maps} pte(s)/pmd(s) "
                         f"has mapcount {page.mapcount} after {site}", ("mapcount", site),
                         pfn=page.pfn)

    def _flushed_late(self, mm: MM) -> None:
        """60bae7370896's rule broken: this actor releases the PTL of an mm with ptes it
        cleared still cached in a TLB. Not a finding by itself (v5.15 and v5.16 do it on
        every migration, harmlessly without a racing zap); remembered so that the damage
        it leads to, a write or read through the stale TLB entry, names it (report())."""
        who = self.who
        for key, (clearer, where, pfn) in self.tlb_pending.items():
            if key[0] == mm.name and clearer == who:
                self.flush_late[key] = where
                self.flush_late_pfn[pfn] = where

    def mmap_read_lock(self, mm: MM, site: str):
        if mm.mmap_writer is not None:
            yield Wait(site, ("mmap", mm.name), lambda: mm.mmap_writer is None,
                       lambda: [mm.mmap_writer], "mmap_lock (read)")
        mm.mmap_readers.append(self.who)

    def mmap_read_unlock(self, mm: MM) -> None:
        mm.mmap_readers.remove(self.who)

    def mmap_write_lock(self, mm: MM, site: str):
        if mm.mmap_writer is not None or mm.mmap_readers:
            yield Wait(site, ("mmap", mm.name),
                       lambda: mm.mmap_writer is None and not mm.mmap_readers,
                       lambda: [mm.mmap_writer] if mm.mmap_writer else list(mm.mmap_readers),
                       "mmap_lock (write)")
        mm.mmap_writer = self.who

    def mmap_write_unlock(self, mm: MM) -> None:
        mm.mmap_writer = None
