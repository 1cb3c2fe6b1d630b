"""The simulated kernel state: pages, ptes, address spaces, device pools, and Kernel.

The data (Page: struct page / struct folio; Vma; MM: mm_struct with its ptes and huge pmds;
Device: a dev_pagemap's pool) is here; the primitive operations on it are one mixin per
kernel mechanism (page_alloc.py, page_lock.py, locks.py, tlb.py, lru.py, swap.py,
rmap.py), and Kernel is their composition with the execution's shared state. Primitives
that can block are generators (``yield from k.lock_page(...)``); the others are plain calls
made by an actor between two scheduling points. Every refcount, mapcount and lock change
goes to an audit log (page_ref / page_owner style) so an oracle can say which site made it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..findings import Finding, KernelBug
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

# PTL holders that defer their TLB flush past the PTL through an mmu_gather, which the
# kernel allows (tlb_gather_mmu raises mm->tlb_flush_pending, the gathered pages are freed
# only after tlb_finish_mmu's flush): zap_pte_range (zap.py). Named by the site its PTL
# is taken at.
MMU_GATHER_SITES = frozenset(("zap:ptl",))

# Decisions kept per page and actor (Page.trail). Why 16: the longest path one actor takes
# about one page between a take and its release is collect, unmap, move and finalize with
# a retry each, about 8 labels. Per actor, so an actor spinning on the page (a fault
# retrying its migrate_to_ram 40 times) cannot push out the holder's path.
TRAIL_MAX = 16


class ModelError(Exception):
    """The model itself went wrong (a bug in migfuzz, not in the modelled kernel)."""


class Page:
    __slots__ = ("pfn", "device", "refcount", "mapcount", "locked_by", "lock_site", "lru",
                 "batch_cpu", "isolated", "dirty", "mapping", "swap_slot", "free", "gen",
                 "data", "refs", "takers", "free_site", "ident", "tails", "head",
                 "trail", "lazyfree", "lazyfree_data")

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
        self.lazyfree = False           # MADV_FREE'd: anon and not PG_swapbacked
        self.lazyfree_data = 0          # its data then (a discard must not lose a write)
        self.mapping: str | None = None     # None (anon), "swapcache" or "shmem"
        self.swap_slot: int | None = None
        self.free = True
        self.gen = 0                    # allocation generation: stale users are detected
        self.data = 0
        self.refs: dict[str, list[str]] = {}   # owner kind -> sites that took those refs
        # the same references' takers, index for index: (actor, step). A put drops the
        # putter's own reference of that kind if it has one (PageAlloc.put), so a leak is
        # charged to the actor that never dropped its own, not to the last taker
        self.takers: dict[str, list[tuple[str, int]]] = {}
        self.free_site = ""
        self.ident = ""                 # a name stable across executions (lock-order graph)
        # a THP (compound page): the head holds refcount, lock and mapcount for the whole
        # folio and lists its tail pages; a tail points at its head. Split pages have none.
        self.tails: tuple = ()
        self.head: Page | None = None
        # the decisions each actor took about this page, oldest first: actor -> [(step,
        # branch label)], the last TRAIL_MAX (Kernel.branch). A leak names the path its
        # holder took after taking the reference or lock (trail.py)
        self.trail: dict[str, list[tuple[int, str]]] = {}

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
                 "pte_sites", "pmds")

    def __init__(self, name: str):
        self.name = name
        self.vmas: list[Vma] = []
        self.ptes: dict[int, tuple] = {}
        self.ptl: str | None = None      # holder of the page-table lock (one per mm)
        self.ptl_site = ""
        self.mmap_readers: list[str] = []
        self.mmap_writer: str | None = None
        # vpn -> the site that wrote its pte last (a migration entry's installer; the
        # fault, restore or move that mapped a page: a stale read names it)
        self.pte_sites: dict[int, str] = {}
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


# The mechanisms' mixins import the data classes above, so they are imported after them
# (kernel/__init__.py imports this module first, whichever module a caller names).
from .locks import Locks  # noqa: E402
from .lru import Lru  # noqa: E402
from .page_alloc import PageAlloc  # noqa: E402
from .page_lock import PageLock  # noqa: E402
from .rmap import Rmap  # noqa: E402
from .swap import Swap  # noqa: E402
from .tlb import Tlb  # noqa: E402


class Kernel(PageAlloc, PageLock, Locks, Tlb, Lru, Swap, Rmap):
    """All shared state of one execution. Its operations come from one mixin per
    mechanism; what is here is the core: construction, findings and coverage, writing a
    pte, and what a user should read back."""

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
        self.write_via: dict[tuple, str] = {}    # key -> the site that set the pte it used
        self.written_pfn: dict[tuple, int | None] = {}   # key -> the page it was written to
        self.zaps_inflight: dict[tuple, int] = {}
        self.origin: dict[tuple, str] = {}       # key -> the fault path that last filled it
        self.lock_edges: list[tuple] = []        # (held ident, held site, ident, site)
        self.step = 0
        self.switched = 0                        # the step the running actor got the CPU at
        self.cur = None                          # the running Actor (set by the scheduler)
        self.who = "init"                        # its name, for the audit log
        self.dp_base = 0 if sw.dp_idle_zero else 1
        # what the rules checked during the run (the assertions below, locks.py, tlb.py,
        # page_lock.py, migration_entries.py) need to remember:
        self.touched: dict[int, list] = {}       # pfn -> [page, {actor: [balance, site]},
        #                  last site]: mapping or mapcount changed since the last check
        self.tlb_pending: dict[tuple, tuple] = {}   # (mm, vpn) -> (actor, site): a present
        #                          pte cleared while a TLB still held it, not flushed yet
        self.flush_late: dict[tuple, str] = {}   # (mm, vpn) -> site: cleared there, the
        #                          PTL released before the flush (60bae7370896's rule)
        self.flush_late_pfn: dict[int, str] = {}   # the same, by the page it mapped
        self.moved: dict[int, tuple] = {}        # old pfn -> (new page, site) of each move
        self.pin_info: dict[tuple, list] = {}    # (actor, pfn) -> [(mm, vpn, write)] per pin
        self._released_seen: set = set()         # leaks assert_released reported
        self.command_starts: dict[str, list[int]] = {}   # actor -> step each command began
        #                          at (a holder's path ends with the command it took in)

    # ---- findings and coverage -------------------------------------------------------
    def report(self, kind: str, title: str, sites: tuple, **detail) -> None:
        if self.flush_late_pfn and (kind == "LOST_WRITE" and sites == ("stale-tlb",) or
                                kind == "USE_AFTER_FREE" and sites[0] in ("cpu:tlb_read",
                                                                        "cpu:tlb_write")):
            # the damage of a flush after the PTL release (a write or read through the
            # stale TLB entry, of a page since freed or no longer mapped) names the clear
            # that broke the rule, in the title only: the bucket stays the same
            late = (self.flush_late.get(tuple(detail.get("address", ())))
                    if kind == "LOST_WRITE" else self.flush_late_pfn.get(detail.get("pfn")))
            if late is not None:
                title += (f"; the pte was cleared at {late} and not flushed before its "
                          f"page-table lock was released (60bae7370896's rule)")
        f = Finding(kind, title, tuple(sites), self.step, detail)
        if f.signature not in self._seen:
            self._seen.add(f.signature)
            self.findings.append(f)

    def branch(self, label: str, page: Page | None = None) -> None:
        """A decision taken: ``label`` is coverage; given the page the decision was about
        (a failed trylock, a failed isolation, a restore instead of a move), it also goes
        to that page's trail, so a leak or a bad put can name the path that left it."""
        self.branches[label] = None
        if page is not None:
            trail = page.trail.get(self.who)
            if trail is None:
                trail = page.trail[self.who] = []
            trail.append((self.step, label))
            if len(trail) > TRAIL_MAX:
                del trail[0]

    def bug(self, kind: str, title: str, sites: tuple, **detail) -> None:
        """A fatal assertion (VM_BUG_ON, or an ASSERTION whose breach leaves state nothing
        later can be trusted on): the execution ends here with this finding (KernelBug)."""
        raise KernelBug(Finding(kind, title, tuple(sites), self.step, detail))

    def step_site(self) -> str:
        """The running step's label (the site the actor yielded before it), for a rule
        broken by a call that names no site of its own."""
        return self.cur.pending[0] if self.cur is not None else self.who

    # ---- ptes ------------------------------------------------------------------------
    def set_pte(self, mm: MM, vpn: int, pte: tuple, site: str = "") -> None:
        """Write one pte (set_pte_at / ptep_get_and_clear), checking the rules every pte
        change is under: the page-table lock is held, the mapcounts it moves are checked
        when that lock is released (locks.py), and a present pte cleared while a TLB still
        holds it is flushed before then (tlb.py)."""
        old = mm.ptes.get(vpn, PTE_NONE)
        if self.cur is not None:
            self._pte_rules(mm, vpn, old, pte, site)
        if pte[0] == NONE:
            mm.ptes.pop(vpn, None)
            mm.pte_sites.pop(vpn, None)
        else:
            mm.ptes[vpn] = pte
            # a change of bits only, with no site of its own (the MMU's dirty bit), keeps
            # the site that installed the mapping
            if site or old[0] != pte[0] or old[1] is not pte[1]:
                mm.pte_sites[vpn] = site or (self.step_site() if self.cur is not None
                                             else "")

    def _pte_rules(self, mm: MM, vpn: int, old: tuple, pte: tuple, site: str) -> None:
        who = self.who
        if mm.ptl != who:
            # the MMU setting a writable pte's dirty bit is the one pte change made without
            # the lock (x86 sets the A/D bits with a locked access)
            hw_dirty = (old[0] == PRESENT and old[2] and pte == (PRESENT, old[1], True, True))
            if not hw_dirty:
                where = site or self.step_site()
                self.bug("VM_BUG_ON", f"VM_BUG_ON: pte changed at {where} without its "
                         f"page-table lock (held by {mm.ptl or 'nobody'}; "
                         f"lockdep_assert_held(ptl))", ("ptl-not-held", where),
                         address=[mm.name, vpn])
        # a call that names no site is named by its step (zap's pte clears by "zap:pte",
        # not by "zap:ptl" where the lock was taken for the whole range)
        where = site or self.step_site()
        if pte[0] == MIGRATION and pte[1].locked_by is None:
            # "Any use of migration entries may only occur while the corresponding page is
            # locked" (pfn_swap_entry_to_page's BUG_ON): the installer holds the lock
            self.bug("VM_BUG_ON", f"VM_BUG_ON: migration entry installed at {where} for a "
                     f"page that is not locked (BUG_ON(!PageLocked) in "
                     f"pfn_swap_entry_to_page)", ("migration-entry-unlocked", where),
                     address=[mm.name, vpn], pfn=pte[1].pfn)
        # the mapcount rule: a page this pte stops or starts mapping is checked when the
        # PTL is released (locks.unlock_ptl); a change of bits or of entry kind that maps
        # the same page (or none) moves no mapcount
        was = old[1] if old[0] == PRESENT or old[0] == DEVICE else None
        now = pte[1] if pte[0] == PRESENT or pte[0] == DEVICE else None
        if was is not now:
            if was is not None:
                self.touch_map(was, where, 1)       # one mapping fewer
            if now is not None:
                self.touch_map(now, where, -1)      # one mapping more
        # 60bae7370896's rule (tlb.py): a present pte cleared or replaced while a CPU's TLB
        # still caches it must be flushed before the PTL is released. zap_pte_range is the
        # kernel's exception: its mmu_gather raises mm->tlb_flush_pending and holds the
        # pages until tlb_finish_mmu flushes, after the PTL
        if old[0] == PRESENT and now is not old[1] and mm.ptl_site not in MMU_GATHER_SITES:
            tkey = (mm.name, vpn)
            for tlb in self.tlbs:
                if tkey in tlb:
                    self.tlb_pending[tkey] = (who, where, old[1].pfn)
                    break

    # ---- the migration's rules -------------------------------------------------------
    def assert_move(self, src: Page, dst: Page, site: str) -> None:
        """The rules of moving a page's identity to a new page (migrate_vma_pages, and
        its commit in remove_migration_ptes(src, dst)): both pages locked (the
        VM_BUG_ON_FOLIO(!folio_test_locked(src)) and (dst) of move_to_new_folio, which
        migrate_folio's callers share), a system page isolated from the LRU (what
        migrate_vma_unmap's isolation is for), and the two rules the HMM selftests
        expect of every migration: a GUP-pinned page never moves (hmm_gup_test), a page
        with a mapping (shmem, swap cache) never moves to device memory (migrate_shared;
        "only support anonymous memory migrating to device private")."""
        for page, which in ((src, "page"), (dst, "destination page")):
            if page.locked_by is None:
                self.bug("VM_BUG_ON", f"VM_BUG_ON: {which} not locked when it is moved "
                         f"({site}; move_to_new_folio: VM_BUG_ON_FOLIO(!folio_test_locked))",
                         ("not-locked:move" + ("" if page is src else "-dst"), site),
                         pfn=page.pfn)
        if not src.device and not src.isolated:
            self.bug("ASSERTION", f"ASSERTION: page moved at {site} without being isolated "
                     f"from the LRU", ("not-isolated:move", site), pfn=src.pfn)
        # pinned by a GUP user (gup.py keeps who pinned what), whatever its refcount says
        pinners = [who for (who, pfn), pins in self.pin_info.items() if pfn == src.pfn and pins]
        if pinners:
            self.bug("ASSERTION", f"ASSERTION: a GUP-pinned page (pinned by {pinners[0]}) was "
                     f"migrated at {site} (hmm_gup_test: pinned pages do not migrate)",
                     ("pinned-migrated", site), pfn=src.pfn)
        if src.mapping is not None and dst.device:
            self.bug("ASSERTION", f"ASSERTION: a {src.mapping} page was migrated to device "
                     f"memory at {site} (migrate_shared: only private anonymous pages "
                     f"move to device-private memory)", ("mapping-to-device", site),
                     pfn=src.pfn)

    def migration_entry_of(self, page: Page) -> tuple | None:
        """(mm, vpn, site that installed it) of a migration entry pointing at ``page``."""
        for mm in self.mms.values():
            for vpn, pte in mm.ptes.items():
                if pte[1] is page and pte[0] == MIGRATION:
                    return mm, vpn, mm.pte_sites.get(vpn, "?")
        return None

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
