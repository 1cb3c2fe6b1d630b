"""The page lock (PG_locked): trylock_page, lock_page, unlock_page and
wait_on_page_locked, after mm/filemap.c (folio_lock, __folio_lock, folio_unlock,
folio_wait_locked) and include/linux/pagemap.h (trylock_page). A blocking lock is a
generator that yields a Wait; every lock taken is a lock-order edge for the
lockdep-style graph.
"""
from __future__ import annotations

from .state import Page, Wait
from .trail import current_path, leak_suffix, lock_taker


class PageLock:
    """Kernel's page lock (filemap.c)."""

    def _set_lock(self, page: Page, site: str) -> None:
        page.locked_by = self.who
        page.lock_site = site
        if self.cur is not None:
            self.cur.held.append(page)
        self._audit(site, page, "lock")

    def trylock(self, page: Page, site: str) -> bool:
        if page.free:
            self.use_after_free(page, site, "trylock_page")
        if page.locked_by is not None:
            self.branch(site + ":busy", page)
            return False
        self._set_lock(page, site)
        return True

    def lock_page(self, page: Page, site: str):
        """Blocking lock_page(): the actor is disabled until the page is unlocked."""
        if page.locked_by is not None:
            self.branch(site + ":wait", page)
            if self.cur is not None:
                self.cur.lock_order(page, site)
            yield Wait(site, ("page", page.pfn), lambda: page.locked_by is None,
                       lambda: [page.locked_by], "page lock")
        elif self.cur is not None:
            self.cur.lock_order(page, site)
        self._set_lock(page, site)

    def unlock(self, page: Page, site: str) -> None:
        if self.cur is not None and page.locked_by is not None and self.mms:
            ent = self.migration_entry_of(page)
            if ent is not None:
                # "Any use of migration entries may only occur while the corresponding
                # page is locked" (pfn_swap_entry_to_page's BUG_ON): unlocking the page
                # with one still installed breaks it for every later user, and the site
                # unlocking is where the restore or remap was skipped
                mm, vpn, msite = ent
                self.bug("VM_BUG_ON", f"VM_BUG_ON: page unlocked at {site} with a migration "
                         f"entry (installed at {msite}) still pointing at it (BUG_ON("
                         f"!PageLocked) in pfn_swap_entry_to_page)"
                         + current_path(self, page),
                         ("migration-entry-unlocked", site), pfn=page.pfn,
                         address=[mm.name, vpn])
        if page.locked_by is None:
            self.report("BAD_UNLOCK", f"BAD_UNLOCK: unlock_page at {site} on an unlocked page",
                        (site,), pfn=page.pfn)
            return
        holder = page.locked_by
        page.locked_by = None
        cur = self.cur
        if cur is not None and cur.name == holder and page in cur.held:
            cur.held.remove(page)
        self._audit(site, page, "unlock")

    def lock_leak(self, page: Page, freed_by: str | None = None, **detail) -> None:
        """A page lock nobody will release: at the end, in a hang, or when the page is
        freed still locked (one bug, one signature). Named by where it was taken and the
        path its holder took afterwards (trail.py)."""
        text, extra = leak_suffix(self, page, lock_taker(self, page))
        how = f"was freed by {freed_by} while locked" if freed_by else "was never unlocked"
        self.report("LOCK_LEAK", f"LOCK_LEAK: page locked at {page.lock_site} by "
                    f"{page.locked_by} {how}" + text, (page.lock_site,) + extra,
                    pfn=page.pfn, **detail)

    def assert_locked(self, page: Page, where: str, site: str) -> None:
        """VM_BUG_ON_PAGE(!PageLocked(page)) at ``where`` (called from ``site``)."""
        if page.locked_by is None:
            self.bug("VM_BUG_ON", f"VM_BUG_ON: page not locked in {where} ({site})",
                     ("not-locked:" + where, site), pfn=page.pfn)

    def wait_unlocked(self, page: Page, site: str):
        """Sleep until the page is unlocked, without taking the lock (wait_on_page_locked).
        Waiting for that event while holding other page locks is a lock-order edge too
        (DEPT's view: a wait depends on whoever will release the page)."""
        if page.locked_by is not None:
            if self.cur is not None and self.cur.held:
                self.cur.lock_order(page, site)
            yield Wait(site, ("page", page.pfn), lambda: page.locked_by is None,
                       lambda: [page.locked_by], "page unlock")
