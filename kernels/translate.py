"""A model reproducer as a guest program: the spec that ``kernels/guest/mfrepro.c`` runs.

One thread per actor, over the test_hmm ioctls (``/dev/hmm_dmirrorN``) and ordinary memory
operations; the guest program's own header says what each directive does. Pure: no I/O.

What a model op becomes on the real kernel:

=========== ==================================================================================
migrate     ``HMM_DMIRROR_MIGRATE_TO_DEV`` on the range, through the actor's own open of the
            device (test_hmm walks it in 64-page chunks; each chunk is one migrate_vma_setup)
evict       ``HMM_DMIRROR_RELEASE``: the device gives all its memory back (to RAM)
read/write  CPU loads/stores of the first word of every page (faults, migrate_to_ram)
zap         ``madvise(MADV_DONTNEED)``
fork        ``fork()``; the child serves the ops other actors run on the forked mm (an op
            on it before the fork is skipped, as in the model) until the repeat ends
compact     ``/proc/sys/vm/compact_memory``: whole-system compaction (the guest cannot
            compact one range; a superset of the model's step)
=========== ==================================================================================

Layouts: ``none``, ``zero`` (a read fault), ``present`` (a write fault), ``device``
(written, then migrated to the device), ``thp`` (an aligned 2 MiB range with
``MADV_HUGEPAGE``, written). The model's THP is ``HPAGE_NR`` pages; a real one is 512, so in
an mm with a THP every model page stands for ``512 // HPAGE_NR`` guest pages (the model's
4-page THP is one 2 MiB THP); elsewhere a model page is one guest page.

What the guest cannot express is refused by name (:class:`Untranslatable`), never
approximated: GUP pins held across other actors' steps (``pin``, ``unpin``, ``gup_fast``:
test_hmm has no pin ioctl), ``reclaim`` and ``swapped`` pages (the guest has no swap),
fault injection (``fail_alloc``, ``fail_isolate``, ``bad_args``), pages shared between mms
by the layout, ``special`` vmas, a second mm that is not a fork of the first (every actor
runs in one process; a forked child runs the ops on its mm), more than two devices.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from migfuzz.fuzzer.kernel.state import HPAGE_NR

GUEST_HPAGE = 512            # 4 KiB pages in a 2 MiB THP on x86-64
MAX_DEVICES = 2              # /dev/hmm_dmirror0 and 1: the device-private ones
MAX_FORKS = 8                # the guest program's child slots (ids 1..7)
SPEC_VERSION = 1
REFUSED_OPS = {
    "pin": "a GUP pin held across other actors' steps has no user-space driver in the "
           "guest (test_hmm has no pin ioctl)",
    "unpin": "a GUP pin held across other actors' steps has no user-space driver in the "
             "guest (test_hmm has no pin ioctl)",
    "gup_fast": "GUP-fast of one page at a chosen step has no user-space driver in the guest",
    "reclaim": "swapping a page out needs swap, and the guest has none",
    "free": "madvise(MADV_FREE) is not among the guest program's operations yet, and its "
            "effect shows only when reclaim discards the page",
}
REFUSED_KEYS = {
    "fail_alloc": "fault injection in the driver's allocation is not available in test_hmm",
    "fail_isolate": "fault injection in LRU isolation is not available on a real kernel",
    "bad_args": "migrate_vma_setup without src/dst arrays cannot be asked of test_hmm",
}


class Untranslatable(ValueError):
    """A scenario part the guest cannot express; the message names it."""


@dataclass
class GuestOp:
    kind: str                 # migrate tosys evict read write zap fork compact
    start: int = 0            # guest pages from the program's base
    npages: int = 0
    value: int = 0
    repeat: int = 1
    dev: int = 0
    child: int = 0            # run in forked child N's mm (0: the main process)

    def line(self) -> str:
        text = self._line()
        return f"{text} @{self.child}" if self.child else text

    def _line(self) -> str:
        k = self.kind
        if k in ("migrate", "tosys"):
            return f"{k} {self.start} {self.npages} {self.dev}"
        if k == "evict":
            return f"evict {self.dev}"
        if k == "read":
            return f"read {self.start} {self.npages} {self.repeat}"
        if k == "write":
            return f"write {self.start} {self.npages} {self.value} {self.repeat}"
        if k == "zap":
            return f"zap {self.start} {self.npages}"
        if k == "fork":
            return f"fork {self.value}"
        return k


@dataclass
class GuestActor:
    name: str
    ops: list[GuestOp] = field(default_factory=list)


@dataclass
class GuestProgram:
    name: str
    kind: str | None          # the finding kind the program is judged for
    scale: int                # guest pages per model page
    vmas: list[tuple[int, int, str, bool, bool]]      # start, npages, prot, shared, thp
    layout: list[tuple[int, int, str, int, int]]      # start, npages, state, value, dev
    actors: list[GuestActor]
    checks: list[tuple[int, int, int]]                # start, npages, value (0: zeros)

    @property
    def has_thp(self) -> bool:
        return any(v[4] for v in self.vmas)

    def spec(self) -> str:
        """The text the guest program reads."""
        out = [f"mfrepro {SPEC_VERSION}", f"name {self.name}", f"kind {self.kind or '-'}",
               f"# one model page = {self.scale} guest page(s)"]
        for s, n, prot, shared, thp in self.vmas:
            out.append(f"vma {s} {n} {prot} {'shared' if shared else 'private'} {int(thp)}")
        for s, n, state, value, dev in self.layout:
            out.append(f"layout {s} {n} {state} {value} {dev}")
        for a in self.actors:
            out.append(f"actor {a.name}")
            out.extend(op.line() for op in a.ops)
        for s, n, v in self.checks:
            out.append(f"check {s} {n} {v}")
        return "\n".join(out) + "\n"


def _name_ok(name: str) -> str:
    # the guest reads whitespace-separated tokens
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in name)[:60] or "actor"


def translate(scenario: dict, kind: str | None = None) -> GuestProgram:
    """The guest program for a (validated) model scenario, or :class:`Untranslatable`."""
    mms = scenario["mms"]
    layout = scenario.get("layout", [])
    devices = [d["name"] for d in scenario.get("devices", [{"name": "dev0", "pages": 16}])]
    if len(devices) > MAX_DEVICES:
        raise Untranslatable(f"device {devices[MAX_DEVICES]!r}: the guest has "
                             f"{MAX_DEVICES} device-private dmirror devices")
    dev_index = {d: i for i, d in enumerate(devices)}
    main_mm = mms[0]["name"]
    forked: dict[str, int] = {}            # forked mm -> the guest's child id
    for a in scenario["actors"]:
        for c in a["program"]:
            if c["op"] == "fork":
                forked.setdefault(c["child"], len(forked) + 1)
    if len(forked) >= MAX_FORKS:
        raise Untranslatable(f"mm {sorted(forked)[-1]!r}: the guest holds at most "
                             f"{MAX_FORKS - 1} forked mms")

    # refusals, by name
    for mm in mms[1:]:
        users = [a["name"] for a in scenario["actors"]
                 if any(c.get("mm") == mm["name"] for c in a["program"])]
        who = f"actor {users[0]!r}" if users else f"mm {mm['name']!r}"
        raise Untranslatable(f"{who}: works on a second mm {mm['name']!r}; the guest runs "
                             f"every actor in one process (one mm)")
    for v in mms[0]["vmas"]:
        if v.get("special"):
            raise Untranslatable(f"mm {main_mm!r}: a 'special' vma (no struct page) has no "
                                 f"user-space equivalent in the guest")
    for j, ent in enumerate(layout):
        if "share" in ent:
            raise Untranslatable(f"layout[{j}]: pages shared between mms by the layout are "
                                 f"not expressible in one guest process")
        if ent.get("state") == "swapped":
            raise Untranslatable(f"layout[{j}]: 'swapped' pages need swap, and the guest "
                                 f"has none")
    for a in scenario["actors"]:
        for q, c in enumerate(a["program"]):
            op = c["op"]
            where = f"actor {a['name']!r}: op {q} {op!r}"
            if op in REFUSED_OPS:
                raise Untranslatable(f"{where}: {REFUSED_OPS[op]}")
            for key, why in REFUSED_KEYS.items():
                if c.get(key):
                    raise Untranslatable(f"{where} with {key!r}: {why}")
            if op == "fork" and c["mm"] in forked:
                raise Untranslatable(f"{where}: a fork of a forked mm ({c['mm']!r}) is not "
                                     f"expressible in the guest")
            if c.get("device") is not None and c["device"] not in dev_index:
                raise Untranslatable(f"{where}: unknown device {c['device']!r}")

    thp = any(e.get("state") == "thp" for e in layout)
    scale = GUEST_HPAGE // HPAGE_NR if thp else 1

    def g(page: int) -> int:
        return page * scale

    vmas = []
    thp_spans = [(e["start"], e["start"] + e["npages"]) for e in layout
                 if e.get("state") == "thp"]
    for v in mms[0]["vmas"]:
        s, n = v["start"], v["npages"]
        has = any(s <= a and b <= s + n for a, b in thp_spans)
        vmas.append((g(s), g(n), v.get("prot", "rw"), bool(v.get("shared")), has))

    glayout = []
    initial: dict[int, int] = {}           # guest page -> value after the layout
    for j, ent in enumerate(layout):
        state = ent.get("state", "present")
        value = ent.get("value", 100 + 10 * j)
        dev = dev_index.get(ent.get("device", devices[0]), 0)
        s, n = g(ent["start"]), g(ent["npages"])
        glayout.append((s, n, state, value, dev))
        for p in range(n):
            initial[s + p] = 0 if state in ("none", "zero") else value + p

    actors = []
    # per guest page: the (actor index, op kind, value) of every op that changes its data
    events: dict[int, list[tuple[int, str, int]]] = {}
    for ai, a in enumerate(scenario["actors"]):
        ga = GuestActor(_name_ok(a["name"]))
        for q, c in enumerate(a["program"]):
            op = c["op"]
            s, n = g(c.get("start", 0)), g(c.get("npages", 0))
            dev = dev_index.get(c.get("device", devices[0]), 0)
            child = forked.get(c.get("mm", ""), 0)   # 0: the main process's mm
            n_before = len(ga.ops)
            if op == "fork":
                ga.ops.append(GuestOp("fork", value=forked[c["child"]]))
                continue
            if op == "migrate":
                ga.ops.append(GuestOp("migrate", s, n, dev=dev))
            elif op == "evict":
                ga.ops.append(GuestOp("evict", dev=dev))
            elif op == "read":
                ga.ops.append(GuestOp("read", s, n, repeat=c.get("repeat", 1)))
            elif op == "write":
                base = c["value"] if "value" in c else (ai + 1) * 10**9 + q * 10**6
                ga.ops.append(GuestOp("write", s, n, value=base, repeat=c.get("repeat", 1)))
                for p in range(n if not child else 0):
                    events.setdefault(s + p, []).append((ai, "write", base + p))
            elif op == "zap":
                ga.ops.append(GuestOp("zap", s, n))
                for p in range(n if not child else 0):
                    events.setdefault(s + p, []).append((ai, "zap", 0))
            elif op == "compact":
                ga.ops.append(GuestOp(op))
            else:                                   # an op this translator does not know
                raise Untranslatable(f"actor {a['name']!r}: op {q} {op!r} has no guest "
                                     f"equivalent")
            if child:
                for gop in ga.ops[n_before:]:
                    gop.child = child
        actors.append(ga)

    checks = _checks(vmas, initial, events)
    return GuestProgram(scenario["name"], kind, scale, vmas, glayout, actors, checks)


def _checks(vmas, initial: dict[int, int], events) -> list[tuple[int, int, int]]:
    """Pages whose final content is known whatever the interleaving: changed by at most one
    actor (whose program order then decides), in a readable vma."""
    want: dict[int, int] = {}
    for s, n, prot, shared, _thp in vmas:
        if prot == "none":
            continue
        for p in range(s, s + n):
            evs = events.get(p, [])
            if len({ai for ai, _, _ in evs}) > 1:
                continue                    # racing writers/zaps: any order is legal
            v = initial.get(p, 0)
            for _, kind, value in evs:
                if kind == "write":
                    v = value
                elif not shared:            # MADV_DONTNEED drops private anon data only
                    v = 0
            want[p] = v
    out: list[tuple[int, int, int]] = []
    for p in sorted(want):
        v = want[p]
        if out:
            s, n, v0 = out[-1]
            if s + n == p and ((v0 == 0 and v == 0) or (v0 and v == v0 + n)):
                out[-1] = (s, n + 1, v0)
                continue
        out.append((p, 1, v))
    return out
