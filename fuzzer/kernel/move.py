"""migrate_vma_pages(): move each page's identity to its destination, and
migrate_vma_insert_page() for a hole; mm/migrate.c (v5.15, v5.16),
mm/migrate_device.c (v6.1+: __migrate_device_pages).
"""
from __future__ import annotations

from .migrate_vma import MIGRATE, MigrateVma
from .state import DEVICE, NONE, PRESENT, ZERO, Kernel, Page


def insert_page(k: Kernel, m: MigrateVma, i: int, page: Page):
    """migrate_vma_insert_page(): map a destination page where there was a hole."""
    mm, vma, vpn = m.mm, m.vma, m.start + i
    if not vma.anonymous:
        m.src[i] &= ~MIGRATE
        return
    yield ("pages:insert", (mm.name, vpn))
    yield from k.lock_ptl(mm, "pages:insert")
    pte = mm.pte(vpn)
    if pte[0] != NONE and pte[0] != ZERO:
        k.branch("pages:insert_raced")       # a concurrent fault won
        k.unlock_ptl(mm)
        m.src[i] &= ~MIGRATE
        return
    k.map_inc(page, "pages:insert")
    if not page.device:
        k.lru_cache_add(page, "pages:insert")
    k.get(page, "map", "pages:insert")
    if pte[0] == ZERO:
        k.flush_tlb_range(mm, vpn, vpn + 1, "pages:insert")
    if page.device:
        k.set_pte(mm, vpn, (DEVICE, page, vma.writable, False))
    else:
        k.set_pte(mm, vpn, (PRESENT, page, vma.writable, vma.writable))
    k.origin[k.mem_key(mm, vpn)] = "hole-insert"
    m.src[i] = MIGRATE
    k.unlock_ptl(mm)


def pages(k: Kernel, m: MigrateVma):
    """migrate_vma_pages(): move each page's identity to its destination (the driver has
    copied the data); the identity move needs an exact reference count."""
    sw = k.sw
    for i in range(m.npages):
        new, page = m.dst_page[i], m.src_page[i]
        if new is None:
            m.src[i] &= ~MIGRATE
            continue
        if page is None:
            if m.src[i] & MIGRATE:
                yield from insert_page(k, m, i, new)
            continue
        if not m.src[i] & MIGRATE:
            continue
        if new.device and page.mapping is not None:
            # "For now only support private anonymous when migrating to un-addressable
            # device memory."
            k.branch("pages:mapping_to_device")
            m.src[i] &= ~MIGRATE
            continue
        if page.mapping is not None:
            # a swapcache/file page to system memory: not reachable with this driver
            k.branch("pages:mapping_unsupported")
            m.src[i] &= ~MIGRATE
            continue
        yield ("pages:move", ("page", page.pfn))
        expected = 1
        if page.device and not sw.dp_idle_zero:
            expected += 1                   # ZONE_DEVICE pages' extra reference
        if sw.dp_fault_pins and page is m.fault_page:
            expected += 1                   # migrate_folio_extra(..., 1)
        if page.refcount != expected:
            k.branch("pages:move_eagain")
            m.src[i] &= ~MIGRATE
            continue
        k.branch("pages:moved")
        if page.dirty:
            new.dirty = True
