"""migrate_vma_finalize(): restore or redirect the migration entries, unlock, put back or
free the old and new pages; mm/migrate.c (v5.15, v5.16), mm/migrate_device.c (v6.1+:
migrate_device_finalize).
"""
from __future__ import annotations

from .migrate_vma import MIGRATE, MigrateVma
from .migration_entries import remove_migration_ptes
from .state import Kernel


def finalize(k: Kernel, m: MigrateVma):
    """migrate_vma_finalize(): restore or redirect the migration entries, unlock, and put
    back or free the old and new pages."""
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
            k.branch("finalize:restore")
        yield from remove_migration_ptes(k, page, new, "finalize:remove_migration_ptes")
        k.unlock(page, "finalize:unlock_old")
        if page.device:
            k.put(page, "migrate", "finalize:put_old")
        else:
            k.putback_lru_page(page, "finalize:putback_old")
        if new is not page:
            k.unlock(new, "finalize:unlock_new")
            if new.device:
                k.put(new, "driver", "finalize:put_new")
            else:
                k.putback_lru_page(new, "finalize:putback_new", owner="driver")
