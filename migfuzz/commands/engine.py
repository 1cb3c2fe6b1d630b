"""Engine commands: variants, scenarios, run, replay."""
from __future__ import annotations

import json
import os
import sys
import time

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import check_deterministic, execute, replay
from migfuzz.fuzzer.scenario import summary
from migfuzz.fuzzer.scheduler import STRATEGIES, make_strategy
from migfuzz.fuzzer.scheduler.replay import CONTINUE_WITH
from migfuzz.fuzzer.kernel.variants import SWITCH_DOCS, SWITCH_NAMES, VARIANTS, resolve_variant

from ..cli import EXIT_ERROR, EXIT_FOUND, EXIT_OK, UsageError
from ..files import check_writable, write_atomic
from ..refs import add_ref_arguments, resolve
from ..render import interleaving, table


def register(sub) -> None:
    p = sub.add_parser("variants", help="list the kernel variants and their switches",
                       description="List the variant presets and the behaviour switches. "
                       "A variant spec is a preset, optionally with switches turned on or "
                       "off: v5.16+dirty_to_page-wait_takes_ref.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("scenarios", help="list the built-in scenarios",
                       description="List the built-in scenarios (kernel selftests and "
                       "concurrency cases), or print one as JSON.")
    p.add_argument("name", nargs="?", help="print this scenario's JSON")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser(
        "run", help="run executions of one scenario on one variant",
        description="Run COUNT executions with seeds SEED, SEED+1, ...; stop at the first "
        "finding unless --all.",
        epilog="Exit status: 0 nothing found, 1 a finding, 2 usage or input error, 3 an "
               "execution was not deterministic (--check-determinism).")
    p.add_argument("--scenario", required=True, help="a built-in name or a scenario JSON file")
    p.add_argument("--variant", default="v5.16", help="variant spec (default v5.16)")
    p.add_argument("--strategy", default="random", choices=sorted(STRATEGIES),
                   help="the scheduler of every execution (default random). These are "
                        "the per-execution strategies; 'fuzz --strategy' offers searches "
                        "over many executions instead: portfolio (a mix of them), guided "
                        "(mutates the schedules of a campaign's corpus, so it needs one) "
                        "and exhaustive (every schedule within a preemption bound). "
                        "round-robin is deterministic (each seed gives the same run), so "
                        "only 'run' offers it, as a baseline")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--count", type=int, default=1, help="executions to run (default 1)")
    p.add_argument("--all", action="store_true", help="do not stop at the first finding")
    p.add_argument("--save", metavar="FILE", help="write the input of the first finding "
                   "(its directory must exist; checked before the executions run)")
    p.add_argument("--trace", action="store_true", help="print the interleaving")
    p.add_argument("--check-determinism", action="store_true",
                   help="replay every execution's schedule on a fresh kernel and require "
                        "the same trace and findings (exit 3 with the step where they part)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "replay", help="replay a bug, a crash or an input file exactly",
        description="Replay a stored input's schedule step by step and say whether it "
        "reproduced: the same signature and the same trace hash. With --variant, replay it "
        "on another variant, leniently: where the schedule stops fitting, the replay says "
        "so and carries on under a fair random walk (seed 0); what that continuation finds "
        "is listed apart and never counts as reproduced.",
        epilog="Exit status: 0 reproduced (or, for a file with no stored result, ran), "
        "1 not reproduced, 2 bad input, unknown id, or a schedule that no longer fits.")
    add_ref_arguments(p)
    p.add_argument("--variant", help="replay on this variant instead of the input's own")
    p.add_argument("--trace", action="store_true", help="print the interleaving")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_replay)


