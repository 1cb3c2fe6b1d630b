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
        k.branch("pages:insert_raced", page)       # a concurrent fault won
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


def _free_swap(k: Kernel, page: Page) -> bool:
    """folio_free_swap(): take a swapcache page out of the swap cache when no swap entry
    still refers to its slot (folio_swapped() false; the model has no writeback state).
    Drops the swap cache's reference and the slot."""
    slot = page.swap_slot
    if page.mapping != "swapcache" or k.swap.get(slot, (0, 0))[1] > 0:
        k.branch("pages:free_swap_busy", page)
        return False
    if k.swapcache.get(slot) is page:
        del k.swapcache[slot]
    page.mapping = None
    page.swap_slot = None
    if slot in k.swap and k.swap[slot][1] <= 0:
        del k.swap[slot]
    k.put(page, "swapcache", "pages:free_swap")
    return True


def _migrate_mapping_stale(k: Kernel, page: Page, new: Page) -> None:
    """__folio_migrate_mapping() given a mapping (the swap cache's) that the folio no
    longer has: the count check already passed, so it goes on as for a cache page. The
    new folio gets the cache's reference ("folio_ref_add(newfolio, nr)") and is stored
    in the swap cache's xarray at folio_index(folio) (for a folio out of the swap cache:
    its anon index, not a swap offset); the old folio is unfrozen to its expected count
    minus the cache reference it no longer holds: to 0, while the migration still holds
    it isolated and locked. Its holders' next put_page underflows."""
    k.branch("pages:migrate_mapping_stale")
    k.get(new, "swap_xarray", "pages:migrate_mapping_stale")
    # folio_ref_unfreeze(folio, expected_count - nr): one reference gone without a put
    owner = max((o for o in page.refs if page.refs[o]), key=lambda o: len(page.refs[o]))
    k.forget_ref(page, owner)
    page.refcount -= 1
    k._audit("pages:migrate_mapping_stale", page, "-" + owner + "(unfreeze)")


def pages(k: Kernel, m: MigrateVma):
    """migrate_vma_pages(): move each page's identity to its destination (the driver has
    copied the data); the identity move needs an exact reference count.

    A page with a mapping (swapcache) bound for device memory is refused, or from 6.12
    (`free_swap_to_device`) taken out of the swap cache first; 6.12.117 then reads the
    mapping again (`refresh_mapping`), the mainline text does not (H3): the stale
    mapping reaches folio_migrate_mapping, whose expected count, since 86ebd50224c0
    (`expected_ref_count`), no longer depends on it and passes."""
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
        mapping = page.mapping              # "mapping = folio_mapping(folio)"
        if new.device and mapping is not None:
            # "For now only support private anonymous when migrating to un-addressable
            # device memory." (+ from 6.12: "Try to get rid of swap cache if possible.")
            if not (sw.free_swap_to_device and mapping == "swapcache"
                    and _free_swap(k, page)):
                k.branch("pages:mapping_to_device", page)
                m.src[i] &= ~MIGRATE
                continue
            k.branch("pages:free_swap", page)
            if sw.refresh_mapping:
                mapping = page.mapping      # None now
        elif mapping is not None:
            # a swapcache/file page to system memory: not reachable with this driver
            k.branch("pages:mapping_unsupported", page)
            m.src[i] &= ~MIGRATE
            continue
        yield ("pages:move", ("page", page.pfn))
        if sw.expected_ref_count:
            # folio_expected_ref_count(folio) + extra_count + 1: the swapcache flag and
            # the mapcount (0 here: the page is unmapped), whatever mapping was passed
            expected = 1 + (page.mapping == "swapcache") + page.mapcount
        else:
            # folio_expected_refs(mapping, folio): 1, + 1 for a mapping
            expected = 1 + (mapping is not None)
        if page.device and not sw.dp_idle_zero:
            expected += 1                   # ZONE_DEVICE pages' extra reference
        if sw.dp_fault_pins and page is m.fault_page:
            expected += 1                   # migrate_folio_extra(..., 1)
        if page.refcount != expected:
            k.branch("pages:move_eagain", page)
            m.src[i] &= ~MIGRATE
            continue
        k.assert_move(page, new, "pages:move")       # locked, isolated, not pinned
        k.branch("pages:moved", page)
        if mapping is not None and page.mapping is None:
            _migrate_mapping_stale(k, page, new)
        if page.dirty:
            new.dirty = True
        # folio_migrate_mapping: an anon folio's PG_swapbacked goes to the new folio (a
        # lazyfree one stays lazyfree, and only its dirty bit keeps reclaim off it)
        new.lazyfree, new.lazyfree_data = page.lazyfree, page.lazyfree_data
