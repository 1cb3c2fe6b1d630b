"""Explain a finding: the pages involved, their audit log (every lock, unlock and refcount
change with the site that made it, page_owner/page_ref style) and the steps of the
interleaving that matter, for ``migfuzz show`` and the dashboard's swimlane."""
from __future__ import annotations

from .execute import Result
from .findings import Finding

AUDIT_FIELDS = ("step", "actor", "site", "pfn", "op", "refcount", "mapcount")


def involved_pfns(f: Finding) -> list[int]:
    if "pfns" in f.detail:
        return list(f.detail["pfns"])
    return [f.detail["pfn"]] if "pfn" in f.detail else []


def explain(r: Result, f: Finding) -> dict:
    """Audit rows of the involved pages and the marked (decisive) steps of the trace."""
    pfns = involved_pfns(f)
    k = r.kernel
    audit = [dict(zip(AUDIT_FIELDS, row)) for row in k.audit if row[3] in pfns]
    objs = {("page", p) for p in pfns}
    if "address" in f.detail:
        objs.add(tuple(f.detail["address"]))
    marks = {row["step"] for row in audit if row["actor"] != "init"}
    marks |= {i for i, (_, _, obj) in enumerate(r.trace) if obj in objs}
    if f.step:
        marks.add(f.step)
    pages = [{"pfn": p, "ident": k.pages[p].ident, "device": k.pages[p].device,
              "free": k.pages[p].free, "refcount": k.pages[p].refcount,
              "mapcount": k.pages[p].mapcount} for p in pfns if p in k.pages]
    return {"pages": pages, "audit": audit, "marks": sorted(m for m in marks if m < r.steps)}


def describe_command(cmd: dict) -> str:
    """One command of an actor's program in words: 'migrate A[0,4) to dev0'."""
    op = cmd["op"]
    where = (f" {cmd['mm']}[{cmd['start']},{cmd['start'] + cmd['npages']})"
             if "npages" in cmd else "")
    extra = []
    if op == "migrate":
        extra.append(f"to {cmd.get('device', 'the device')}")
        if cmd.get("select_device"):
            extra.append("(device-private pages too)")
        for key in ("fail_alloc", "fail_isolate"):
            if cmd.get(key):
                extra.append(f"{key.replace('_', ' ')} at {cmd[key]}")
    if op == "fork":
        extra.append(f"{cmd['mm']} -> {cmd['child']}")
    if cmd.get("repeat", 1) > 1:
        extra.append(f"x{cmd['repeat']}")
    if op in ("evict", "evict_pfns"):
        extra.append(cmd.get("device", "the device"))
        if op == "evict_pfns":
            extra.append("by pfn")
    if op in ("hmm_fault", "pin") and cmd.get("write"):
        extra.append("for write")
    if op == "free":
        extra.append("(MADV_FREE)")
    return " ".join([op + where] + extra)


def describe_scenario(sc: dict) -> list[str]:
    pages = sum(v["npages"] for m in sc["mms"] for v in m["vmas"])
    lines = [f"scenario {sc['name']}: {len(sc['mms'])} address space(s), {pages} page(s)"]
    for a in sc["actors"]:
        lines.append(f"  {a['name']}: " + "; ".join(describe_command(c) for c in a["program"]))
    return lines
