"""Compaction's isolation of the pages behind a range, after mm/compaction.c
(isolate_migratepages_block): a speculative reference, TestClearPageLRU, the page lock.
"""
from __future__ import annotations

from .state import MM, PRESENT, Kernel, Page


def _pages_mapped_at(k: Kernel, mm: MM, start: int, end: int) -> list[Page]:
    out = []
    for vpn in range(start, end):
        pte = mm.pte(vpn)
        if pte[0] == PRESENT and pte[1] not in out:
            out.append(pte[1])
    return out


def compact(k: Kernel, mm: MM, start: int, end: int):
    """isolate_migratepages_block on the pages behind a range: a speculative reference and
    TestClearPageLRU; then the page is locked one at a time and put back (compaction's own
    migration of it is not modelled: it never holds two page locks, so it adds no cycle)."""
    yield ("compact:scan", ("mm", mm.name))
    for page in _pages_mapped_at(k, mm, start, end):
        yield ("compact:get", ("page", page.pfn))
        if not k.get_unless_zero(page, "compact", "compact:get"):
            continue
        yield ("compact:isolate", ("page", page.pfn))
        if not page.lru:
            k.put(page, "compact", "compact:not_lru")
            continue
        page.lru = False
        page.isolated = True
        yield ("compact:trylock", ("page", page.pfn))
        if k.trylock(page, "compact:trylock"):
            yield ("compact:migrate", ("page", page.pfn))
            k.unlock(page, "compact:unlock")
        page.isolated = False
        k.putback_lru_page(page, "compact:putback", owner="compact")
