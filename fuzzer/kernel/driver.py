"""The device driver's part, modelled on lib/test_hmm.c (dmirror): migrate a range to the
device, the migrate_to_ram fault callback, and device eviction."""
from __future__ import annotations

from .finalize import finalize
from .migrate_vma import EINVAL, MIGRATE, VALID, WRITE, MigrateVma, setup
from .move import pages
from .state import DEVICE, MM, PRESENT, Kernel, Page
from .trail import describe, path


def _alloc_and_copy(k: Kernel, m: MigrateVma, to_device: str | None, fail_alloc=()):
    """dmirror_migrate_alloc_and_copy / dmirror_devmem_fault_alloc_and_copy: allocate and
    lock a destination for every entry marked MIGRATE, copy (or zero), set dst."""
    for i in range(m.npages):
        if not m.src[i] & MIGRATE:
            continue
        yield ("driver:alloc", ("dst", i))
        if i in fail_alloc:
            k.branch("driver:alloc_fail")
            continue
        if to_device is not None:
            dpage = k.alloc_device_page(to_device, "driver:alloc")
            if dpage is None:
                k.branch("driver:pool_empty")
                continue
        else:
            dpage = k.alloc_page("driver:alloc", owner="driver")
            k._set_lock(dpage, "driver:alloc")
        dpage.ident = "dst:%s#%d" % (m.mm.name, m.start + i)
        spage = m.src_page[i]
        if spage is not None:
            if k.touch(spage, spage.gen, "driver:copy", "copy_highpage"):
                dpage.data = spage.data
        else:
            dpage.data = 0
        m.dst_page[i] = dpage
        m.dst[i] = VALID | (WRITE if (m.src[i] & WRITE or
                                      (spage is None and m.vma.writable)) else 0)


def migrate_to_device(k: Kernel, mm: MM, start: int, end: int, device: str,
                      fail_alloc=(), fail_isolate=(), bad_args: bool = False,
                      select_device: bool = False):
    """The dmirror MIGRATE ioctl: mmap_read_lock, migrate_vma_setup over system memory,
    allocate and copy, pages, map into the device, finalize. Returns (ret, migrated)."""
    begun = k.step
    idle = _idle_pages(k, mm, start, end, device, set(fail_alloc) | set(fail_isolate))
    yield ("driver:mmap_lock", ("mmap", mm.name))
    yield from k.mmap_read_lock(mm, "driver:mmap_lock")
    vma = mm.vma_at(start)
    # dmirror_migrate: "if (!vma || addr < vma->vm_start || !(vma->vm_flags & VM_READ))"
    if vma is None or vma.prot == "none" or end > vma.end:
        k.branch("driver:einval")
        k.mmap_read_unlock(mm)
        return EINVAL, 0
    # select_device: MIGRATE_VMA_SELECT_DEVICE_PRIVATE too (pages of this device's owner),
    # as drivers that move between devices do: b570f37a2ce4's prerequisite (a)
    m = MigrateVma(mm, vma, start, end, select_system=True, select_device=select_device,
                   owner=device, has_arrays=not bad_args)
    m.fail_isolate = frozenset(fail_isolate)
    ret = yield from setup(k, m)
    if ret:
        k.mmap_read_unlock(mm)
        return ret, 0
    yield from _alloc_and_copy(k, m, device, fail_alloc)
    yield from pages(k, m)
    migrated = sum(1 for i in range(m.npages) if m.src[i] & MIGRATE and m.dst_page[i])
    yield from finalize(k, m)
    k.mmap_read_unlock(mm)
    if idle and k.switched <= begun:
        _assert_idle_migrated(k, mm, idle, begun)
    return 0, migrated


