"""migrate_vma_finalize(): restore or redirect the migration entries, unlock, put back or
free the old and new pages; mm/migrate.c (v5.15, v5.16), mm/migrate_device.c (v6.1+:
migrate_device_finalize; mainline: __migrate_device_finalize with the fault folio).
"""
from __future__ import annotations

from .migrate_vma import MIGRATE, MigrateVma
from .migration_entries import remove_migration_ptes
from .state import Kernel


def finalize(k: Kernel, m: MigrateVma):
    """migrate_vma_finalize(): restore or redirect the migration entries, unlock, and put
    back or free the old and new pages.

    v5.15 to v6.12 mainline: remove_migration_ptes, unlock src, putback_lru_page(src)
    (or put a device page), then the same for dst. `finalize_lru_first` (6.1.192,
    6.12.117, mainline): folio_add_lru(dst) before remove_migration_ptes (dst = src on
    failure), then unlock src and folio_put(src): a migrated-away src drops its
    isolation reference and is freed at once instead of passing through an LRU batch.
    With the fault folio locked by do_swap_page (`dp_fault_trylock`) src stays locked."""
    lru_first = k.sw.finalize_lru_first
    for i in range(m.npages):
        new, page = m.dst_page[i], m.src_page[i]
        if page is None:
            if new is not None:
                yield ("finalize:hole", ("page", new.pfn))
                k.unlock(new, "finalize:unlock_new")
                k.put(new, "driver", "finalize:put_new")
            continue
        yield ("finalize:page", ("page", page.pfn))
        if not m.src[i] & MIGRATE or new is None:
            if new is not None:
                k.unlock(new, "finalize:unlock_unused")
                k.put(new, "driver", "finalize:put_unused")
            new = page
            k.branch("finalize:restore", page)
        if lru_first and not new.device:
            # folio_add_lru(dst): the LRU batch's reference; the caller's (the isolation
            # reference of src, the driver's of a new dst) is dropped below
            k.lru_cache_add(new, "finalize:add_lru")
        yield from remove_migration_ptes(k, page, new, "finalize:remove_migration_ptes")
        if not (m.fault_locked and page is m.fault_page):
            k.unlock(page, "finalize:unlock_old")
        _release(k, page, "migrate" if page.device else "isolate", lru_first,
                 "finalize:put_old", "finalize:putback_old")
        if new is not page:
            k.unlock(new, "finalize:unlock_new")
            _release(k, new, "driver", lru_first, "finalize:put_new", "finalize:putback_new")
    k.assert_released("finalize:done", m.fault_page if m.fault_locked else None)


def _release(k: Kernel, page, owner: str, lru_first: bool, put_site: str,
             putback_site: str) -> None:
    """Drop the reference finalize holds on the old or new page: a device page's (and, once
    folio_add_lru took the LRU's own reference, a system page's) by folio_put; otherwise
    putback_lru_page hands it to the LRU (before finalize_lru_first)."""
    if page.device or lru_first:
        k.put(page, owner, put_site)
    else:
        k.putback_lru_page(page, putback_site, owner=owner)
