"""Bug commands over the store: list bugs, triage them (the bug lifecycle), minimize."""
from __future__ import annotations

import json
import sys
import time

from migfuzz.fuzzer.bisect import probe
from migfuzz.fuzzer.findings import KINDS
from migfuzz.fuzzer.kernel.variants import resolve_variant

from ..cli import EXIT_FOUND, EXIT_OK, UsageError
from ..refs import DB_HELP, find_bug, open_store
from ..render import table

STATUSES = ("new", "triaged", "fixed", "invalid", "duplicate")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t else "-"


def register(sub) -> None:
    p = sub.add_parser(
        "bugs", help="list the bugs (one per signature) in the store",
        description="List bugs: id (signature), kind, title, hits, first and last seen, "
        "status, and the variants where they show. Hits are the stored crashes: distinct "
        "inputs that showed the bug, at most 100 per bug ('fuzz --max-crashes-per-bug'); "
        "a campaign's own table counts every execution.",
        epilog="Exit status: 0 listed (even if empty), 2 no database or bad filter.")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--kind", type=str.upper, choices=KINDS, metavar="KIND",
                   help="one of " + ", ".join(KINDS))
    p.add_argument("--variant", help="only bugs seen on this variant")
    p.add_argument("--campaign", help="only bugs found by this campaign")
    p.add_argument("--all", action="store_true",
                   help="include duplicates (hidden unless --status duplicate)")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_bugs)

    p = sub.add_parser(
        "minimize", help="shrink a bug's reproducer further and store it if smaller",
        description="Run the shrinker (drop actors, commands and pages, shorten ranges, "
        "remove preemptions) on the bug's stored reproducer; every candidate must still "
        "give the bug's signature. A smaller one replaces the stored reproducer; the "
        "reproducer's reliability is measured by replaying it.",
        epilog="Exit status: 0 done (smaller or already minimal), 2 unknown bug, no "
        "database, or a reproducer that no longer reproduces.")
    p.add_argument("bug", metavar="BUG", help="a bug signature or a unique prefix")
    p.add_argument("--budget", type=int, default=2000, help="executions to spend")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_minimize)

    p = sub.add_parser(
        "triage", help="set a bug's status, notes, labels or duplicate",
        description="The bug lifecycle: new, triaged, fixed, invalid, duplicate. Marking a "
        "bug fixed replays its reproducer on the variant it is fixed in (--fixed-in); if it "
        "still reproduces there the bug is not closed.",
        epilog="Exit status: 0 updated, 1 refused (still reproduces where it is said to be "
        "fixed), 2 unknown bug, no database or bad arguments.")
    p.add_argument("bug", metavar="BUG", help="a bug signature or a unique prefix")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--note", help="text appended to the bug's notes")
    p.add_argument("--dup-of", metavar="BUG", help="with --status duplicate: the original")
    p.add_argument("--label", action="append", default=[], help="add a label (repeatable)")
    p.add_argument("--fixed-in", default="v6.1", metavar="VARIANT",
                   help="with --status fixed: where the fix is (default v6.1)")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_triage)


def cmd_minimize(args) -> int:
    from migfuzz.corpus import input as inputs
    from migfuzz.fuzzer.execute import replay
    from migfuzz.fuzzer.search.minimize import minimize, minimized_name, size_key
    if args.budget < 1:
        raise UsageError("--budget must be at least 1")
    with open_store(args.db) as st:
        bug = find_bug(st, args.bug)
        inp = bug.reproducer
        if inp is None:
            raise UsageError(f"{bug.signature}: no reproducer stored")
        inputs.check(inp, bug.signature)        # bounded schedule, valid text (see refs)
        try:
            before = replay(inp["scenario"], inp["variant"], inp["schedule"], strict=False)
            sh = minimize(inp["scenario"], inp["variant"], inp["schedule"], bug.signature,
                          args.budget)
        except ValueError:
            raise UsageError(f"{bug.signature}: the stored reproducer no longer gives this "
                             f"signature (see 'migfuzz bisect {bug.signature}')") from None
        smaller = sh.after < size_key(inp["scenario"], before)
        sc = dict(sh.scenario)
        if smaller:
            sc["name"] = minimized_name(sc["name"])
        new = inputs.make(sc, inp["variant"], sh.schedule, strategy="minimized",
                          seed=inp.get("seed"),
                          result={"trace_hash": sh.result.trace_hash,
                                  "findings": [{"kind": f.kind, "title": f.title,
                                                "signature": f.signature}
                                               for f in sh.result.findings]})
        # reliability, as syzkaller measures it: replays of the final reproducer (up to
        # 10, stop after 3 successes); a deterministic engine should give 3 of 3
        final = new if smaller else inp
        attempts = successes = 0
        while attempts < 10 and successes < 3:
            attempts += 1
            r = replay(final["scenario"], final["variant"], final["schedule"], strict=False)
            successes += any(f.signature == bug.signature for f in r.findings)
        if smaller:
            st.set_reproducer(bug.signature, new, steps=sh.result.steps)
        st.record_reproduction(bug.signature, attempts, successes)
    summary = {"bug": bug.signature, "smaller": smaller, "executions": sh.executions,
               "before": {"actors": len(inp["scenario"]["actors"]),
                          "preemptions": before.preemptions, "steps": before.steps},
               "after": sh.summary(), "reliability": f"{successes}/{attempts}"}
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        print()
    else:
        a = sh.summary()
        if smaller:
            print(f"{bug.signature}: stored a smaller reproducer: {a['actors']} actor(s), "
                  f"{a['pages']} page(s), {a['commands']} command(s), {a['preemptions']} "
                  f"preemption(s), {a['steps']} steps (was {summary['before']['actors']} "
                  f"actors, {before.preemptions} preemptions, {before.steps} steps); "
                  f"{sh.executions} executions spent")
        else:
            print(f"{bug.signature}: already minimal ({sh.executions} executions tried)")
        print(f"reproduced {successes} of {attempts} replays")
    return EXIT_OK