def cmd_variants(args) -> int:
    rows = [(name, desc, " ".join(n for n in SWITCH_NAMES if getattr(sw, n)))
            for name, (sw, desc) in VARIANTS.items()]
    if args.json:
        json.dump({"variants": [{"name": n, "description": VARIANTS[n][1],
                                 "switches": VARIANTS[n][0].as_dict()} for n in VARIANTS],
                   "switches": SWITCH_DOCS}, sys.stdout, indent=1)
        print()
        return EXIT_OK
    # the newer releases turn on a dozen switches: wrap the list (continuation rows leave
    # the variant column empty) so the table fits an 80-column terminal
    import textwrap
    lines = []
    for n, _, on in rows:
        for i, part in enumerate(textwrap.wrap(on, 64) or ["-"]):
            lines.append((n if i == 0 else "", part))
    table(lines, ["variant", "switches on"])
    print()
    for n, desc, _ in rows:
        print(f"{n}: {desc}")
    print("\nswitches:")
    for n in SWITCH_NAMES:
        print(f"  {n:16} {SWITCH_DOCS[n]}")
    return EXIT_OK


def load_scenario(spec: str) -> dict:
    """A built-in scenario by name, or a scenario JSON file by path (read as an input
    file is: at most corpus.input.MAX_BYTES, UTF-8)."""
    if os.path.exists(spec) and spec.endswith(".json"):
        from migfuzz.fuzzer.scenario import ScenarioError, validate
        data, size = inputs.read_bounded(spec)
        if len(data) > inputs.MAX_BYTES:
            raise inputs.too_big(spec, size)
        try:
            sc = json.loads(data)
        except json.JSONDecodeError as e:
            raise UsageError(f"{spec}: malformed JSON: {e.msg} at line {e.lineno}") from None
        except (RecursionError, UnicodeDecodeError) as e:
            raise UsageError(f"{spec}: unreadable JSON ({type(e).__name__})") from None
        try:
            return validate(sc)
        except ScenarioError as e:
            raise UsageError(f"{spec}: {e}") from None
    return get_scenario(spec)


def cmd_scenarios(args) -> int:
    if args.name:
        json.dump(get_scenario(args.name), sys.stdout, indent=1)
        print()
        return EXIT_OK
    scs = [get_scenario(n) for n in scenario_names()]
    if args.json:
        json.dump([{"name": s["name"], "kind": s.get("kind", ""),
                    "description": s.get("description", ""), "summary": summary(s)}
                   for s in scs], sys.stdout, indent=1)
        print()
        return EXIT_OK
    table([(s["name"], s.get("kind", ""), summary(s)) for s in scs],
          ["scenario", "kind", "shape"])
    return EXIT_OK


def _record(r) -> dict:
    return {"seed": r.seed, "steps": r.steps, "preemptions": r.preemptions,
            "trace_hash": r.trace_hash,
            "findings": [{"kind": f.kind, "title": f.title, "signature": f.signature}
                         for f in r.findings]}


def _summaries(findings) -> list[dict]:
    return [{"kind": f.kind, "title": f.title, "signature": f.signature} for f in findings]


def result_summary(r) -> dict:
    """Trace hash and the findings the schedule produced (after a lenient replay's
    divergence, what the continuation found is not the schedule's: see Result)."""
    return {"trace_hash": r.trace_hash, "findings": _summaries(r.schedule_findings())}


