"""migrate_vma, written once: setup, collect, prepare (pre-patch), unmap, pages, finalize.

Follows mm/migrate.c (v5.15, v5.16) and mm/migrate_device.c (v6.1); the differences are the
behaviour switches of ``variants.Switches``. Each function is a generator that yields before
every operation another actor could observe, so the scheduler can interleave there.
Reference: kernel-model.md section 2; the seed review (ab09243aa95a) for prepare/unmap.
"""
from __future__ import annotations

from .state import DEVICE, HPAGE_NR, MIGRATION, NONE, PRESENT, ZERO, Kernel, MM, Page, Vma
from .thp import split_huge_page

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


def setup(k: Kernel, m: MigrateVma):
    """migrate_vma_setup(): argument checks, then collect, (prepare), unmap. Returns 0 or
    EINVAL. Returns 0 even when nothing was collected."""
    vma = m.vma
    if (vma is None or vma.special or m.start < vma.start or m.end > vma.end
            or m.end <= m.start or not m.has_arrays):
        k.branch("setup:einval")
        return EINVAL
    npages = m.end - m.start
    m.src_page = [None] * npages
    m.src = [0] * npages
    m.dst_page = [None] * npages
    m.dst = [0] * npages
    m.cpages = 0
    yield from collect(k, m)
    m.npages = npages
    if k.sw.pfn_locked and m.cpages:
        yield from prepare(k, m)
    if m.cpages:
        if k.sw.pfn_locked:
            yield from unmap_prepatch(k, m)
        else:
            yield from unmap(k, m)
    return 0


def collect(k: Kernel, m: MigrateVma):
    """migrate_vma_collect(): walk the range pmd by pmd (migrate_vma_collect_pmd).

    Without huge pmds in the mm the whole range is one pte-level walk (one PTL per mm in
    this model). With huge pmds the walk goes pmd by pmd, as walk_page_range does: a
    pmd-mapped THP first goes through the pmd path, then the ptes are collected."""
    if not m.mm.pmds:
        # a plain function returning the generator: no extra frame on every step
        return _collect_ptes(k, m, 0, m.end - m.start)
    return _collect_pmds(k, m)


def _collect_pmds(k: Kernel, m: MigrateVma):
    mm = m.mm
    n = m.end - m.start
    lo = 0
    while lo < n:
        vpn = m.start + lo
        hi = min(n, lo + HPAGE_NR - vpn % HPAGE_NR)
        walk_ptes = True
        if mm.pmd_base(vpn) is not None:        # pmd_trans_huge(), read without the lock
            walk_ptes = yield from _collect_huge_pmd(k, m, vpn - vpn % HPAGE_NR)
        if walk_ptes:
            yield from _collect_ptes(k, m, lo, hi)
        lo = hi


def _collect_huge_pmd(k: Kernel, m: MigrateVma, base: int):
    """The THP branch of migrate_vma_collect_pmd(), the same in v5.15, v5.16 and v6.1:
    under the pmd lock recheck the pmd, take a reference, drop the lock, trylock the
    head; split it under the lock, unlock and put. Returns True to go on with the
    pte-level walk over the split range, False for migrate_vma_collect_skip() (src stays
    0 for the whole range).

    The trylock-failure return keeps the reference just taken: nothing ever drops it (a
    refcount leak, kernel-model.md section 4; `thp_skip_put` is the hypothetical fix)."""
    mm = m.mm
    yield ("collect:pmd", (mm.name, base))
    yield from k.lock_ptl(mm, "collect:pmd_lock")
    pmd = mm.pmds.get(base)
    if pmd is None:
        # split or zapped since the unlocked read: "goto again", the pte level handles it
        k.branch("collect:pmd_changed")
        k.unlock_ptl(mm)
        return True
    head = pmd[1]
    k.get(head, "migrate", "collect_pmd:get_page")
    k.unlock_ptl(mm)
    yield ("collect_pmd:trylock", ("page", head.pfn))
    if not k.trylock(head, "collect_pmd:trylock"):
        k.branch("collect_pmd:trylock_fail")
        if k.sw.thp_skip_put:
            k.put(head, "migrate", "collect_pmd:trylock_fail")
        return False
    yield ("collect_pmd:split", ("page", head.pfn))
    ret = yield from split_huge_page(k, head, "collect_pmd:split")
    k.unlock(head, "collect_pmd:unlock")
    k.put(head, "migrate", "collect_pmd:put_page")
    if ret:
        k.branch("collect_pmd:split_fail")
        return False
    return True


