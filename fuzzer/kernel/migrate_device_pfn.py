"""Migration by device pfn: migrate_device_range() / migrate_device_pfns() in
mm/migrate_device.c (in 6.1.192 and 6.12.117 as migrate_device_range; mainline factors the
lock into migrate_device_pfn_lock and adds migrate_device_pfns), and the driver that uses
them to empty its memory, lib/test_hmm.c's dmirror_device_evict_chunk.

No vma walk, no PTL, no collect: each pfn's folio gets a reference only if it is not free
(folio_get_nontail_page, a get_page_unless_zero) and is trylocked, then the same
migrate_device_unmap() as migrate_vma (unmap.py) finds its mappings through the rmap,
the driver copies to fresh system pages, migrate_device_pages() and
migrate_device_finalize() (move.py, finalize.py with no vma) finish. Its races are with
everything that reaches the same pages through page tables: faults, migrate_vma,
another eviction.

v5.15 and v5.16 have no such function; the model runs it on any variant (a free device
page is skipped through its free state, as 6.1's refcount 0 does).
"""
from __future__ import annotations

from .finalize import finalize
from .migrate_vma import MIGRATE, VALID, WRITE, MigrateVma
from .move import pages
from .state import Kernel, Page
from .unmap import unmap


def migrate_device_pfn_lock(k: Kernel, page: Page) -> bool:
    """folio_get_nontail_page() then folio_trylock(); on a lost trylock the reference
    goes again. A free page (refcount 0 from v6.1, ef233450898f) is skipped."""
    if page.free or not k.get_unless_zero(page, "migrate", "pfn:get"):
        k.branch("pfn:free")
        return False
    if not k.trylock(page, "pfn:trylock"):
        k.branch("pfn:trylock_fail", page)
        k.put(page, "migrate", "pfn:trylock_fail")
        return False
    return True


def migrate_device_range(k: Kernel, m: MigrateVma, pfns: list[Page]):
    """migrate_device_range(src_pfns, start, npages) over ``pfns`` (or migrate_device_pfns
    over an array: the same loop): lock what can be locked, then migrate_device_unmap()."""
    m.npages = len(pfns)
    m.src_page = [None] * m.npages
    m.src = [0] * m.npages
    m.dst_page = [None] * m.npages
    m.dst = [0] * m.npages
    m.cpages = 0
    for i, page in enumerate(pfns):
        yield ("pfn:lock", ("page", page.pfn))
        if migrate_device_pfn_lock(k, page):
            m.src_page[i] = page
            m.src[i] = VALID | MIGRATE
            m.cpages += 1
    if m.cpages:
        yield from unmap(k, m)


def evict_chunk(k: Kernel, device: str):
    """dmirror_device_evict_chunk(): migrate_device_range over every pfn of the device,
    a locked system page with a copy for each entry still marked MIGRATE,
    migrate_device_pages, migrate_device_finalize. Returns the pages migrated."""
    dev = k.devices[device]
    yield ("evict_chunk:start", ("dev", device))
    # no mm and no vma: the migration is by pfn (m.mm is only read by the vma paths)
    m = MigrateVma(None, None, 0, len(dev.pages), select_system=False, select_device=True,
                   owner=device)
    yield from migrate_device_range(k, m, list(dev.pages))
    for i in range(m.npages):
        spage = m.src_page[i]
        if spage is None or not m.src[i] & MIGRATE:
            continue
        yield ("evict_chunk:copy", ("page", spage.pfn))
        dpage = k.alloc_page("evict_chunk:alloc", owner="driver")   # __GFP_NOFAIL
        k._set_lock(dpage, "evict_chunk:alloc")                      # lock_page(dpage)
        dpage.ident = "evict:%s#%d" % (device, i)
        if k.touch(spage, spage.gen, "evict_chunk:copy", "copy_highpage"):
            dpage.data = spage.data
        m.dst_page[i] = dpage
        m.dst[i] = VALID | (m.src[i] & WRITE)
    yield from pages(k, m)
    migrated = sum(1 for i in range(m.npages) if m.src[i] & MIGRATE and m.dst_page[i])
    yield from finalize(k, m)
    return migrated
