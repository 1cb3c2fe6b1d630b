"""A bug's reproducer, replayed and laid out for the bug page: one lane per actor, the
steps of each actor in its lane, the decisive steps (``fuzzer.explain``) highlighted, and
the audit log of the involved page(s)."""
from __future__ import annotations

from typing import Any

from migfuzz.fuzzer.execute import replay
from migfuzz.fuzzer.explain import describe_scenario, explain
from migfuzz.fuzzer.scheduler.controlled import Diverged

MAX_STEPS_SHOWN = 5000


def fmt_obj(obj: Any) -> str:
    if obj is None:
        return ""
    if isinstance(obj, (tuple, list)):
        return ":".join(str(x) for x in obj)
    return str(obj)


def layout(actors: list[str], trace: list[tuple], marks: set[int]) -> list[dict]:
    """Runs of consecutive steps of one actor: the rows of the swimlane table."""
    runs: list[dict] = []
    for n, (who, site, obj) in enumerate(trace[:MAX_STEPS_SHOWN]):
        if not runs or runs[-1]["actor"] != who:
            runs.append({"actor": who, "start": n, "steps": []})
        runs[-1]["steps"].append({"n": n, "site": site, "obj": fmt_obj(obj),
                                  "mark": n in marks})
    return runs


def explain_bug(inp: dict, signature: str) -> dict[str, Any]:
    """Replay the reproducer exactly and explain the bug's finding in it."""
    try:
        r = replay(inp["scenario"], inp["variant"], inp["schedule"])
    except Diverged as e:
        return {"error": f"the stored schedule no longer fits this engine: {e}"}
    f = next((x for x in r.findings if x.signature == signature), None)
    if f is None:
        return {"error": f"replayed on {r.variant} ({r.steps} steps, trace {r.trace_hash}) "
                         f"but the finding did not show: "
                         + (", ".join(x.title for x in r.findings) or "no findings")}
    ex = explain(r, f)
    marks = set(ex["marks"])
    return {
        "error": None, "variant": r.variant, "steps": r.steps,
        "preemptions": r.preemptions, "trace_hash": r.trace_hash,
        "decisions": sum(n for _, n in inp["schedule"]),
        "actors": r.actors, "runs": layout(r.actors, r.trace, marks),
        "truncated": len(r.trace) > MAX_STEPS_SHOWN,
        "marks": sorted(marks), "audit": ex["audit"], "pages": ex["pages"],
        "finding": {"kind": f.kind, "title": f.title, "step": f.step,
                    "sites": list(f.sites)},
        "other_findings": [x.title for x in r.findings if x.signature != signature],
        "scenario": describe_scenario(inp["scenario"]),
        "lanes": {"actors": r.actors,
                  "steps": [[who, site, n in marks, fmt_obj(obj)] for n, (who, site, obj)
                            in enumerate(r.trace[:MAX_STEPS_SHOWN])]},
        "result": {"trace_hash": r.trace_hash,
                   "findings": [{"kind": x.kind, "title": x.title,
                                 "signature": x.signature} for x in r.findings]},
    }
