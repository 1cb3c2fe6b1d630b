"""Scenario mutation and generation.

Mutants change one thing at a time (as a structure-aware fuzzer's mutators do): the number of
pages, a range and its overlap with another, the number and kind of actors, sharing a layout
with a second address space (in order or reversed, as fork + mremap does), the state of the
pages (system, device-private, swapped, zero, none, or one pmd-mapped THP where the range
is exactly one aligned huge page) and injected faults (a destination
allocation fails, i.e. the driver leaves dst at 0; isolation fails). Every result passes
``fuzzer.scenario.validate``, and has two or more actors that migrate: the bugs migfuzz is for
need concurrent migrations (a lone migration is the selftests' job).

Sizes stay small on purpose: the known bugs need 1-2 pages and 2-3 actors, and every page
and actor costs execution speed (2-6k executions/s at 2-4 actors, 2 pages; overlap-2 with
6 pages runs at ~2.3k/s).
"""
from __future__ import annotations

import copy
import hashlib
import json
import random

from ..scenario import ScenarioError, validate
from ..kernel.state import HPAGE_NR

MAX_PAGES = 8            # per vma in a generated scenario
MAX_ACTORS = 4
STATES = ("present", "present", "device", "swapped", "zero", "none")
OTHER_OPS = ("read", "write", "zap", "evict", "pin", "compact", "reclaim", "gup_fast",
             "hmm_fault", "evict_pfns", "free")