def _idle_pages(k: Kernel, mm: MM, start: int, end: int, device: str, injected) -> dict:
    """vpn -> page for the pages of the range an uncontended migration must move: small
    private anonymous system pages mapped once, with no reference but their mapping's
    (and an LRU batch's), unlocked, not isolated, with no injected failure, and a device
    with room for all of them (hmm-tests' "migrate" expects every page to move). Empty
    if any is not, or the device pool is short."""
    dev = k.devices.get(device)
    if dev is None or len(dev.free_list) < end - start:
        return {}
    out = {}
    for vpn in range(start, end):
        pte = mm.pte(vpn)
        if pte[0] != PRESENT:
            continue
        page = pte[1]
        if (vpn - start in injected or page.device or page.tails or page.head is not None
                or page.mapping is not None or page.mapcount != 1 or page.locked_by
                or page.isolated or page.refcount != 1 + len(page.refs.get("batch", ()))):
            return {}
        out[vpn] = page
    return out


def _assert_idle_migrated(k: Kernel, mm: MM, idle: dict, begun: int) -> None:
    """The selftests' contract, as an invariant of every execution (issue 13 item 4): a
    migration that ran alone from its ioctl to its return (no other actor took a step:
    Kernel.switched) over idle pages moved every one of them. One left behind is a
    migration that failed for no reason a user could see: an LRU drain that missed a
    CPU, a refcount check off by one. Named by the path the page took."""
    for vpn, page in idle.items():
        if mm.pte(vpn)[1] is page:
            labels = path(k, page, k.who, begun)
            k.report("UNEXPECTED_RESULT", f"UNEXPECTED_RESULT: an idle page at {mm.name}#"
                     f"{vpn} was not migrated by a migration that ran alone (hmm-tests: "
                     f"every page moves)" + (f"; its path: {describe(labels)}"
                                              if labels else ""),
                     ("idle-not-migrated", labels[-1] if labels else "?"),
                     pfn=page.pfn, address=[mm.name, vpn])
            return


def devmem_fault(k: Kernel, mm: MM, vpn: int, page: Page, gen: int,
                 fault_page: Page | None):
    """dmirror_devmem_fault (the migrate_to_ram callback), called from do_swap_page with
    the mmap lock held. Up to v6.0 it runs with no reference on ``page``."""
    yield ("migrate_to_ram:zone_device_data", ("page", page.pfn))
    # "rpage = vmf->page->zone_device_data": the first touch of the device page
    if not k.touch(page, gen, "migrate_to_ram:zone_device_data",
                   "migrate_to_ram reads zone_device_data"):
        return
    m = MigrateVma(mm, mm.vma_at(vpn), vpn, vpn + 1, select_system=False, select_device=True,
                   owner=page.device, fault_page=fault_page)
    ret = yield from setup(k, m)
    if ret:
        return
    yield from _alloc_and_copy(k, m, None)
    yield from pages(k, m)
    yield from finalize(k, m)


def evict_device(k: Kernel, device: str):
    """Device eviction: migrate every page of the device back to system memory, one run of
    contiguous device entries at a time (the v5.x drivers' per-vma walk)."""
    yield ("evict:start", ("dev", device))
    for mm in list(k.mms.values()):
        runs: list[list[int]] = []
        for vpn in sorted(mm.ptes):
            pte = mm.ptes[vpn]
            if pte[0] == DEVICE and pte[1].device == device:
                if runs and runs[-1][1] == vpn and mm.vma_at(vpn) is mm.vma_at(runs[-1][0]):
                    runs[-1][1] = vpn + 1
                else:
                    runs.append([vpn, vpn + 1])
        for start, end in runs:
            yield ("evict:range", ("mmap", mm.name))
            yield from k.mmap_read_lock(mm, "evict:mmap_lock")
            m = MigrateVma(mm, mm.vma_at(start), start, end, select_system=False,
                           select_device=True, owner=device)
            ret = yield from setup(k, m)
            if not ret:
                yield from _alloc_and_copy(k, m, None)
                yield from pages(k, m)
                yield from finalize(k, m)
            k.mmap_read_unlock(mm)
