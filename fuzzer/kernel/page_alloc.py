"""Page allocation and page references: the buddy allocator's alloc/free, the device's
free list, get_page/put_page.

Follows mm/page_alloc.c (alloc_pages, free_unref_page, free_compound_page),
include/linux/mm.h (get_page, put_page, get_page_unless_zero), lib/test_hmm.c
(dmirror_devmem_alloc_page) and mm/memremap.c (free_zone_device_page). Every reference
change goes to the audit log (page_ref / page_owner style); a touch of a freed page is a
USE_AFTER_FREE finding (KASAN's view).
"""
from __future__ import annotations

from .state import HPAGE_NR, Device, Page
from .trail import current_path, leak_suffix, ref_taker


class PageAlloc:
    """Kernel's allocator and reference counting (page_alloc.c, mm.h)."""

    def alloc_page(self, site: str, owner: str = "alloc") -> Page:
        """A fresh system page with one reference. System pfns are never reused within an
        execution (a KASAN-style quarantine), so any later touch of a freed page is seen."""
        p = Page(self.next_pfn, None)
        self.next_pfn += 1
        self.pages[p.pfn] = p
        p.free = False
        p.gen = 1
        self._take(p, owner, site)
        return p

    def alloc_thp(self, site: str, owner: str = "map") -> Page:
        """A fresh anonymous THP: HPAGE_NR consecutive frames, the head holding the one
        reference (and later the lock and mapcount) for the whole folio; tails have
        refcount 0, as in the kernel."""
        head = self.alloc_page(site, owner)
        tails = []
        for _ in range(HPAGE_NR - 1):
            t = Page(self.next_pfn, None)
            self.next_pfn += 1
            self.pages[t.pfn] = t
            t.free = False
            t.gen = 1
            t.head = head
            tails.append(t)
        head.tails = tuple(tails)
        return head

    def add_device(self, name: str, capacity: int) -> None:
        dev = Device(name, capacity)
        for _ in range(capacity):
            p = Page(self.next_pfn, name)
            self.next_pfn += 1
            self.pages[p.pfn] = p
            if self.dp_base:
                p.refcount = 1
                p.refs["pgmap"] = ["pgmap:idle"]
                p.takers["pgmap"] = [("init", 0)]
            dev.pages.append(p)
            dev.free_list.append(p)
        self.next_pfn += 0x100
        self.devices[name] = dev

    def alloc_device_page(self, dev: str, site: str) -> Page | None:
        """dmirror_devmem_alloc_page: take a page from the device's free list (FIFO, so a
        freed page is reused as late as possible), take a reference and lock it."""
        d = self.devices[dev]
        if not d.free_list:
            return None
        p = d.free_list.pop(0)
        p.free = False
        p.gen += 1
        p.data = 0
        p.dirty = False
        p.lazyfree = False
        p.trail.clear()
        self._take(p, "driver", site)
        self._set_lock(p, site)
        return p

    def _take(self, page: Page, owner: str, site: str) -> None:
        page.refcount += 1
        page.refs.setdefault(owner, []).append(site)
        page.takers.setdefault(owner, []).append((self.who, self.step))
        self._audit(site, page, "+" + owner)

    def forget_ref(self, page: Page, owner: str) -> None:
        """Remove one ``owner`` reference from the page's books (not its refcount): the
        running actor's own if it holds one, else the latest taken."""
        stack, takers = page.refs[owner], page.takers[owner]
        who = self.who
        for i in range(len(takers) - 1, -1, -1):
            if takers[i][0] == who:
                break
        else:
            i = len(takers) - 1
        del stack[i], takers[i]

    def get(self, page: Page, owner: str, site: str) -> None:
        if page.free:
            self.use_after_free(page, site, "get_page")
        self._take(page, owner, site)

    def get_unless_zero(self, page: Page, owner: str, site: str) -> bool:
        if page.free or page.refcount == 0:
            return False
        self._take(page, owner, site)
        return True

    def put(self, page: Page, owner: str, site: str) -> None:
        if page.free:
            self.use_after_free(page, site, "put_page")
            return
        if page.refs.get(owner):
            self.forget_ref(page, owner)
        else:
            self.report("REFCOUNT_UNDERFLOW",
                        f"REFCOUNT_UNDERFLOW: {site} dropped a {owner} reference that "
                        f"nobody holds" + current_path(self, page)
                        + self._taken_away(page, owner, site), (site, owner),
                        pfn=page.pfn)
            # keep the count coherent: take the reference from the largest holder
            others = [k for k in page.refs if page.refs[k]]
            if not others:
                return
            self.forget_ref(page, max(others, key=lambda k: len(page.refs[k])))
        page.refcount -= 1
        if owner == "isolate":
            page.isolated = False
        self._audit(site, page, "-" + owner)
        if page.refcount == (self.dp_base if page.device else 0):
            self._free(page, site)

    def _taken_away(self, page: Page, owner: str, site: str) -> str:
        """Title text for an underflow: where the page last lost an ``owner`` reference
        other than here (a put on another path, a refcount freeze that discarded it), the
        first place to look for the put that was one too many."""
        pfn, op = page.pfn, "-" + owner
        for row in reversed(self.audit):
            if row[3] == pfn and row[4].startswith(op) and row[2] != site:
                return f"; the last {owner} reference before went at {row[2]}"
        return ""

    def _free(self, page: Page, site: str) -> None:
        if page.mapcount:
            self.report("REFCOUNT_UNDERFLOW",
                        f"REFCOUNT_UNDERFLOW: page freed by {site} while still mapped",
                        (site, "freed-while-mapped"), pfn=page.pfn)
        if page.locked_by is not None:
            self.lock_leak(page, freed_by=site)
        page.free = True
        page.free_site = site
        page.lru = False
        page.isolated = False
        if page.mapping == "swapcache" and self.swapcache.get(page.swap_slot) is page:
            del self.swapcache[page.swap_slot]
        page.mapping = None
        page.swap_slot = None
        if page.batch_cpu is not None:      # only reachable through a refcount bug
            self.batches[page.batch_cpu].remove(page)
            page.batch_cpu = None
        if page.device:
            self.devices[page.device].free_list.append(page)
        self._audit(site, page, "free")
        for tail in page.tails:           # a THP is freed whole (free_compound_page)
            tail.free = True
            tail.free_site = site
            self._audit(site, tail, "free")

    def reference_leak(self, page: Page, owner: str, i: int = -1, **detail) -> None:
        """The page's ``i``-th (by default latest) ``owner`` reference that nobody will
        drop: named by where it was taken and the path its holder took afterwards."""
        site, who, step = ref_taker(page, owner, i)
        # a pin is the program's to drop (its unpin command), not a kernel path's
        text, extra = ("", ()) if owner == "pin" else leak_suffix(self, page, (who, step))
        self.report(
            "REFCOUNT_LEAK", f"REFCOUNT_LEAK: {owner} reference taken at {site} was never "
            f"dropped" + text, (owner, site) + extra, pfn=page.pfn,
            audit=self.page_audit(page.pfn), **detail)

    def isolation_leak(self, page: Page, i: int = -1, **detail) -> None:
        """A page isolated from the LRU that nobody will put back, named like a
        reference leak."""
        site, who, step = ref_taker(page, "isolate", i)
        text, extra = leak_suffix(self, page, (who, step))
        self.report(
            "LRU_LEAK", f"LRU_LEAK: page isolated at {site} was never put back" + text,
            (site,) + extra, pfn=page.pfn, **detail)

    def assert_released(self, site: str, keep: Page | None = None) -> None:
        """What a migration took for itself is gone when migrate_vma_finalize (or
        migrate_device_finalize) returns: the collect and unmap references ("migrate"),
        the isolations, the new pages' allocation references ("driver"), and its page
        locks (``keep``: the fault folio its caller locked, 1afaeb8293c9). A migration
        runs on one actor from setup to finalize and nothing else that actor runs holds
        these, so any it still holds is leaked; the rule names it here, at the end of
        the migration that leaked it, and a hang it starves other actors into is its
        consequence, not a bucket of its own (measured on collect's trylock-failure path
        without its put: 13 HANG buckets in 1,500 v6.1 executions before). Not fatal: a
        v6.1 execution with the known THP leak would otherwise end before any other
        finding of the run (an injected unlock missing on the THP split-failure path was
        caught after 99,189 executions instead of 21). Each leak is reported once."""
        who, seen = self.who, self._released_seen
        for page in self.pages.values():
            if page.free or not page.takers:
                continue
            for owner in ("migrate", "driver", "isolate"):
                takers = page.takers.get(owner)
                if not takers:
                    continue
                mine = [i for i, t in enumerate(takers) if t[0] == who]
                if mine and (page.pfn, owner, takers[mine[-1]][1]) not in seen:
                    seen.add((page.pfn, owner, takers[mine[-1]][1]))
                    if owner == "isolate":
                        self.isolation_leak(page, mine[-1], seen_at=site)
                    else:
                        self.reference_leak(page, owner, mine[-1], seen_at=site)
        if self.cur is not None:
            for page in self.cur.held:
                if page is not keep and (page.pfn, "lock", page.lock_site) not in seen:
                    seen.add((page.pfn, "lock", page.lock_site))
                    self.lock_leak(page, seen_at=site)

    def use_after_free(self, page: Page, site: str, what: str) -> None:
        # the signature is the access site alone (ClusterFuzz's crash state is the access
        # stack): the same access racing with different frees is one bug
        self.report("USE_AFTER_FREE",
                    f"USE_AFTER_FREE: {what} at {site} on a page freed at {page.free_site}",
                    (site,), pfn=page.pfn, freed_at=page.free_site)

    def touch(self, page: Page, gen: int, site: str, what: str) -> bool:
        """Access a page through a reference taken earlier (a TLB entry, a pte read without
        the lock). False, with a finding, if the page was freed (or freed and reused)."""
        if page.free or page.gen != gen:
            self.use_after_free(page, site, what)
            return False
        return True
