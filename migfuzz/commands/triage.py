"""Triage commands on a reproducer: show, bisect, export.

A reference is an input file (written by ``run --save`` or ``fuzz``) or, with a store, a
bug or crash id (see ``migfuzz.refs``).
"""
from __future__ import annotations

import json
import sys

from migfuzz.fuzzer.bisect import bisect
from migfuzz.fuzzer.execute import replay
from migfuzz.fuzzer.explain import describe_scenario, explain
from migfuzz.fuzzer.kernel.variants import VARIANTS

from ..cli import EXIT_OK, UsageError
from ..refs import add_ref_arguments, resolve
from ..render import interleaving_block, table


def register(sub) -> None:
    p = sub.add_parser(
        "show", help="explain a finding: reproducer, interleaving, page audit log",
        description="Replay a reproducer and explain its finding: title, signature, "
        "alternative titles, the reproducer in words, the interleaving (one column per "
        "actor, decisive steps marked with *), and the audit log of the involved page(s).",
        epilog="Exit status: 0 shown, 2 unknown reference or bad input.")
    add_ref_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "bisect", help="which variants and which switch make a bug appear or disappear",
        description="Replay the reproducer on every variant (leniently; searching briefly "
        "when the schedule no longer fits) and with each behaviour switch flipped, and "
        "name the switch that fixes (or causes) the bug.",
        epilog="Exit status: 0 done, 2 unknown reference or bad input.")
    add_ref_arguments(p)
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated variants to try (default: all presets)")
    p.add_argument("--budget", type=int, default=400,
                   help="random executions to search per variant when replay misses it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_bisect)

    p = sub.add_parser(
        "export", help="write a standalone pytest file (or the input JSON) for a bug",
        description="Write a pytest file that replays the reproducer against the installed "
        "migfuzz and fails while the bug is present (point it at another variant with "
        "MIGFUZZ_VARIANT=...), or with --format json the input itself.",
        epilog="Exit status: 0 written, 2 unknown reference or bad input.")
    add_ref_arguments(p)
    p.add_argument("-o", "--output", required=True,
                   help="file to write (its directory must exist)")
    p.add_argument("--format", choices=("pytest", "json"), default="pytest")
    p.add_argument("--json", action="store_true",
                   help="say what was written as JSON (the file itself is --format)")
    p.set_defaults(func=cmd_export)


def _primary(inp: dict, signature: str | None):
    r = replay(inp["scenario"], inp["variant"], inp["schedule"])
    if not r.findings:
        raise UsageError("the reproducer no longer finds anything on "
                         f"{r.variant} (trace {r.trace_hash})")
    f = next((x for x in r.findings if x.signature == signature), r.findings[0])
    return r, f


def cmd_show(args) -> int:
    ref = resolve(args)
    r, f = _primary(ref.input, ref.signature)
    ex = explain(r, f)
    alts = [x.title for x in r.findings if x.signature != f.signature]
    alts += [t for t in ref.alt_titles if t != f.title and t not in alts]
    if args.json:
        json.dump({"ref": ref.label, "title": f.title, "kind": f.kind,
                   "signature": f.signature, "alternative_titles": alts,
                   "variant": r.variant, "scenario": ref.input["scenario"]["name"],
                   "steps": r.steps, "preemptions": r.preemptions,
                   "trace_hash": r.trace_hash,
                   "trace": [[r.actors[i], s] for i, s, _ in r.trace],
                   "marks": ex["marks"], "pages": ex["pages"], "audit": ex["audit"],
                   "detail": {k: v for k, v in f.detail.items() if k != "audit"},
                   "kernel_verdicts": ref.verdicts},
                  sys.stdout, indent=1, default=str)
        print()
        return EXIT_OK
    print(f.title)
    print(f"  signature: {f.signature}")
    for t in alts:
        print(f"  also seen as: {t}")
    print()
    print("reproducer:")
    for line in describe_scenario(ref.input["scenario"]):
        print("  " + line)
    decisions = sum(n for _, n in ref.input["schedule"])
    print(f"  on {r.variant}: {r.steps} steps, {decisions} scheduling decisions, "
          f"{r.preemptions} preemptions, trace {r.trace_hash}")
    print()
    print(interleaving_block(r.actors, r.trace, ex["marks"]))
    print()
    for page in ex["pages"]:
        state = "free" if page["free"] else f"refcount {page['refcount']}, mapcount {page['mapcount']}"
        print(f"page {page['pfn']} ({page['ident'] or 'anonymous'}"
              f"{', device ' + page['device'] if page['device'] else ''}): now {state}")
    if ex["audit"]:
        table([(a["step"], a["actor"], a["site"], a["pfn"], a["op"], a["refcount"],
                a["mapcount"]) for a in ex["audit"]],
              ["step", "actor", "site", "pfn", "op", "ref", "map"])
    print(f"\noracle, at step {f.step}: {f.title}")
    if ref.verdicts:
        from migfuzz.db.verdicts import render_verdicts
        print("\n" + render_verdicts(ref.verdicts))
    return EXIT_OK


def cmd_bisect(args) -> int:
    ref = resolve(args)
    r, f = _primary(ref.input, ref.signature)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.budget < 0:
        raise UsageError("--budget must not be negative")
    out = bisect(ref.input, f.signature, variants, args.budget)
    out["title"] = f.title
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return EXIT_OK
    print(f.title)
    print(f"  signature: {f.signature}, reproducer variant: {out['base']}\n")
    table([(v["variant"], "yes" if v["present"] else "no", v["how"]) for v in out["variants"]],
          ["variant", "bug", "how"])
    print()
    table([(s["switch"], s["turned"], "yes" if s["present"] else "no", s["how"])
           for s in out["switches"]], ["switch", "turned", "bug", "how"])
    print()
    for line in out["fixed_by"] or ["no single switch removes it"]:
        print(f"fix: {line}")
    for line in out["caused_by"]:
        print(f"cause: {line}")
    return EXIT_OK


PYTEST_TEMPLATE = '''"""migfuzz reproducer: {title}

signature: {signature}
scenario: {scenario}, found on {variant} ({steps} steps, {preemptions} preemptions)
Run: pytest {filename}  (MIGFUZZ_VARIANT=v6.1 pytest {filename} checks another variant)

{interleaving}
"""
import json
import os

from migfuzz.fuzzer.execute import replay

INPUT = json.loads({input_json!r})
SIGNATURE = {signature!r}
VARIANT = os.environ.get("MIGFUZZ_VARIANT", INPUT["variant"])


def test_{test_name}_is_absent():
    r = replay(INPUT["scenario"], VARIANT, INPUT["schedule"], strict=False)
    found = [f.title for f in r.findings if f.signature == SIGNATURE]
    assert not found, f"still present on {{VARIANT}}: {{found[0]}}"
'''


def cmd_export(args) -> int:
    import os

    from migfuzz.corpus.input import dumps

    from ..files import check_writable, write_atomic
    check_writable(args.output)
    ref = resolve(args)
    signature = ref.signature
    if args.format == "json":
        text = dumps(ref.input)
    else:
        r, f = _primary(ref.input, ref.signature)
        signature = f.signature
        name = os.path.basename(args.output)
        text = PYTEST_TEMPLATE.format(
            title=f.title, signature=f.signature, scenario=ref.input["scenario"]["name"],
            variant=r.variant, steps=r.steps, preemptions=r.preemptions, filename=name,
            interleaving=interleaving_block(r.actors, r.trace, explain(r, f)["marks"]),
            input_json=json.dumps(ref.input, sort_keys=True),
            test_name=f.kind.lower() + "_" + f.signature.split("-")[-1])
    write_atomic(args.output, text)
    if args.json:
        json.dump({"ref": ref.label, "signature": signature, "format": args.format,
                   "output": args.output, "bytes": len(text.encode())}, sys.stdout)
        print()
    else:
        print(f"wrote {args.output}")
    return EXIT_OK
