"""The simulated kernel state and its primitive operations.

Pages, ptes, address spaces, page-table locks, the LRU and its per-CPU add batches, per-CPU
TLBs, swap, a page allocator and device-private memory pools. Primitives that can block are
generators (``yield from k.lock_page(...)``); the others are plain calls made by an actor
between two scheduling points. Every refcount, mapcount and lock change goes to an audit
log (page_ref / page_owner style) so an oracle can say which site made it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .findings import Finding
from .variants import Switches

# pte kinds; a pte is a tuple (kind, target, write, dirty): target is a Page for PRESENT,
# MIGRATION and DEVICE, a swap slot number for SWAP, None otherwise.
NONE, ZERO, PRESENT, MIGRATION, DEVICE, SWAP = range(6)
PTE_NAMES = ("none", "zero", "present", "migration", "device", "swap")
PTE_NONE = (NONE, None, False, False)
PTE_ZERO = (ZERO, None, False, False)

# Pages per transparent huge page (one pmd entry maps them all). The kernel's is 512
# (HPAGE_PMD_NR on x86-64); 4 keeps executions short, and the races modelled here (the pmd
# path of collect, split, zap of a whole pmd) do not depend on the size.
HPAGE_NR = 4


class ModelError(Exception):
    """The model itself went wrong (a bug in migfuzz, not in the modelled kernel)."""


class Page:
    __slots__ = ("pfn", "device", "refcount", "mapcount", "locked_by", "lock_site", "lru",
                 "batch_cpu", "isolated", "dirty", "mapping", "swap_slot", "free", "gen",
                 "data", "refs", "free_site", "ident", "tails", "head")

    def __init__(self, pfn: int, device: str | None):
        self.pfn = pfn
        self.device = device            # None: system RAM; else the owning device's name
        self.refcount = 0
        self.mapcount = 0
        self.locked_by: str | None = None
        self.lock_site = ""
        self.lru = False                # PG_lru
        self.batch_cpu: int | None = None   # waiting in a per-CPU LRU-add batch
        self.isolated = False           # off the LRU with an isolation reference
        self.dirty = False              # PG_dirty
        self.mapping: str | None = None     # None (anon), "swapcache" or "shmem"
        self.swap_slot: int | None = None
        self.free = True
        self.gen = 0                    # allocation generation: stale users are detected
        self.data = 0
        self.refs: dict[str, list[str]] = {}   # owner kind -> sites that took those refs
        self.free_site = ""
        self.ident = ""                 # a name stable across executions (lock-order graph)
        # a THP (compound page): the head holds refcount, lock and mapcount for the whole
        # folio and lists its tail pages; a tail points at its head. Split pages have none.
        self.tails: tuple = ()
        self.head: Page | None = None

    def __repr__(self) -> str:
        return f"<page {self.pfn}{' dp' if self.device else ''} ref={self.refcount}>"

    def subpage(self, i: int) -> "Page":
        """Page ``i`` of the THP this head starts (0: the head itself)."""
        return self if i == 0 else self.tails[i - 1]


@dataclass
class Vma:
    start: int
    end: int                  # exclusive, in pages
    prot: str = "rw"          # "rw", "r" or "none"
    shared: bool = False      # MAP_SHARED anonymous (shmem): not migratable by migrate_vma
    special: bool = False     # VM_IO/VM_PFNMAP-like: migrate_vma_setup refuses it
    shm: str = ""             # the shared memory object behind a shared vma

    @property
    def anonymous(self) -> bool:
        return not self.shared

    @property
    def writable(self) -> bool:
        return self.prot == "rw"


class MM:
    __slots__ = ("name", "vmas", "ptes", "ptl", "ptl_site", "mmap_readers", "mmap_writer",
                 "mig_sites", "pmds")

    def __init__(self, name: str):
        self.name = name
        self.vmas: list[Vma] = []
        self.ptes: dict[int, tuple] = {}
        self.ptl: str | None = None      # holder of the page-table lock (one per mm)
        self.ptl_site = ""
        self.mmap_readers: list[str] = []
        self.mmap_writer: str | None = None
        self.mig_sites: dict[int, str] = {}   # vpn -> site that installed a migration entry
        # huge pmds: first vpn (HPAGE_NR-aligned) -> (PRESENT, head page, write, dirty); the
        # HPAGE_NR vpns from there are mapped by this one entry and have no ptes
        self.pmds: dict[int, tuple] = {}

    def vma_at(self, vpn: int) -> Vma | None:
        for v in self.vmas:
            if v.start <= vpn < v.end:
                return v
        return None

    def pte(self, vpn: int) -> tuple:
        return self.ptes.get(vpn, PTE_NONE)

    def pmd_base(self, vpn: int) -> int | None:
        """The first vpn of the huge pmd mapping ``vpn``, or None (not pmd-mapped)."""
        base = vpn - vpn % HPAGE_NR
        return base if base in self.pmds else None

    def walk(self, vpn: int) -> tuple:
        """What the hardware walk finds for ``vpn``: its pte, or for a vpn under a huge pmd
        the pmd's bits with the subpage it maps (TLB entries are per vpn either way)."""
        base = self.pmd_base(vpn)
        if base is None:
            return self.pte(vpn)
        kind, head, write, dirty = self.pmds[base]
        return (kind, head.subpage(vpn - base), write, dirty)


