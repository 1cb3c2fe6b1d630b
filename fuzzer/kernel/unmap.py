"""migrate_vma_unmap(): isolate, unmap and check the collected pages, or restore them.

Follows migrate_vma_check_page(), migrate_vma_prepare() (pre-patch, before
ab09243aa95a) and migrate_vma_unmap() / migrate_device_unmap() in mm/migrate.c (v5.15,
v5.16) and mm/migrate_device.c (v6.1+).
"""
from __future__ import annotations

from .migrate_vma import LOCKED, MIGRATE, MigrateVma
from .migration_entries import remove_migration_ptes, try_to_migrate
from .state import Kernel, Page


def check_page(k: Kernel, page: Page, fault_page: Page | None) -> bool:
    """migrate_vma_check_page(): may the page be migrated (no unexpected references)?"""
    sw = k.sw
    extra = 1
    if sw.dp_check_refs and page is fault_page:
        extra += 1
    if page.device:
        if not sw.dp_check_refs:
            # "there is no way to differentiate a regular pin from migration wait ...
            # We always return true here."
            return True
        extra += 1
    if page.mapping is not None:
        extra += 1
    ok = page.refcount - extra <= page.mapcount
    if not ok:
        k.branch("check_page:fail", page)
    return ok


def _isolate(k: Kernel, m: MigrateVma, i: int, page: Page, allow_drain: bool,
             phase: str) -> tuple[bool, bool]:
    """Drain every CPU's LRU batch once if the page is not on the LRU yet, then isolate it
    (shared by prepare before the seed patch and unmap after it). Returns (isolated,
    allow_drain)."""
    if not page.lru and allow_drain:
        # per-CPU work: waits while another CPU cannot run it (kernel/lru.py)
        k.branch(phase + ":lru_add_drain_all", page)     # drained for this page
        yield from k.lru_add_drain_all_work(phase + ":lru_add_drain_all")
        allow_drain = False
    if i not in m.fail_isolate and k.isolate_lru_page(page, phase + ":isolate"):
        return True, allow_drain
    k.branch(phase + ":isolate_fail", page)
    return False, allow_drain


def prepare(k: Kernel, m: MigrateVma):
    """migrate_vma_prepare() (before the seed patch): lock what collect could not, isolate
    from the LRU, check, and restore what cannot be migrated."""
    sw = k.sw
    k.lru_add_drain(k.cur.cpu)
    allow_drain = True
    restore = 0
    for i in range(m.npages):
        if not m.cpages:
            break
        page = m.src_page[i]
        if page is None:
            continue
        yield ("prepare:page", ("page", page.pfn))
        remap = True
        if not m.src[i] & LOCKED:
            if sw.blocking_lock:
                # prepare runs without the PTL, so the blocking variant sleeps right here
                yield from k.lock_page(page, "prepare:lock_page")
            elif not k.trylock(page, "prepare:trylock"):
                k.branch("prepare:trylock_fail", page)
                m.src[i], m.src_page[i] = 0, None
                m.cpages -= 1
                k.put(page, "migrate", "prepare:trylock_fail")
                continue
            remap = False
            m.src[i] |= LOCKED
        if not page.device:
            isolated, allow_drain = yield from _isolate(k, m, i, page, allow_drain, "prepare")
            if not isolated:
                if remap:
                    m.src[i] &= ~MIGRATE
                    m.cpages -= 1
                    restore += 1
                else:
                    m.src[i], m.src_page[i] = 0, None
                    k.unlock(page, "prepare:isolate_fail")
                    m.cpages -= 1
                    k.put(page, "migrate", "prepare:isolate_fail")
                continue
            k.put(page, "migrate", "prepare:put_collect_ref")
        if not check_page(k, page, m.fault_page):
            k.branch("prepare:check_fail", page)
            if remap:
                m.src[i] &= ~MIGRATE
                m.cpages -= 1
                restore += 1
                if not page.device:
                    k.get(page, "migrate", "prepare:check_fail")
                    k.putback_lru_page(page, "prepare:check_fail")
            else:
                m.src[i], m.src_page[i] = 0, None
                k.unlock(page, "prepare:check_fail")
                m.cpages -= 1
                if not page.device:
                    k.putback_lru_page(page, "prepare:check_fail")
                else:
                    k.put(page, "migrate", "prepare:check_fail")
    # "remove_migration_pte(page, migrate->vma, addr, page)": only collect's own entry
    yield from _restore_loop(k, m, restore, "prepare:restore", putback=False,
                             one_address=True)


def _restore_loop(k: Kernel, m: MigrateVma, restore: int, site: str, putback: bool,
                  one_address: bool = False):
    """Put back the mapping of every entry that lost MIGRATE, unlock and release it:
    prepare (v5.15) restores collect's entry at one address and drops a reference; unmap
    walks every mapping and, before the seed patch, puts system pages back on the LRU."""
    for i in range(m.npages):
        if not restore:
            break
        page = m.src_page[i]
        if page is None or m.src[i] & MIGRATE:
            continue
        only = [(m.mm, m.start + i)] if one_address else None
        k.branch(site, page)
        yield from remove_migration_ptes(k, page, page, site, only)
        m.src[i], m.src_page[i] = 0, None
        if not (m.fault_locked and page is m.fault_page):
            k.unlock(page, site)      # "if (fault_folio != folio) folio_unlock(folio)"
        if putback and not page.device:
            k.putback_lru_page(page, site)
        else:
            k.put(page, "migrate", site)
        restore -= 1


def unmap_prepatch(k: Kernel, m: MigrateVma):
    """migrate_vma_unmap() before the seed patch: pages are already locked and isolated."""
    restore = 0
    for i in range(m.npages):
        page = m.src_page[i]
        if page is None or not m.src[i] & MIGRATE:
            continue
        yield ("unmap:page", ("page", page.pfn))
        if page.mapcount:
            yield from try_to_migrate(k, page, "unmap:try_to_migrate")
            if page.mapcount:
                k.branch("unmap:still_mapped", page)
                m.src[i] &= ~MIGRATE
                m.cpages -= 1
                restore += 1
                continue
        if check_page(k, page, m.fault_page):
            continue
        m.src[i] &= ~MIGRATE
        m.cpages -= 1
        restore += 1
    yield from _restore_loop(k, m, restore, "unmap:restore", putback=True)


def unmap(k: Kernel, m: MigrateVma):
    """migrate_vma_unmap() after the seed patch (v5.16; migrate_device_unmap in v6.1):
    isolate, try_to_migrate, check, restore."""
    k.lru_add_drain(k.cur.cpu)
    allow_drain = True
    restore = 0
    for i in range(m.npages):
        page = m.src_page[i]
        if page is None:
            continue
        yield ("unmap:page", ("page", page.pfn))
        if not page.device:
            isolated, allow_drain = yield from _isolate(k, m, i, page, allow_drain, "unmap")
            if not isolated:
                m.src[i] &= ~MIGRATE
                m.cpages -= 1
                restore += 1
                continue
            k.put(page, "migrate", "unmap:put_collect_ref")
        if page.mapcount:
            yield from try_to_migrate(k, page, "unmap:try_to_migrate")
        if page.mapcount or not check_page(k, page, m.fault_page):
            k.branch("unmap:check_fail", page)
            if not page.device:
                k.get(page, "migrate", "unmap:check_fail")
                k.putback_lru_page(page, "unmap:check_fail")
            m.src[i] &= ~MIGRATE
            m.cpages -= 1
            restore += 1
    yield from _restore_loop(k, m, restore, "unmap:restore", putback=False)
