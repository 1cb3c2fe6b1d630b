"""Scenarios as data: the memory layout, devices and actor programs of one execution.

A scenario is a JSON-able dict. ``validate`` checks it strictly (one clear line per error);
``build`` turns it into a Kernel and actors for the scheduler. Built-in scenarios live in
``corpus/scenarios``; generated ones obey the same schema.
"""
from __future__ import annotations

from .kernel import (compaction, driver, fault, fork, gup, hmm, lazyfree, migrate_device_pfn,
                     reclaim, zap)
from .findings import Finding
from .scheduler.controlled import Actor
from .kernel.state import DEVICE, HPAGE_NR, PRESENT, SWAP, ZERO, Kernel, MM, Vma
from .kernel.variants import SWITCH_NAMES, Switches

MAX_PAGES = 256          # per vma: bounds the work of one execution
MAX_ACTORS = 16
MAX_PROGRAM = 64
DEFAULT_MAX_STEPS = 20000
MAX_MAX_STEPS = 10_000_000   # the largest 'max_steps' a scenario may ask for
MAX_NAME = 256           # names (scenario, mm, actor, device, kind): one printable line
MAX_DESCRIPTION = 4000

OPS = {
    # op: (required keys, optional keys)
    "migrate": ({"mm", "start", "npages"},
                {"device", "fail_alloc", "fail_isolate", "bad_args", "expect",
                 "select_device"}),
    "evict": (set(), {"device"}),
    # migrate_device_range over every pfn of the device (dmirror_device_evict_chunk)
    "evict_pfns": (set(), {"device"}),
    # hmm_range_fault over a range (dmirror_range_fault); "device": the caller's
    # dev_private_owner, whose device-private pages are not faulted
    "hmm_fault": ({"mm", "start", "npages"}, {"write", "device"}),
    "read": ({"mm", "start", "npages"}, {"repeat"}),
    "write": ({"mm", "start", "npages"}, {"value", "repeat"}),
    "zap": ({"mm", "start", "npages"}, set()),
    # madvise(MADV_FREE): lazily freed, discarded by reclaim unless written again
    "free": ({"mm", "start", "npages"}, set()),
    "fork": ({"mm", "child"}, set()),
    "pin": ({"mm", "start", "npages"}, {"write"}),
    "unpin": (set(), set()),
    "gup_fast": ({"mm", "start", "npages"}, set()),
    "compact": ({"mm", "start", "npages"}, set()),
    "reclaim": ({"mm", "start", "npages"}, set()),
}
STATES = ("none", "zero", "present", "device", "swapped", "thp", "thp-pte")
# "thp-pte": a THP whose pmd was split but not the folio, mapped by one pte per subpage
# (what mainline's collect splits itself: migrate_vma_split_folio, H2). Only read, write,
# migrate and evict may touch it (a zap would free its pages one by one: not modelled).
THP_STATES = ("thp", "thp-pte")
# what may touch a THP range (layout state "thp"); everything else is refused by validate
THP_OPS = ("read", "write", "migrate", "zap", "evict")


class ScenarioError(ValueError):
    """A scenario that does not fit the schema."""


def _int(d: dict, key: str, where: str, lo: int = 0, hi: int = 1 << 20) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ScenarioError(f"{where}: {key!r} must be an integer in [{lo}, {hi}]")
    return v


def _unicode(v, key: str, where: str) -> None:
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ScenarioError(f"{where}: {key!r} is not valid Unicode text (it holds a "
                                f"lone surrogate)") from None


def _name(d: dict, key: str, where: str) -> str:
    """A name: a printable string (no control characters, no lone surrogates: it is printed
    to terminals and stored as UTF-8) of 1 to MAX_NAME characters."""
    v = d.get(key)
    _unicode(v, key, where)
    if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME or not v.isprintable():
        raise ScenarioError(f"{where}: {key!r} must be a printable string of 1 to "
                            f"{MAX_NAME} characters")
    return v


def _text(d: dict, key: str, where: str, limit: int) -> None:
    """Free text (a description): printable apart from newlines and tabs."""
    v = d.get(key, "")
    _unicode(v, key, where)
    if not isinstance(v, str) or len(v) > limit or not \
            v.replace("\n", " ").replace("\t", " ").isprintable():
        raise ScenarioError(f"{where}: {key!r} must be printable text of at most {limit} "
                            f"characters")


