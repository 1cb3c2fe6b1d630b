"""migrate_vma, written once: struct migrate_vma, its flags, and migrate_vma_setup().

Follows mm/migrate.c (v5.15, v5.16) and mm/migrate_device.c (v6.1, v6.12); the
differences are the behaviour switches of ``variants.Switches``. The steps are one
module each: collect.py, unmap.py (with prepare, pre-patch), migration_entries.py,
move.py (migrate_vma_pages), finalize.py. Each step is a generator that yields before
every operation another actor could observe, so the scheduler can interleave there.
Reference: kernel-model.md section 2; the seed review (ab09243aa95a) for prepare/unmap.
"""
from __future__ import annotations

from .state import MM, Kernel, Page, Vma

VALID, MIGRATE, LOCKED, WRITE = 1, 2, 4, 8
EINVAL = "EINVAL"


class MigrateVma:
    """struct migrate_vma: the argument block shared by the driver and the core."""

    def __init__(self, mm: MM, vma: Vma | None, start: int, end: int, *, select_system: bool,
                 select_device: bool, owner: str, fault_page: Page | None = None,
                 has_arrays: bool = True):
        self.mm, self.vma, self.start, self.end = mm, vma, start, end
        self.select_system, self.select_device = select_system, select_device
        self.owner = owner
        self.fault_page = fault_page
        self.has_arrays = has_arrays
        self.npages = 0
        self.cpages = 0
        self.src_page: list[Page | None] = []
        self.src: list[int] = []
        self.dst_page: list[Page | None] = []
        self.dst: list[int] = []
        self.fail_isolate: frozenset[int] = frozenset()   # injected isolation failures
        # the caller (do_swap_page, 1afaeb8293c9) holds fault_page's lock: collect does
        # not trylock it, restore and finalize do not unlock it
        self.fault_locked = False


# The steps import the flags and MigrateVma above, so setup reaches the steps through their
# modules, imported after those names exist (either side may be imported first).
from . import collect, unmap  # noqa: E402


def setup(k: Kernel, m: MigrateVma):
    """migrate_vma_setup(): argument checks, then collect, (prepare), unmap. Returns 0 or
    EINVAL. Returns 0 even when nothing was collected."""
    vma = m.vma
    if (vma is None or vma.special or m.start < vma.start or m.end > vma.end
            or m.end <= m.start or not m.has_arrays):
        k.branch("setup:einval")
        return EINVAL
    npages = m.end - m.start
    # dp_fault_trylock: "fault_folio == folio || folio_trylock(folio)". Only when the
    # fault path really holds the lock (fault.py takes it under the same switch).
    m.fault_locked = (k.sw.dp_fault_trylock and m.fault_page is not None
                      and m.fault_page.locked_by == k.who)
    m.src_page = [None] * npages
    m.src = [0] * npages
    m.dst_page = [None] * npages
    m.dst = [0] * npages
    m.cpages = 0
    yield from collect.collect(k, m)
    m.npages = npages
    if k.sw.pfn_locked and m.cpages:
        yield from unmap.prepare(k, m)
    if m.cpages:
        if k.sw.pfn_locked:
            yield from unmap.unmap_prepatch(k, m)
        else:
            yield from unmap.unmap(k, m)
    return 0
