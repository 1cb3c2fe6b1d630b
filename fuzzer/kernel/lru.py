"""The LRU and its per-CPU add batches, after mm/swap.c (lru_cache_add / folio_add_lru,
lru_add_drain, lru_add_drain_all: a batch holds a reference until drained) and
mm/vmscan.c / mm/migrate.c (isolate_lru_page = folio_isolate_lru, putback_lru_page).
"""
from __future__ import annotations

from .state import Page


class Lru:
    """Kernel's LRU (swap.c, vmscan.c)."""

    def lru_cache_add(self, page: Page, site: str) -> None:
        """Put a page in this CPU's LRU-add batch (the batch holds a reference)."""
        cpu = self.cur.cpu if self.cur is not None else 0
        self.get(page, "batch", site)
        page.batch_cpu = cpu
        batch = self.batches[cpu]
        batch.append(page)
        if len(batch) >= 15:           # PAGEVEC_SIZE: a full batch drains itself
            self.lru_add_drain(cpu)

    def lru_add_drain(self, cpu: int) -> None:
        batch = self.batches[cpu]
        self.batches[cpu] = []
        for page in batch:
            page.batch_cpu = None
            page.lru = True
            self.put(page, "batch", "lru_add_drain")

    def lru_add_drain_all(self) -> None:
        for cpu in range(len(self.batches)):
            self.lru_add_drain(cpu)

    def isolate_lru_page(self, page: Page, site: str) -> bool:
        """TestClearPageLRU plus an isolation reference; fails if not on the LRU."""
        if page.free:
            self.use_after_free(page, site, "isolate_lru_page")
            return False
        if not page.lru:
            self.branch(site + ":busy")
            return False
        page.lru = False
        page.isolated = True
        self.get(page, "isolate", site)
        return True

    def putback_lru_page(self, page: Page, site: str, owner: str = "isolate") -> None:
        """putback_lru_page(): back to the LRU (through the batch) and drop the caller's
        reference (the isolation reference, or the driver's for a new page)."""
        self.lru_cache_add(page, site)
        self.put(page, owner, site)
