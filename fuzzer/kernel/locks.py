"""The page-table lock and the mmap lock: one PTL per mm (pte_offset_map_lock /
pmd_lock in include/linux/mm.h, split per page table in the kernel, one per mm here)
and mmap_read_lock / mmap_write_lock (include/linux/mmap_lock.h, an rw_semaphore).
"""
from __future__ import annotations

from .state import MM, Wait


class Locks:
    """Kernel's page-table and mmap locks."""

    def lock_ptl(self, mm: MM, site: str):
        if mm.ptl is not None:
            yield Wait(site, ("ptl", mm.name), lambda: mm.ptl is None, lambda: [mm.ptl],
                       "page-table lock")
        mm.ptl = self.who
        mm.ptl_site = site

    def unlock_ptl(self, mm: MM) -> None:
        mm.ptl = None

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