def scenario_key(sc: dict) -> str:
    """A content name for a scenario (stable across processes and PYTHONHASHSEED)."""
    text = json.dumps({k: v for k, v in sc.items() if k not in ("name", "description")},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def migrators(sc: dict) -> list[int]:
    return [i for i, a in enumerate(sc["actors"])
            if any(c["op"] == "migrate" for c in a["program"])]


def _first_vma(sc: dict, mm: str) -> dict | None:
    for m in sc["mms"]:
        if m["name"] == mm:
            return m["vmas"][0]
    return None


def _plain_vmas(sc: dict) -> list[tuple[str, dict]]:
    """(mm, vma) pairs that a range may use (readable, anonymous private)."""
    return [(m["name"], v) for m in sc["mms"] for v in m["vmas"]
            if v.get("prot", "rw") != "none" and not v.get("shared") and not v.get("special")]


def _rand_range(rng: random.Random, vma: dict) -> tuple[int, int]:
    n = rng.randint(1, vma["npages"])
    s = vma["start"] + rng.randint(0, vma["npages"] - n)
    return s, n


def _fresh_name(sc: dict, prefix: str) -> str:
    names = {a["name"] for a in sc["actors"]}
    i = len(sc["actors"])
    while f"{prefix}{i}" in names:
        i += 1
    return f"{prefix}{i}"


def _new_command(sc: dict, rng: random.Random, op: str) -> list[dict] | None:
    vmas = _plain_vmas(sc)
    if not vmas and op == "migrate":      # e.g. only MAP_SHARED: the migration does nothing
        vmas = [(m["name"], v) for m in sc["mms"] for v in m["vmas"]]
    if not vmas:
        return None
    mm, vma = rng.choice(vmas)
    s, n = _rand_range(rng, vma)
    if op == "migrate":
        cmd = {"op": "migrate", "mm": mm, "start": s, "npages": n}
        # one migration in five also selects device-private pages (a device-to-device or
        # mixed migration: what b570f37a2ce4's livelock needs)
        if rng.random() < 0.2:
            cmd["select_device"] = True
        return [cmd]
    if op in ("evict", "evict_pfns"):
        return [{"op": op}]
    if op == "pin":
        return [{"op": "pin", "mm": mm, "start": s, "npages": n}, {"op": "unpin"}]
    cmd = {"op": op, "mm": mm, "start": s, "npages": n}
    if op in ("read", "write") and rng.random() < 0.3:
        cmd["repeat"] = rng.randint(2, 3)
    if op == "hmm_fault" and rng.random() < 0.5:
        cmd["write"] = True
    return [cmd]


# --- the mutators: each edits sc in place and returns a short label, or None if it
# --- does not apply to this scenario

def m_resize(sc, rng):
    """Grow or shrink an mm's first vma; the ranges that used it are clipped."""
    m = rng.choice(sc["mms"])
    v = m["vmas"][0]
    n = max(1, min(MAX_PAGES, v["npages"] + rng.choice((-2, -1, 1, 2))))
    if n == v["npages"] or len(m["vmas"]) > 1:
        return None
    v["npages"] = n
    _clip(sc)
    return "resize"


def m_range(sc, rng):
    """A new range for one command (inside a vma of its mm)."""
    cmds = [c for a in sc["actors"] for c in a["program"] if "npages" in c]
    if not cmds:
        return None
    c = rng.choice(cmds)
    v = _first_vma(sc, c["mm"])
    if v is None:
        return None
    c["start"], c["npages"] = _rand_range(rng, v)
    _clip(sc)
    return "range"


def m_overlap(sc, rng):
    """Make two migrations overlap by a chosen amount (of the same mm)."""
    ms = [c for a in sc["actors"] for c in a["program"] if c["op"] == "migrate"]
    if len(ms) < 2:
        return None
    a, b = rng.sample(ms, 2)
    b["mm"] = a["mm"]
    v = _first_vma(sc, a["mm"])
    if v is None:
        return None
    b["npages"] = rng.randint(1, v["npages"])
    lo = max(v["start"], a["start"] - b["npages"] + 1)
    hi = min(v["start"] + v["npages"] - b["npages"], a["start"] + a["npages"] - 1)
    if lo > hi:
        return None
    b["start"] = rng.randint(lo, hi)
    return "overlap"


def m_add_actor(sc, rng):
    if len(sc["actors"]) >= MAX_ACTORS:
        return None
    op = "migrate" if rng.random() < 0.3 else rng.choice(OTHER_OPS)
    prog = _new_command(sc, rng, op)
    if prog is None:
        return None
    sc["actors"].append({"name": _fresh_name(sc, "mig" if op == "migrate" else op[:4]),
                         "program": prog})
    return "add-" + op


def m_drop_actor(sc, rng):
    if len(sc["actors"]) <= 2:
        return None
    migs = migrators(sc)
    cand = [i for i in range(len(sc["actors"])) if i not in migs or len(migs) > 2]
    if not cand:
        return None
    del sc["actors"][rng.choice(cand)]
    return "drop-actor"


def m_command(sc, rng):
    """Change a non-migrate command's kind (read <-> write, pin, zap, ...)."""
    slots = [(a, q) for a in sc["actors"] for q, c in enumerate(a["program"])
             if c["op"] not in ("migrate", "unpin", "fork")]
    if not slots:
        return None
    a, q = rng.choice(slots)
    op = rng.choice(OTHER_OPS)
    new = _new_command(sc, rng, op)
    if new is None:
        return None
    old = a["program"][q]
    if "mm" in old and "mm" in new[0]:       # keep the range: only the kind changes
        for k in ("mm", "start", "npages"):
            new[0][k] = old[k]
    a["program"][q:q + 1] = new
    if len(a["program"]) > 8:
        return None
    return "command-" + op


def m_share(sc, rng):
    """A second address space that maps the first one's pages (in order or reversed), and a
    migration of it: the cross-mm layouts of fork + mremap."""
    if len(sc["mms"]) >= 2:
        return None
    src = sc["mms"][0]
    v = src["vmas"][0]
    name = "B" if src["name"] != "B" else "C"
    n = v["npages"]
    sc["mms"].append({"name": name, "vmas": [{"start": 0, "npages": n}]})
    sc.setdefault("layout", []).append(
        {"mm": name, "start": 0, "npages": n,
         "share": {"mm": src["name"], "start": v["start"], "reverse": rng.random() < 0.5}})
    ms = [c for a in sc["actors"] for c in a["program"] if c["op"] == "migrate"]
    c = rng.choice(ms)
    c["mm"], c["start"], c["npages"] = name, 0, n
    return "share"


def m_state(sc, rng):
    """Another state for a layout entry: system, device-private, swapped, zero or none."""
    ents = [e for e in sc.get("layout", []) if "share" not in e]
    if not ents:
        return None
    e = rng.choice(ents)
    # a pmd-mapped THP where the entry is exactly one aligned huge page (validate refuses
    # it when an actor the THP model does not cover touches the range: then another
    # mutator is tried)
    fits_thp = e["npages"] == HPAGE_NR and e["start"] % HPAGE_NR == 0
    st = rng.choice(STATES + (("thp",) if fits_thp else ()))
    if st == e.get("state", "present"):
        return None
    e["state"] = st
    e.pop("device", None)
    return "state-" + st


def m_fault(sc, rng):
    """Toggle an injected fault on a migration: fail_alloc (the driver leaves dst at 0) or
    fail_isolate (isolate_lru_page fails)."""
    ms = [c for a in sc["actors"] for c in a["program"] if c["op"] == "migrate"]
    if not ms:
        return None
    c = rng.choice(ms)
    key = rng.choice(("fail_alloc", "fail_isolate"))
    off = rng.randrange(c["npages"])
    cur = list(c.get(key, []))
    if off in cur:
        cur.remove(off)
    else:
        cur = sorted(cur + [off])
    if cur:
        c[key] = cur
    else:
        c.pop(key, None)
    return key


def m_cpu(sc, rng):
    """Put two actors on one CPU (they share a TLB and an LRU batch)."""
    if len(sc["actors"]) < 2:
        return None
    a, b = rng.sample(range(len(sc["actors"])), 2)
    sc["actors"][b]["cpu"] = sc["actors"][a].get("cpu", a)
    return "cpu"


MUTATORS = (m_resize, m_range, m_overlap, m_add_actor, m_drop_actor, m_command, m_share,
            m_state, m_fault, m_cpu)


def _clip(sc: dict) -> None:
    """Pull layout entries and command ranges back inside their vmas after a resize."""
    spans = {m["name"]: m["vmas"][0] for m in sc["mms"]}
    keep = []
    for e in sc.get("layout", []):
        v = spans.get(e["mm"])
        if "share" in e:
            sv = spans.get(e["share"]["mm"])
            n = min(e["npages"], v["npages"], sv["npages"])
            e.update(start=v["start"], npages=n)
            e["share"]["start"] = sv["start"]
        else:
            _fit(e, v)
        keep.append(e)
    if "layout" in sc:
        sc["layout"] = keep
    for a in sc["actors"]:
        for c in a["program"]:
            if "npages" in c and c.get("mm") in spans:
                _fit(c, spans[c["mm"]])
            if c["op"] == "migrate":
                for key in ("fail_alloc", "fail_isolate"):
                    if key in c:
                        c[key] = [x for x in c[key] if x < c["npages"]]
                        if not c[key]:
                            del c[key]


def _fit(d: dict, v: dict) -> None:
    lo, hi = v["start"], v["start"] + v["npages"]
    d["npages"] = max(1, min(d["npages"], v["npages"]))
    d["start"] = max(lo, min(d["start"], hi - d["npages"]))


def ensure_migrators(sc: dict, rng: random.Random) -> None:
    """Add migration actors until two or more actors migrate."""
    while len(migrators(sc)) < 2:
        prog = _new_command(sc, rng, "migrate")
        if prog is None:
            raise ScenarioError("no migratable vma")
        ms = [c for a in sc["actors"] for c in a["program"] if c["op"] == "migrate"]
        if ms:       # overlap the existing migration: that is where they interact
            prog[0].update({k: ms[0][k] for k in ("mm", "start", "npages")})
        sc["actors"].append({"name": _fresh_name(sc, "mig"), "program": prog})


def mutate(sc: dict, rng: random.Random, rounds: int | None = None) -> tuple[dict, list[str]]:
    """A valid mutant of ``sc`` and the mutations applied (at least one, up to 3).
    Tries at most 20 mutators; returns the parent unchanged (and []) if none applies."""
    out = copy.deepcopy(sc)
    for a in out["actors"]:          # a selftest's expected results do not hold for a mutant
        for c in a["program"]:
            c.pop("expect", None)
    ensure_migrators(out, rng)
    rounds = rounds or rng.choice((1, 1, 2, 3))
    done: list[str] = []
    for _ in range(20):
        if len(done) >= rounds:
            break
        cand = copy.deepcopy(out)
        label = rng.choice(MUTATORS)(cand, rng)
        if label is None:
            continue
        try:
            validate(cand)
        except ScenarioError:
            continue
        out = cand
        done.append(label)
    out["name"] = "gen-" + scenario_key(out)
    out["kind"] = "generated"
    out["description"] = (f"generated from {sc['name']}: " + ", ".join(done)) if done else \
        f"{sc['name']} with two migrations"
    out.pop("max_steps", None)
    validate(out)
    return out, done


def generate(rng: random.Random) -> dict:
    """A fresh small scenario: one mm of 1-4 pages (maybe shared into a second one), two
    overlapping migrations, and zero to two other actors."""
    n = rng.randint(1, 4)
    states = STATES[:4] + (("thp",) if n == HPAGE_NR else ())
    sc: dict = {
        "name": "gen", "kind": "generated",
        "mms": [{"name": "A", "vmas": [{"start": 0, "npages": n}]}],
        "layout": [{"mm": "A", "start": 0, "npages": n, "state": rng.choice(states)}],
        "actors": [],
    }
    ensure_migrators(sc, rng)
    for _ in range(rng.randint(0, 2)):
        m_add_actor(sc, rng)
    if rng.random() < 0.3:
        m_share(sc, rng)
    if sc["layout"][0]["state"] == "thp":
        try:
            validate(sc)
        except ScenarioError:        # an actor the THP model refuses: plain pages instead
            sc["layout"][0]["state"] = "present"
    out, done = mutate(sc, rng, rounds=1)
    out["description"] = "generated: " + ", ".join(done or ["two migrations"])
    return out