def _collect_ptes(k: Kernel, m: MigrateVma, lo: int, hi: int):
    """The pte-level part of migrate_vma_collect_pmd() over entries [lo, hi), under the
    PTL, then the TLB flush for what it unmapped."""
    sw = k.sw
    mm, vma = m.mm, m.vma
    yield from k.lock_ptl(mm, "collect:ptl")
    unmapped = 0
    for i in range(lo, hi):
        vpn = m.start + i
        yield ("collect:pte", (mm.name, vpn))
        pte = mm.pte(vpn)
        kind = pte[0]
        if kind == NONE or kind == ZERO:
            if kind == ZERO or vma.anonymous:
                k.branch("collect:hole")
                m.src[i] = MIGRATE
                m.cpages += 1
            continue
        page = pte[1]
        if kind == DEVICE:
            if not m.select_device or page.device != m.owner:
                k.branch("collect:device_skip")
                continue
        elif kind == PRESENT:
            if not m.select_system:
                continue
        else:                       # someone else's migration entry, or swap
            k.branch("collect:nonpresent_skip")
            continue
        mpfn = VALID | MIGRATE | (WRITE if pte[2] else 0)
        # "By getting a reference on the page we pin it and that blocks any kind of
        # migration. Side effect is that it freezes the pte."
        k.get(page, "migrate", "collect:get")
        if sw.pfn_locked:
            m.cpages += 1
            if not k.trylock(page, "collect:trylock"):
                k.branch("collect:defer_lock")      # prepare will retry the trylock
                m.src_page[i], m.src[i] = page, mpfn
                continue
            mpfn |= LOCKED
        elif sw.blocking_lock:
            if page.locked_by is not None:
                # cannot sleep under a spinlock: drop the PTL, sleep, retake, recheck
                k.unlock_ptl(mm)
                yield from k.lock_page(page, "collect:lock_page")
                yield from k.lock_ptl(mm, "collect:ptl")
                if mm.pte(vpn) != pte:
                    k.branch("collect:pte_changed_while_sleeping")
                    k.unlock(page, "collect:pte_changed")
                    k.put(page, "migrate", "collect:pte_changed")
                    continue
            else:
                yield from k.lock_page(page, "collect:lock_page")
            m.cpages += 1
        elif k.trylock(page, "collect:trylock"):
            m.cpages += 1
        else:
            k.branch("collect:trylock_fail")
            k.put(page, "migrate", "collect:trylock_fail")
            continue
        yield ("collect:install_migration", (mm.name, vpn))
        if kind == PRESENT and pte[3] and sw.dirty_to_page:
            page.dirty = True      # fd35ca3d12cc: the dirty bit moves to the page
        # ptep_get_and_clear: the pte (and, before fd35ca3d12cc, its dirty bit) is gone
        k.set_pte(mm, vpn, (MIGRATION, page, pte[2], False), "collect:install_migration")
        k.map_dec(page, "collect:install_migration")
        # "This is like regular unmap: we remove the rmap and drop page refcount."
        k.put(page, "map", "collect:unmap_put")
        if kind == PRESENT:
            unmapped += 1
        m.src_page[i], m.src[i] = page, mpfn
    start, end = m.start + lo, m.start + hi
    if sw.flush_under_ptl:
        if unmapped:
            yield ("collect:flush", (mm.name, "tlb"))
            k.flush_tlb_range(mm, start, end, "collect:flush")
        k.unlock_ptl(mm)
    else:
        k.unlock_ptl(mm)
        if unmapped:
            # the window 60bae7370896 closed: ptes are gone, other CPUs' TLBs are not
            yield ("collect:flush", (mm.name, "tlb"))
            k.branch("collect:flush_after_unlock")
            k.flush_tlb_range(mm, start, end, "collect:flush")


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
        k.branch("check_page:fail")
    return ok


def _isolate(k: Kernel, m: MigrateVma, i: int, page: Page, allow_drain: bool,
             phase: str) -> tuple[bool, bool]:
    """Drain every CPU's LRU batch once if the page is not on the LRU yet, then isolate it
    (shared by prepare before the seed patch and unmap after it). Returns (isolated,
    allow_drain)."""
    if not page.lru and allow_drain:
        k.lru_add_drain_all()
        allow_drain = False
    if i not in m.fail_isolate and k.isolate_lru_page(page, phase + ":isolate"):
        return True, allow_drain
    k.branch(phase + ":isolate_fail")
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
                k.branch("prepare:trylock_fail")
                m.src[i], m.src_page[i] = 0, None
                m.cpages -= 1
                k.put(page, "migrate", "prepare:trylock_fail")
                continue
            remap = False
            m.src[i] |= LOCKED
        if not page.device:
            isolated, allow_drain = _isolate(k, m, i, page, allow_drain, "prepare")
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
            k.set_pte(mm, vpn, (MIGRATION, page, pte[2], False), site)
            k.map_dec(page, site)
            k.put(page, "map", site)
        k.unlock_ptl(mm)


def remove_migration_ptes(k: Kernel, old: Page, new: Page, site: str, only=None):
    """remove_migration_ptes(old, new): every migration entry for ``old`` (in every mm
    sharing it, or just ``only``) becomes a clean pte or device entry for ``new``."""
    targets = only if only is not None else k.rmap(old, (MIGRATION,))
    for mm, vpn in targets:
        yield (site, (mm.name, vpn))
        yield from k.lock_ptl(mm, site)
        pte = mm.pte(vpn)
        if pte[0] == MIGRATION and pte[1] is old:
            k.get(new, "map", site)
            k.map_inc(new, site)
            kind = DEVICE if new.device else PRESENT
            k.set_pte(mm, vpn, (kind, new, pte[2], False), site)
        k.unlock_ptl(mm)


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
        yield from remove_migration_ptes(k, page, page, site, only)
        m.src[i], m.src_page[i] = 0, None
        k.unlock(page, site)
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
                k.branch("unmap:still_mapped")
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
            isolated, allow_drain = _isolate(k, m, i, page, allow_drain, "unmap")
            if not isolated:
                m.src[i] &= ~MIGRATE
                m.cpages -= 1
                restore += 1
                continue
            k.put(page, "migrate", "unmap:put_collect_ref")
        if page.mapcount:
            yield from try_to_migrate(k, page, "unmap:try_to_migrate")
        if page.mapcount or not check_page(k, page, m.fault_page):
            if not page.device:
                k.get(page, "migrate", "unmap:check_fail")
                k.putback_lru_page(page, "unmap:check_fail")
            m.src[i] &= ~MIGRATE
            m.cpages -= 1
            restore += 1
    yield from _restore_loop(k, m, restore, "unmap:restore", putback=False)


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