class Wait:
    """What a blocked actor waits for. ``ready`` says when it may go on; ``holders`` names
    who holds the resource (for the deadlock report)."""
    __slots__ = ("site", "obj", "ready", "holders", "what")

    def __init__(self, site, obj, ready, holders, what):
        self.site, self.obj, self.ready, self.holders, self.what = site, obj, ready, holders, what


@dataclass
class Device:
    name: str
    capacity: int
    free_list: list = field(default_factory=list)
    pages: list = field(default_factory=list)


class Kernel:
    """All shared state of one execution."""

    def __init__(self, sw: Switches, ncpus: int):
        self.sw = sw
        self.pages: dict[int, Page] = {}
        self.next_pfn = 0x100
        self.devices: dict[str, Device] = {}
        self.mms: dict[str, MM] = {}
        self.shm: dict[tuple, Page] = {}
        self.swap: dict[int, list] = {}          # slot -> [data, swap map count]
        self.swapcache: dict[int, Page] = {}     # slot -> page in the swap cache
        self.next_slot = 1
        self.tlbs: list[dict] = [{} for _ in range(ncpus)]
        self.batches: list[list[Page]] = [[] for _ in range(ncpus)]
        self.findings: list[Finding] = []
        self._seen: set[str] = set()
        self.audit: list[tuple] = []
        self.branches: dict[str, None] = {}      # ordered set of model branch labels
        self.expect: dict[tuple, frozenset] = {}
        self.last_write: dict[tuple, str] = {}   # key -> how the last write reached memory
        self.written_pfn: dict[tuple, int | None] = {}   # key -> the page it was written to
        self.zaps_inflight: dict[tuple, int] = {}
        self.origin: dict[tuple, str] = {}       # key -> the fault path that last filled it
        self.lock_edges: list[tuple] = []        # (held ident, held site, ident, site)
        self.step = 0
        self.cur = None                          # the running Actor (set by the scheduler)
        self.who = "init"                        # its name, for the audit log
        self.dp_base = 0 if sw.dp_idle_zero else 1

    # ---- findings and coverage -------------------------------------------------------
    def report(self, kind: str, title: str, sites: tuple, **detail) -> None:
        f = Finding(kind, title, tuple(sites), self.step, detail)
        if f.signature not in self._seen:
            self._seen.add(f.signature)
            self.findings.append(f)

    def branch(self, label: str) -> None:
        self.branches[label] = None

    def _audit(self, site: str, page: Page, op: str) -> None:
        """A row of the page's audit log, taken after the change it records: the refcount
        and mapcount it shows include that change."""
        self.audit.append((self.step, self.who, site, page.pfn, op, page.refcount,
                           page.mapcount))

    # ---- mapcount (rmap) -------------------------------------------------------------
    def set_mapcount(self, page: Page, value: int, site: str) -> None:
        """Set a page's mapcount (page_add_*_rmap / page_remove_rmap); a change is a row
        of the audit log of its own, "+mapcount" or "-mapcount"."""
        old = page.mapcount
        page.mapcount = value
        if value != old:
            self._audit(site, page, "+mapcount" if value > old else "-mapcount")

    def map_inc(self, page: Page, site: str) -> None:
        self.set_mapcount(page, page.mapcount + 1, site)

    def map_dec(self, page: Page, site: str) -> None:
        self.set_mapcount(page, page.mapcount - 1, site)

    # ---- allocation ------------------------------------------------------------------
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
        self._take(p, "driver", site)
        self._set_lock(p, site)
        return p

    # ---- references ------------------------------------------------------------------
    def _take(self, page: Page, owner: str, site: str) -> None:
        page.refcount += 1
        page.refs.setdefault(owner, []).append(site)
        self._audit(site, page, "+" + owner)

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
        stack = page.refs.get(owner)
        if stack:
            stack.pop()
        else:
            self.report("REFCOUNT_UNDERFLOW",
                        f"REFCOUNT_UNDERFLOW: {site} dropped a {owner} reference that "
                        f"nobody holds", (site, owner), pfn=page.pfn)
            # keep the count coherent: take the reference from the largest holder
            others = [k for k in page.refs if page.refs[k]]
            if not others:
                return
            page.refs[max(others, key=lambda k: len(page.refs[k]))].pop()
        page.refcount -= 1
        if owner == "isolate":
            page.isolated = False
        self._audit(site, page, "-" + owner)
        if page.refcount == (self.dp_base if page.device else 0):
            self._free(page, site)

    def _free(self, page: Page, site: str) -> None:
        if page.mapcount:
            self.report("REFCOUNT_UNDERFLOW",
                        f"REFCOUNT_UNDERFLOW: page freed by {site} while still mapped",
                        (site, "freed-while-mapped"), pfn=page.pfn)
        if page.locked_by is not None:
            self.report("LOCK_LEAK",
                        f"LOCK_LEAK: page freed by {site} while locked (locked at "
                        f"{page.lock_site})", (page.lock_site, "freed-while-locked"),
                        pfn=page.pfn)
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

    # ---- page lock -------------------------------------------------------------------
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
            self.branch(site + ":busy")
            return False
        self._set_lock(page, site)
        return True

    def lock_page(self, page: Page, site: str):
        """Blocking lock_page(): the actor is disabled until the page is unlocked."""
        if page.locked_by is not None:
            self.branch(site + ":wait")
            if self.cur is not None:
                self.cur.lock_order(page, site)
            yield Wait(site, ("page", page.pfn), lambda: page.locked_by is None,
                       lambda: [page.locked_by], "page lock")
        elif self.cur is not None:
            self.cur.lock_order(page, site)
        self._set_lock(page, site)

    def unlock(self, page: Page, site: str) -> None:
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

    def wait_unlocked(self, page: Page, site: str):
        """Sleep until the page is unlocked, without taking the lock (wait_on_page_locked).
        Waiting for that event while holding other page locks is a lock-order edge too
        (DEPT's view: a wait depends on whoever will release the page)."""
        if page.locked_by is not None:
            if self.cur is not None and self.cur.held:
                self.cur.lock_order(page, site)
            yield Wait(site, ("page", page.pfn), lambda: page.locked_by is None,
                       lambda: [page.locked_by], "page unlock")

    # ---- page-table lock and mmap lock -----------------------------------------------
    def lock_ptl(self, mm: MM, site: str):
        if mm.ptl is not None:
            yield Wait(site, ("ptl", mm.name), lambda: mm.ptl is None, lambda: [mm.ptl],
                       "page-table lock")
        mm.ptl = self.who
        mm.ptl_site = site

    def unlock_ptl(self, mm: MM) -> None:
        mm.ptl = None

    def mmap_read_lock(self, mm: MM, site: str):
        if mm.mmap_writer is not None:
            yield Wait(site, ("mmap", mm.name), lambda: mm.mmap_writer is None,
                       lambda: [mm.mmap_writer], "mmap_lock (read)")
        mm.mmap_readers.append(self.who)

    def mmap_read_unlock(self, mm: MM) -> None:
        mm.mmap_readers.remove(self.who)

    def mmap_write_lock(self, mm: MM, site: str):
        if mm.mmap_writer is not None or mm.mmap_readers:
            yield Wait(site, ("mmap", mm.name),
                       lambda: mm.mmap_writer is None and not mm.mmap_readers,
                       lambda: [mm.mmap_writer] if mm.mmap_writer else list(mm.mmap_readers),
                       "mmap_lock (write)")
        mm.mmap_writer = self.who

    def mmap_write_unlock(self, mm: MM) -> None:
        mm.mmap_writer = None

    # ---- ptes, rmap and TLBs ---------------------------------------------------------
    def set_pte(self, mm: MM, vpn: int, pte: tuple, site: str = "") -> None:
        if pte[0] == NONE:
            mm.ptes.pop(vpn, None)
        else:
            mm.ptes[vpn] = pte
        if pte[0] == MIGRATION:
            mm.mig_sites[vpn] = site
        else:
            mm.mig_sites.pop(vpn, None)

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

    def flush_tlb_range(self, mm: MM, start: int, end: int, site: str) -> None:
        """Remove (mm, [start, end)) from every CPU's TLB; ``site`` names the caller."""
        name = mm.name
        for tlb in self.tlbs:
            for key in [k for k in tlb if k[0] == name and start <= k[1] < end]:
                del tlb[key]

    # ---- LRU -------------------------------------------------------------------------
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

    # ---- swap ------------------------------------------------------------------------
    def swap_alloc(self, data: int) -> int:
        slot = self.next_slot
        self.next_slot += 1
        self.swap[slot] = [data, 0]
        return slot

    def swap_free(self, slot: int) -> None:
        ent = self.swap[slot]
        ent[1] -= 1
        if ent[1] <= 0 and slot not in self.swapcache:
            del self.swap[slot]

    # ---- what a user should read back ------------------------------------------------
    def mem_key(self, mm: MM, vpn: int) -> tuple:
        vma = mm.vma_at(vpn)
        if vma is not None and vma.shared:
            return ("shm", vma.shm, vpn - vma.start)
        return (mm.name, vpn)

    def expect_write(self, key: tuple, value: int, how: str, pfn: int | None = None) -> None:
        if self.zaps_inflight.get(key):
            # a write racing with MADV_DONTNEED of the same address may or may not survive,
            # and may land on either side of other writes racing with it
            self.expect[key] = self.expect.get(key, frozenset()) | {value, 0}
        else:
            self.expect[key] = frozenset((value,))
        self.last_write[key] = how
        self.written_pfn[key] = pfn

    def expect_zapped(self, key: tuple) -> None:
        self.expect[key] = frozenset((0,))
        self.last_write[key] = "zap"