def _keys(d, required: set, optional: set, where: str) -> None:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: expected an object")
    missing = required - d.keys()
    if missing:
        raise ScenarioError(f"{where}: missing {', '.join(sorted(missing))}")
    extra = d.keys() - required - optional
    if extra:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")


def validate(sc: dict) -> dict:
    """Check a scenario against the schema; return it unchanged or raise ScenarioError."""
    _keys(sc, {"name", "mms", "actors"},
          {"description", "kind", "devices", "layout", "max_steps"}, "scenario")
    _name(sc, "name", "scenario")
    if "kind" in sc:
        _name(sc, "kind", "scenario")
    _text(sc, "description", "scenario", MAX_DESCRIPTION)
    devices = sc.get("devices", [{"name": "dev0", "pages": 16}])
    if not isinstance(devices, list) or not devices:
        raise ScenarioError("scenario: 'devices' must be a non-empty list")
    devnames = []
    for j, d in enumerate(devices):
        _keys(d, {"name", "pages"}, set(), f"devices[{j}]")
        _name(d, "name", f"devices[{j}]")
        _int(d, "pages", f"devices[{j}]", 1, MAX_PAGES)
        devnames.append(d["name"])
    if not isinstance(sc["mms"], list) or not sc["mms"]:
        raise ScenarioError("scenario: 'mms' must be a non-empty list")
    vmas: dict[str, list[tuple[int, int]]] = {}
    for j, mm in enumerate(sc["mms"]):
        _keys(mm, {"name", "vmas"}, set(), f"mms[{j}]")
        if _name(mm, "name", f"mms[{j}]") in vmas:
            raise ScenarioError(f"mms[{j}]: 'name' must be unique")
        if not isinstance(mm["vmas"], list) or not mm["vmas"]:
            raise ScenarioError(f"mms[{j}]: 'vmas' must be a non-empty list")
        spans = []
        for q, v in enumerate(mm["vmas"]):
            w = f"mms[{j}].vmas[{q}]"
            _keys(v, {"start", "npages"}, {"prot", "shared", "special"}, w)
            s, n = _int(v, "start", w), _int(v, "npages", w, 1, MAX_PAGES)
            if v.get("prot", "rw") not in ("rw", "r", "none"):
                raise ScenarioError(f"{w}: 'prot' must be rw, r or none")
            for key in ("shared", "special"):
                if not isinstance(v.get(key, False), bool):
                    raise ScenarioError(f"{w}: {key!r} must be true or false")
            if any(s < e2 and s2 < s + n for s2, e2 in spans):
                raise ScenarioError(f"{w}: overlaps another vma")
            spans.append((s, s + n))
        vmas[mm["name"]] = spans

    def in_vmas(mm: str, start: int, n: int, where: str) -> None:
        if not isinstance(mm, str) or mm not in vmas:
            raise ScenarioError(f"{where}: unknown mm {mm!r}")
        if not any(s <= start and start + n <= e for s, e in vmas[mm]):
            raise ScenarioError(f"{where}: range {start}+{n} is not inside one vma of {mm}")

    if not isinstance(sc.get("layout", []), list):
        raise ScenarioError("scenario: 'layout' must be a list")
    for j, ent in enumerate(sc.get("layout", [])):
        w = f"layout[{j}]"
        _keys(ent, {"mm", "start", "npages"}, {"state", "value", "device", "share"}, w)
        start, n = _int(ent, "start", w), _int(ent, "npages", w, 1, MAX_PAGES)
        in_vmas(ent["mm"], start, n, w)
        if "share" in ent:
            sh = ent["share"]
            _keys(sh, {"mm", "start"}, {"reverse"}, w + ".share")
            in_vmas(sh["mm"], _int(sh, "start", w + ".share"), n, w + ".share")
        else:
            if ent.get("state", "present") not in STATES:
                raise ScenarioError(f"{w}: 'state' must be one of {', '.join(STATES)}")
            if ent.get("state") == "device" and ent.get("device", devnames[0]) not in devnames:
                raise ScenarioError(f"{w}: unknown device {ent.get('device')!r}")
            if "value" in ent:
                _int(ent, "value", w, 0, 1 << 30)
    thp = _check_thp_layout(sc, vmas)
    # one pte per address: a second entry for an address overwrote its pte but kept the
    # first page's mapcount (the end-state mapcount check found it in generated scenarios:
    # a page mapped by 3 ptes with mapcount 4)
    laid: dict[tuple, int] = {}          # (mm, vpn) -> the layout entry that maps it
    for j, ent in enumerate(sc.get("layout", [])):
        for vpn in range(ent["start"], ent["start"] + ent["npages"]):
            first = laid.setdefault((ent["mm"], vpn), j)
            if first != j:
                raise ScenarioError(f"layout[{j}]: address {ent['mm']}:{vpn} is already "
                                    f"laid out by layout[{first}]")
    if not isinstance(sc["actors"], list) or not 1 <= len(sc["actors"]) <= MAX_ACTORS:
        raise ScenarioError(f"scenario: 'actors' must be a list of 1 to {MAX_ACTORS} actors")
    names = set()
    forked: set[str] = set()
    for j, a in enumerate(sc["actors"]):
        w = f"actors[{j}]"
        _keys(a, {"name", "program"}, {"cpu"}, w)
        if _name(a, "name", w) in names:
            raise ScenarioError(f"{w}: 'name' must be unique")
        names.add(a["name"])
        if "cpu" in a:
            _int(a, "cpu", w, 0, MAX_ACTORS - 1)
        prog = a["program"]
        if not isinstance(prog, list) or not 1 <= len(prog) <= MAX_PROGRAM:
            raise ScenarioError(f"{w}: 'program' must be a list of 1 to {MAX_PROGRAM} commands")
        for q, cmd in enumerate(prog):
            cw = f"{w}.program[{q}]"
            if not isinstance(cmd, dict) or not isinstance(cmd.get("op"), str) \
                    or cmd["op"] not in OPS:
                raise ScenarioError(f"{cw}: 'op' must be one of {', '.join(OPS)}")
            req, opt = OPS[cmd["op"]]
            _keys(cmd, req | {"op"}, opt, cw)
            if "mm" in cmd and not isinstance(cmd["mm"], str):
                raise ScenarioError(f"{cw}: 'mm' must be an mm name")
            if cmd["op"] == "fork":
                if _name(cmd, "child", cw) in vmas:
                    raise ScenarioError(f"{cw}: 'child' must be a new mm name")
                vmas[cmd["child"]] = vmas.get(cmd["mm"], [])
                forked.add(cmd["child"])
            if "npages" in req:
                start, n = _int(cmd, "start", cw), _int(cmd, "npages", cw, 1, MAX_PAGES)
                if cmd["op"] != "migrate":
                    in_vmas(cmd["mm"], start, n, cw)
                elif cmd["mm"] not in vmas:
                    raise ScenarioError(f"{cw}: unknown mm {cmd['mm']!r}")
            if thp.get(cmd.get("mm")):
                _check_thp_command(cmd, thp[cmd["mm"]], cw)
                if cmd["op"] == "zap" and any(
                        e.get("state") == "thp-pte" and e["mm"] == cmd["mm"]
                        and cmd["start"] < e["start"] + HPAGE_NR
                        and e["start"] < cmd["start"] + cmd["npages"]
                        for e in sc.get("layout", [])):
                    raise ScenarioError(f"{cw}: a 'thp-pte' range cannot be zapped "
                                        f"(not modelled)")
            if "device" in cmd and cmd["device"] not in devnames:
                raise ScenarioError(f"{cw}: unknown device {cmd['device']!r}")
            for key in ("fail_alloc", "fail_isolate"):
                if key in cmd and (not isinstance(cmd[key], list) or not all(
                        isinstance(x, int) and not isinstance(x, bool) and x >= 0
                        for x in cmd[key])):
                    raise ScenarioError(f"{cw}: {key!r} must be a list of page offsets")
            for key in ("select_device", "write"):
                if key in cmd and not isinstance(cmd[key], bool):
                    raise ScenarioError(f"{cw}: {key!r} must be true or false")
            if "repeat" in cmd:
                _int(cmd, "repeat", cw, 1, 64)
            if "value" in cmd:
                _int(cmd, "value", cw, 1, 1 << 30)
            if "expect" in cmd:
                _keys(cmd["expect"], set(), {"ret", "migrated", "unless"}, cw + ".expect")
                unless = cmd["expect"].get("unless", [])
                if not (isinstance(unless, list) and all(u in SWITCH_NAMES for u in unless)):
                    raise ScenarioError(f"{cw}.expect: 'unless' must be a list of switch "
                                        f"names (see 'migfuzz variants')")
    if "max_steps" in sc:
        _int(sc, "max_steps", "scenario", 100, MAX_MAX_STEPS)
    return sc


