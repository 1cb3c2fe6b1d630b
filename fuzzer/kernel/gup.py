"""get_user_pages: a long-term pin (pin_user_pages, unpin_user_page) and a short
get_user_pages_fast, after mm/gup.c (follow_page_pte, gup_pte_range).
"""
from __future__ import annotations

from .fault import handle_fault
from .state import MM, PRESENT, ZERO, Kernel


def gup_pin(k: Kernel, actor, mm: MM, vpn: int, write: bool):
    """pin_user_pages for one page: fault it in (as a CPU would) and take a pin."""
    while True:
        yield ("gup:follow_page", (mm.name, vpn))
        yield from k.lock_ptl(mm, "gup:follow_page")
        pte = mm.pte(vpn)
        if pte[0] == PRESENT and (not write or pte[2]):
            k.get(pte[1], "pin", "gup:pin")
            actor.pins.append(pte[1])
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
    for page in list(actor.pins):
        yield ("gup:unpin", ("page", page.pfn))
        actor.pins.remove(page)
        k.put(page, "pin", "gup:unpin")


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
        k.branch("gup_fast:pte_changed")
        k.put(page, "gup_fast", "gup_fast:pte_changed")
        return
    yield ("gup_fast:io", ("page", page.pfn))
    k.put(page, "gup_fast", "gup_fast:done")
