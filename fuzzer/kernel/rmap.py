"""The reverse map: mapcounts (page_add_anon_rmap / page_remove_rmap in mm/rmap.c),
the anon_vma walk rmap() (rmap_walk_anon) and the audit log every refcount, mapcount
and lock change is written to.
"""
from __future__ import annotations

from .state import DEVICE, MM, PRESENT, Page


class Rmap:
    """Kernel's reverse map and audit log (rmap.c)."""

    def _audit(self, site: str, page: Page, op: str) -> None:
        """A row of the page's audit log, taken after the change it records: the refcount
        and mapcount it shows include that change."""
        self.audit.append((self.step, self.who, site, page.pfn, op, page.refcount,
                           page.mapcount))

    def page_audit(self, pfn: int) -> list[list]:
        """The page_ref-style log of one page: step, actor, site, operation, refcount,
        mapcount."""
        return [[s, who, site, op, ref, mc] for s, who, site, p, op, ref, mc in self.audit
                if p == pfn]

    def set_mapcount(self, page: Page, value: int, site: str) -> None:
        """Set a page's mapcount (page_add_*_rmap / page_remove_rmap); a change is a row
        of the audit log of its own, "+mapcount" or "-mapcount"."""
        old = page.mapcount
        page.mapcount = value
        if value != old:
            self._audit(site, page, "+mapcount" if value > old else "-mapcount")
            if self.cur is not None:
                self.touch_map(page, site, value - old)    # checked at the PTL release

    def touch_map(self, page: Page, site: str, delta: int) -> None:
        """Log a change of ``page``'s mapcount (+delta) or of its mappings (a pte or pmd
        gained: -1, lost: +1) for the check at the next PTL release (locks.py). Per actor
        the two cancel out when its section of work is right (page_add_anon_rmap with
        set_pte_at, page_remove_rmap with the clear), so the actor whose balance is not
        zero is the one that skipped its half, whoever releases a lock first."""
        ent = self.touched.get(page.pfn)
        if ent is None:
            ent = self.touched[page.pfn] = [page, {}, site]
        who = self.who
        acc = ent[1].get(who)
        if acc is None:
            ent[1][who] = [delta, site]
        else:
            acc[0] += delta
            acc[1] = site
        ent[2] = site

    def map_inc(self, page: Page, site: str) -> None:
        self.set_mapcount(page, page.mapcount + 1, site)

    def map_dec(self, page: Page, site: str) -> None:
        self.set_mapcount(page, page.mapcount - 1, site)

    def rmap(self, page: Page, kinds: tuple = (PRESENT, DEVICE)) -> list[tuple[MM, int]]:
        """Every (mm, vpn) whose pte of one of ``kinds`` points at ``page``, in mm creation
        and address order (the anon_vma walk)."""
        out = []
        for mm in self.mms.values():
            for vpn in sorted(mm.ptes):
                pte = mm.ptes[vpn]
                if pte[1] is page and pte[0] in kinds:
                    out.append((mm, vpn))
        return out