def _check_thp_layout(sc: dict, vmas: dict) -> dict[str, list[tuple[int, int]]]:
    """THP layout entries: exactly one pmd (HPAGE_NR pages, pmd-aligned) in a private
    anonymous vma, overlapping no other layout entry. Returns mm -> THP spans."""
    thp: dict[str, list[tuple[int, int]]] = {}
    layout = sc.get("layout", [])
    for j, ent in enumerate(layout):
        if "share" in ent or ent.get("state") not in THP_STATES:
            continue
        w, start = f"layout[{j}]", ent["start"]
        if ent["npages"] != HPAGE_NR:
            raise ScenarioError(f"{w}: a 'thp' range must be exactly {HPAGE_NR} pages "
                                f"(one pmd), not {ent['npages']}")
        if start % HPAGE_NR:
            raise ScenarioError(f"{w}: a 'thp' range must start at a multiple of "
                                f"{HPAGE_NR} (pmd-aligned), not {start}")
        vma = next(v for v in next(m for m in sc["mms"] if m["name"] == ent["mm"])["vmas"]
                   if v["start"] <= start < v["start"] + v["npages"])
        if vma.get("shared") or vma.get("special"):
            raise ScenarioError(f"{w}: THP is modelled for private anonymous vmas only")
        thp.setdefault(ent["mm"], []).append((start, start + HPAGE_NR))
    if thp:
        for j, ent in enumerate(layout):
            spans = [(ent["mm"], ent["start"])]
            if "share" in ent:
                spans.append((ent["share"]["mm"], ent["share"]["start"]))
            elif ent.get("state") in THP_STATES:
                spans = []
            for mm, s0 in spans:
                for a, b in thp.get(mm, ()):
                    if s0 < b and a < s0 + ent["npages"]:
                        raise ScenarioError(f"layout[{j}]: overlaps the THP range "
                                            f"{mm}:{a}+{HPAGE_NR}")
    for j, ent in enumerate(layout):    # two THPs on one pmd
        if ent.get("state") in THP_STATES and "share" not in ent and \
                thp[ent["mm"]].count((ent["start"], ent["start"] + HPAGE_NR)) > 1:
            raise ScenarioError(f"layout[{j}]: overlaps the THP range "
                                f"{ent['mm']}:{ent['start']}+{HPAGE_NR}")
    return thp