def cmd_bugs(args) -> int:
    if args.variant:
        args.variant = resolve_variant(args.variant)[0]
    from migfuzz.db.verdicts import verdicts
    with open_store(args.db, readonly=True) as st:
        bugs = st.list_bugs(campaign=args.campaign, status=args.status, kind=args.kind)
        if args.variant:
            bugs = [b for b in bugs if args.variant in b.variants]
        if not args.all and args.status is None:
            bugs = [b for b in bugs if b.status != "duplicate"]
        kernel = {b.signature: verdicts(st, b.signature) for b in bugs}
    if args.json:
        json.dump([{**{k: v for k, v in b.to_json().items() if k != "reproducer"},
                    "kernel_verdicts": kernel[b.signature]} for b in bugs],
                  sys.stdout, indent=1, default=str)
        print()
        return EXIT_OK
    if not bugs:
        print("no bugs")
        return EXIT_OK
    table([(b.signature, b.title[:70], b.count, _when(b.first_seen), _when(b.last_seen),
            b.status, ",".join(b.variants), _kernel(kernel[b.signature])) for b in bugs],
          ["bug", "title", "hits", "first seen", "last seen", "status", "variants",
           "real kernel"])
    return EXIT_OK


def _kernel(rows: list[dict]) -> str:
    """The newest verdict per release, e.g. '6.1.192 19/20, 6.12.117 0/12' ('-': none)."""
    seen: dict[str, str] = {}
    for v in rows:                        # newest first
        seen.setdefault(v["release"], f"{v['release']} {v['hits']}/{v['iterations']}")
    return ", ".join(seen.values()) or "-"


def cmd_triage(args) -> int:
    if not (args.status or args.note or args.label or args.dup_of):
        raise UsageError("nothing to do: give --status, --note, --label or --dup-of")
    if args.dup_of and args.status not in (None, "duplicate"):
        raise UsageError("--dup-of goes with --status duplicate")
    with open_store(args.db) as st:
        bug = find_bug(st, args.bug)
        dup = find_bug(st, args.dup_of).signature if args.dup_of else None
        status = "duplicate" if dup else args.status
        if status == "duplicate" and not dup:
            raise UsageError("--status duplicate needs --dup-of BUG")
        if status == "fixed":
            if bug.reproducer is None:
                raise UsageError(f"{bug.signature}: no reproducer to check the fix with")
            from migfuzz.corpus.input import check
            out = probe(check(bug.reproducer, bug.signature),
                        resolve_variant(args.fixed_in)[0], bug.signature)
            if out.present:
                msg = (f"{bug.signature} still reproduces on {out.variant} ({out.how}); "
                       f"not marked fixed")
                if args.json:
                    json.dump({"updated": False, "reason": msg, **out.to_json()}, sys.stdout)
                    print()
                else:
                    print(msg, file=sys.stderr)
                return EXIT_FOUND
        notes = None
        if args.note:
            stamp = time.strftime("%Y-%m-%d", time.gmtime())
            notes = (bug.notes + "\n" if bug.notes else "") + f"[{stamp}] {args.note}"
        labels = sorted(set(bug.labels) | set(args.label)) if args.label else None
        new = st.update_bug(bug.signature, status=status, duplicate_of=dup, notes=notes,
                            labels=labels)
    if args.json:
        json.dump({"updated": True, **{k: v for k, v in new.to_json().items()
                                       if k != "reproducer"}}, sys.stdout, indent=1)
        print()
    else:
        print(f"{new.signature}: {new.status}"
              + (f" (duplicate of {new.duplicate_of})" if new.duplicate_of else "")
              + (f", labels {', '.join(new.labels)}" if new.labels else ""))
    return EXIT_OK