def cmd_run(args) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.save:
        check_writable(args.save, "input file")
    sc = load_scenario(args.scenario)
    vname, _ = resolve_variant(args.variant)
    make_strategy(args.strategy, 0)
    records, first = [], None
    t0 = last = time.monotonic()
    done = 0
    tty = sys.stderr.isatty() and not args.json
    for seed in range(args.seed, args.seed + args.count):
        r = execute(sc, vname, make_strategy(args.strategy, seed), seed=seed, check=False)
        if args.check_determinism:
            check_deterministic(sc, vname, r)
        done += 1
        if r.findings or args.count <= 1000:
            records.append(_record(r))
        if r.findings and first is None:
            first = r
        if args.count == 1 and first is None:
            first = r if args.trace else None
        if tty and time.monotonic() - last > 1:
            last = time.monotonic()
            print(f"\r{done}/{args.count} executions, {done / (last - t0):.0f}/s, "
                  f"{sum(1 for x in records if x['findings'])} with findings",
                  end="", file=sys.stderr)
        if r.findings and not args.all:
            break
    if tty and time.monotonic() - t0 > 1:
        print(file=sys.stderr)
    elapsed = time.monotonic() - t0
    found = [x for x in records if x["findings"]]
    saved = None
    if args.save:
        hit = first if first is not None and first.findings else None
        if hit is None:
            print("migfuzz: nothing found, nothing saved", file=sys.stderr)
        else:
            inp = inputs.make(sc, vname, hit.schedule, strategy=args.strategy, seed=hit.seed,
                              result=result_summary(hit))
            write_atomic(args.save, inputs.dumps(inp), "input file")
            saved = args.save
    if args.json:
        out = {"scenario": sc["name"], "variant": vname, "strategy": args.strategy,
               "executions": done, "seconds": round(elapsed, 3), "runs": records,
               "saved": saved}
        if args.trace and first is not None:
            out["trace"] = [[first.actors[i], s] for i, s, _ in first.trace]
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        for x in found:
            for f in x["findings"]:
                print(f"seed {x['seed']}: {f['title']}  [{f['signature']}]")
        print(f"{done} execution(s) of {sc['name']} on {vname} ({args.strategy}), "
              f"{len(found)} with findings, {done / max(elapsed, 1e-9):.0f}/s"
              + (f"; saved {saved}" if saved else ""))
        if args.trace and first is not None:
            print(interleaving(first.actors, first.trace))
    return EXIT_FOUND if found else EXIT_OK


def cmd_replay(args) -> int:
    ref = resolve(args)
    inp = ref.input
    other = args.variant is not None
    variant = resolve_variant(args.variant)[0] if other else inp["variant"]
    r = replay(inp["scenario"], variant, inp["schedule"], seed=inp.get("seed"),
               strict=not other)
    stored = inp.get("result")
    now = result_summary(r)
    later = [f for f in r.findings if f not in r.schedule_findings()]
    sigs = [f["signature"] for f in now["findings"]]
    if ref.signature is not None:
        same = ref.signature in sigs and (other or stored is None
                                          or stored.get("trace_hash") == r.trace_hash)
    elif stored is not None:
        same = (stored.get("trace_hash") == r.trace_hash and sorted(sigs) ==
                sorted(f["signature"] for f in stored.get("findings", [])))
    else:
        same = None
    if args.json:
        out = {"ref": ref.label, "variant": r.variant, "scenario": r.scenario,
               "seed": r.seed, "steps": r.steps, "preemptions": r.preemptions, **now,
               "signature": ref.signature, "reproduced": same, "diverged": r.diverged,
               "diverged_step": r.diverged_step,
               "after_divergence": {"continued_with": CONTINUE_WITH,
                                    "findings": _summaries(later)} if r.diverged else None}
        if args.trace:
            out["trace"] = [[r.actors[i], s] for i, s, _ in r.trace]
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        for f in r.schedule_findings():
            print(f"{f.title}  [{f.signature}]")
        verdict = {None: "no stored result to compare", True: "reproduced",
                   False: "NOT reproduced"}[same]
        if r.diverged:
            print(f"the {r.diverged}; the schedule says nothing past that point")
            print(f"continued under a {CONTINUE_WITH}, not the schedule: "
                  + ("; ".join(f"{f.title}  [{f.signature}]" for f in later)
                     if later else "no finding"))
        print(f"replayed {ref.label} ({r.scenario}) on {r.variant}: {r.steps} steps, "
              f"{r.preemptions} preemptions, trace {r.trace_hash}, "
              f"{len(now['findings'])} finding(s) of the schedule; {verdict}"
              + (f" (diverged at step {r.diverged_step})" if r.diverged else ""))
        if args.trace:
            print(interleaving(r.actors, r.trace))
    return EXIT_FOUND if same is False else EXIT_OK


__all__ = ["register", "EXIT_ERROR"]