def _check_thp_command(cmd: dict, spans: list[tuple[int, int]], where: str) -> None:
    """Commands on an mm with THP ranges: only the ones the model follows for THP."""
    op = cmd["op"]
    if op == "fork" or (op not in THP_OPS and "npages" in cmd and any(
            cmd["start"] < b and a < cmd["start"] + cmd["npages"] for a, b in spans)):
        raise ScenarioError(f"{where}: THP ranges are modelled for read, write, migrate "
                            f"and zap only, not {op}")
    if op == "zap":
        s, e = cmd["start"], cmd["start"] + cmd["npages"]
        for a, b in spans:
            if s < b and a < e and not (s <= a and b <= e):
                raise ScenarioError(f"{where}: zap must cover the THP range {a}+{HPAGE_NR} "
                                    f"whole (a partial zap splits the pmd: not modelled)")


class Built:
    """A scenario made concrete: the kernel, the actors, and per-command results."""

    def __init__(self, kernel: Kernel, actors: list[Actor], max_steps: int):
        self.kernel = kernel
        self.actors = actors
        self.max_steps = max_steps
        self.requested = 0           # pages asked to migrate by migrate commands
        self.migrated = 0            # pages that did migrate


def build(sc: dict, sw: Switches) -> Built:
    ncpus = max([a.get("cpu", i) for i, a in enumerate(sc["actors"])] + [0]) + 1
    k = Kernel(sw, ncpus)
    for d in sc.get("devices", [{"name": "dev0", "pages": 16}]):
        k.add_device(d["name"], d["pages"])
    default_dev = next(iter(k.devices))
    for j, spec in enumerate(sc["mms"]):
        mm = MM(spec["name"])
        for v in spec["vmas"]:
            mm.vmas.append(Vma(v["start"], v["start"] + v["npages"], v.get("prot", "rw"),
                               v.get("shared", False), v.get("special", False),
                               shm=f"{spec['name']}@{v['start']}"))
        k.mms[mm.name] = mm
    if not isinstance(sc.get("layout", []), list):
        raise ScenarioError("scenario: 'layout' must be a list")
    for j, ent in enumerate(sc.get("layout", [])):
        _lay_out(k, ent, j, default_dev)
    k.lru_add_drain_all()
    built = Built(k, [], sc.get("max_steps", DEFAULT_MAX_STEPS))
    for i, a in enumerate(sc["actors"]):
        actor = Actor(i, a["name"], a.get("cpu", i), k)
        actor.gen = _program(k, actor, a["program"], built, default_dev)
        built.actors.append(actor)
    # lru_add_drain_all's per-CPU work asks which actors run on a CPU (kernel/lru.py)
    k.actors = tuple(built.actors)
    return built


