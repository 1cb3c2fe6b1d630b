"""get_user_pages: a long-term pin (pin_user_pages, unpin_user_page) and a short
get_user_pages_fast, after mm/gup.c (follow_page_pte, gup_pte_range).

A pin is taken for I/O: a pin with FOLL_WRITE is a device (or an O_DIRECT read) writing
into the page, and the write lands when the I/O completes, just before the unpin
(unpin_user_pages_dirty_lock). That write must reach the page the process sees at the
pinned address; a pinned page migrated away has the process see a copy instead, and the
write is lost (LOST_WRITE), which is why the kernel refuses to migrate a pinned page.
"""
from __future__ import annotations

from .fault import handle_fault
from .state import DEVICE, MIGRATION, MM, PRESENT, SWAP, ZERO, Kernel, Page


def gup_pin(k: Kernel, actor, mm: MM, vpn: int, write: bool):
    """pin_user_pages for one page: fault it in (as a CPU would) and take a pin."""
    while True:
        yield ("gup:follow_page", (mm.name, vpn))
        yield from k.lock_ptl(mm, "gup:follow_page")
        pte = mm.pte(vpn)
        if pte[0] == PRESENT and (not write or pte[2]):
            k.get(pte[1], "pin", "gup:pin")
            actor.pins.append(pte[1])
            k.pin_info.setdefault((actor.name, pte[1].pfn), []).append((mm, vpn, write))
            k.unlock_ptl(mm)
            return
        if pte[0] == ZERO and not write:
            # follow_page_pte returns (and pins) the shared zero page, which the model does
            # not refcount: it is never migrated, reclaimed or freed
            k.branch("gup:pin_zero_page")
            k.unlock_ptl(mm)
            return
        k.unlock_ptl(mm)
        ok = yield from handle_fault(k, actor, mm, vpn, write)
        if not ok:
            return


def gup_unpin(k: Kernel, actor):
    """unpin_user_pages_dirty_lock: a write pin's I/O lands in the page, then the pin
    goes (one step: the I/O's completion and the unpin are not separated here)."""
    for page in list(actor.pins):
        yield ("gup:unpin", ("page", page.pfn))
        actor.pins.remove(page)
        info = k.pin_info.get((actor.name, page.pfn))
        if info:
            mm, vpn, write = info.pop(0)
            if write:
                pin_write(k, actor, page, mm, vpn)
        k.put(page, "pin", "gup:unpin")


def _seen_page(k: Kernel, mm: MM, vpn: int) -> Page | None:
    """The page a read of (mm, vpn) would reach now: a present or device-private pte's,
    the page behind a migration entry (the migration may still restore it), or the swap
    cache's page behind a swap entry (reclaim unmaps a pinned page, but its extra
    reference keeps it in the swap cache, and the fault maps it back)."""
    pte = mm.walk(vpn) if mm.pmds else mm.pte(vpn)
    if pte[0] in (PRESENT, DEVICE, MIGRATION):
        return pte[1]
    if pte[0] == SWAP:
        return k.swapcache.get(pte[1])
    return None


def pin_write(k: Kernel, actor, page: Page, mm: MM, vpn: int) -> None:
    """The device's write through a FOLL_WRITE pin. Three outcomes while the pinned page
    lives: the address still reaches the pinned page (the write is what the process must
    read back from now on); it reaches a page the pinned one was migrated to (k.moved),
    so the process will never see the write (LOST_WRITE, named by the move); or the
    process let go of the page itself (MADV_DONTNEED, a copy on write after fork), where
    the write is rightly not the process's.

    A pinned page that was freed meanwhile (only a refcount bug frees a page its pin
    still holds: a reclaim freeze that took the pin's reference, a put too many) and that
    no migration explains takes the device's write as a use after free (KASAN's report on
    the DMA'd page), never silently: the fourth outcome. A migrated one stays the lost
    write above (the process-visible damage, named by the move). System pfns are not
    reused within an execution (page_alloc.alloc_page), so ``page.free`` is the whole
    test."""
    value = actor.next_value()
    page.data = value
    page.dirty = True          # unpin_user_pages_dirty_lock: set_page_dirty_lock
    key = k.mem_key(mm, vpn)
    seen = _seen_page(k, mm, vpn)
    if seen is page:
        k.expect_write(key, value, "gup-pin", page.pfn)
        return
    hop, move_site = page, None
    while hop.pfn in k.moved and seen is not None:
        hop, move_site = k.moved[hop.pfn]
        if hop is seen:
            report_pin_lost_write(k, key, page, move_site, seen.data, value)
            return
    if page.free:
        k.use_after_free(page, "gup:unpin", "write through a GUP pin")


def report_pin_lost_write(k: Kernel, key: tuple, page: Page, move_site: str | None,
                          read, value) -> None:
    """LOST_WRITE of a write through a GUP pin: the pinned page was migrated (at
    ``move_site``), so the process sees a copy the device's write never reached."""
    where = f"at {move_site}" if move_site else "after the pin"
    k.report("LOST_WRITE", f"LOST_WRITE: a write through a GUP pin landed in a page the "
             f"process no longer sees (the pinned page was migrated {where})",
             ("gup-pin-migrated", move_site or "?"), address=list(key), read=read,
             expected=[value], pfn=page.pfn)


def gup_fast(k: Kernel, mm: MM, vpn: int):
    """get_user_pages_fast for a short I/O: reference, recheck the pte, drop."""
    yield ("gup_fast:read_pte", (mm.name, vpn))
    pte = mm.pte(vpn)
    if pte[0] != PRESENT:
        return
    page = pte[1]
    if not k.get_unless_zero(page, "gup_fast", "gup_fast:get"):
        return
    yield ("gup_fast:recheck", (mm.name, vpn))
    if mm.pte(vpn)[1] is not page:
        k.branch("gup_fast:pte_changed", page)
        k.put(page, "gup_fast", "gup_fast:pte_changed")
        return
    yield ("gup_fast:io", ("page", page.pfn))
    k.put(page, "gup_fast", "gup_fast:done")