def _lay_out(k: Kernel, ent: dict, j: int, default_dev: str) -> None:
    mm = k.mms[ent["mm"]]
    start, n = ent["start"], ent["npages"]
    if "share" in ent:
        src = k.mms[ent["share"]["mm"]]
        s0 = ent["share"]["start"]
        rev = ent["share"].get("reverse", False)
        for off in range(n):
            svpn = s0 + (n - 1 - off if rev else off)
            pte = src.pte(svpn)
            key, skey = k.mem_key(mm, start + off), k.mem_key(src, svpn)
            if pte[0] in (PRESENT, DEVICE):
                page = pte[1]
                k.get(page, "map", "layout:share")
                k.map_inc(page, "layout:share")
                ro = (pte[0], page, False, pte[3])
                k.set_pte(src, svpn, ro)
                k.set_pte(mm, start + off, ro)
            elif pte[0] == SWAP:
                k.swap[pte[1]][1] += 1
                k.set_pte(mm, start + off, pte)
            else:
                k.set_pte(mm, start + off, pte)
            if skey in k.expect:
                k.expect[key] = k.expect[skey]
        return
    state = ent.get("state", "present")
    if state in THP_STATES:
        _lay_out_thp(k, mm, ent, j, ptes=state == "thp-pte")
        return
    for off in range(n):
        vpn = start + off
        vma = mm.vma_at(vpn)
        value = ent.get("value", 100 + 10 * j) + off
        key = k.mem_key(mm, vpn)
        ident = "init:%s:%d" % (mm.name, vpn)
        if state == "none":
            continue
        if state == "zero":
            k.set_pte(mm, vpn, (ZERO, None, False, False))
            k.expect[key] = frozenset((0,))
            continue
        k.expect[key] = frozenset((value,))
        k.origin[key] = "initial"
        if state == "swapped":
            slot = k.swap_alloc(value)
            k.swap[slot][1] = 1
            k.set_pte(mm, vpn, (SWAP, slot, False, False))
        elif state == "device":
            page = k.alloc_device_page(ent.get("device", default_dev), "layout:device")
            if page is None:
                raise ScenarioError(f"layout[{j}]: device {ent.get('device', default_dev)} "
                                    f"has too few pages")
            page.data, page.ident = value, ident
            k.get(page, "map", "layout:device")
            k.set_mapcount(page, 1, "layout:device")
            k.set_pte(mm, vpn, (DEVICE, page, vma.writable, False))
            k.unlock(page, "layout:device")
            k.put(page, "driver", "layout:device")
        elif vma.shared:
            page = k.alloc_page("layout:shmem", owner="pagecache")
            page.mapping = "shmem"
            page.data, page.ident = value, ident
            k.shm[(vma.shm, vpn - vma.start)] = page
            k.get(page, "map", "layout:present")
            k.set_mapcount(page, 1, "layout:present")
            page.lru = True
            k.set_pte(mm, vpn, (PRESENT, page, vma.writable, False))
        else:
            page = k.alloc_page("layout:present", owner="map")
            page.data, page.ident = value, ident
            k.set_mapcount(page, 1, "layout:present")
            page.lru = True
            k.set_pte(mm, vpn, (PRESENT, page, vma.writable, vma.writable))


def _lay_out_thp(k: Kernel, mm: MM, ent: dict, j: int, ptes: bool = False) -> None:
    """An anonymous THP mapped by one huge pmd: the head holds the mapping's reference
    and the folio's mapcount, each subpage its own data. With ``ptes`` ("thp-pte") one
    pte per subpage instead, each subpage holding its pte's reference and mapcount
    (kernel/huge_memory.py: _split_pte_mapped)."""
    start = ent["start"]
    vma = mm.vma_at(start)
    head = k.alloc_thp("layout:thp")
    k.set_mapcount(head, 1, "layout:thp")
    head.lru = True
    for off in range(HPAGE_NR):
        vpn = start + off
        page = head.subpage(off)
        value = ent.get("value", 100 + 10 * j) + off
        page.data, page.ident = value, "init:%s:%d" % (mm.name, vpn)
        key = k.mem_key(mm, vpn)
        k.expect[key] = frozenset((value,))
        k.origin[key] = "initial"
        if ptes:
            if off:
                k.get(page, "map", "layout:thp_pte")
                k.set_mapcount(page, 1, "layout:thp_pte")
            k.set_pte(mm, vpn, (PRESENT, page, vma.writable, vma.writable))
    if not ptes:
        mm.pmds[start] = (PRESENT, head, vma.writable, vma.writable)


def _program(k: Kernel, actor: Actor, cmds: list[dict], built: Built, default_dev: str):
    starts = k.command_starts.setdefault(actor.name, [])
    for q, cmd in enumerate(cmds):
        starts.append(k.step)
        op = cmd["op"]
        mm = k.mms.get(cmd.get("mm", ""))
        start = cmd.get("start", 0)
        end = start + cmd.get("npages", 0)
        if "mm" in cmd and mm is None:
            # a child mm that another actor's fork has not created yet
            yield ("cmd:no_mm", None)
            k.branch("cmd:no_mm")
            continue
        if op in ("read", "write"):
            for _ in range(cmd.get("repeat", 1)):
                for vpn in range(start, end):
                    value = (cmd["value"] + vpn - start) if "value" in cmd else actor.next_value()
                    ok = yield from fault.cpu_access(k, actor, mm, vpn, op == "write", value)
                    if not ok:
                        break
        elif op == "migrate":
            ret, migrated = yield from driver.migrate_to_device(
                k, mm, start, end, cmd.get("device", default_dev), cmd.get("fail_alloc", ()),
                cmd.get("fail_isolate", ()), cmd.get("bad_args", False),
                **({"select_device": True} if cmd.get("select_device") else {}))
            built.requested += end - start
            built.migrated += migrated
            exp = cmd.get("expect")
            # a selftest's expectation holds on the kernels the selftest was written for:
            # "unless" names the switches (kernel changes) under which it no longer does
            # (dirty-page's swapcache pages migrate once folio_free_swap frees their slot)
            if exp is not None and not any(getattr(k.sw, u) for u in exp.get("unless", ())):
                got = {"ret": ret, "migrated": migrated}
                for key, want in exp.items():
                    if key == "unless":
                        continue
                    if got[key] != want:
                        k.report("UNEXPECTED_RESULT",
                                 f"UNEXPECTED_RESULT: migrate {key} was {got[key]!r}, "
                                 f"the selftest expects {want!r}", ("migrate", key),
                                 actor=actor.name, command=q)
        elif op == "evict":
            yield from driver.evict_device(k, cmd.get("device", default_dev))
        elif op == "evict_pfns":
            yield from migrate_device_pfn.evict_chunk(k, cmd.get("device", default_dev))
        elif op == "hmm_fault":
            yield from hmm.hmm_range_fault(k, actor, mm, start, end, cmd.get("write", False),
                                           cmd.get("device"))
        elif op == "zap":
            yield from zap.zap(k, mm, start, end)
        elif op == "free":
            yield from lazyfree.madvise_free(k, mm, start, end)
        elif op == "fork":
            yield from fork.fork(k, mm, cmd["child"])
        elif op == "pin":
            for vpn in range(start, end):
                yield from gup.gup_pin(k, actor, mm, vpn, cmd.get("write", False))
        elif op == "unpin":
            yield from gup.gup_unpin(k, actor)
        elif op == "gup_fast":
            for vpn in range(start, end):
                yield from gup.gup_fast(k, mm, vpn)
        elif op == "compact":
            yield from compaction.compact(k, mm, start, end)
        elif op == "reclaim":
            yield from reclaim.reclaim(k, mm, start, end)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def summary(sc: dict) -> str:
    ops = [c["op"] for a in sc["actors"] for c in a["program"]]
    return (f"{_count(len(sc['actors']), 'actor')}, {_count(len(sc['mms']), 'mm')}, "
            f"{_count(sum(v['npages'] for m in sc['mms'] for v in m['vmas']), 'page')}; "
            + ", ".join(sorted(set(ops))))


__all__ = ["ScenarioError", "validate", "build", "Built", "Finding", "summary"]
