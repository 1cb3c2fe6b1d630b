"""``migfuzz model``: the model's steps and the kernel source they follow.

``model steps`` prints the step table (fuzzer/kernel/sources.toml): for each model step
(site), per release, the kernel file and function it follows and that function's
fingerprint. ``model check-source`` recomputes the fingerprints from a release's kernel
source and names every step whose function changed since the table was written.
"""
from __future__ import annotations

import argparse
import json
import sys

from migfuzz.kernels import source_check as sc

USER_ERRORS = (sc.SourceError,)

EXIT_OK, EXIT_STALE, EXIT_ERROR = 0, 1, 2

FINGERPRINT_HELP = (
    "A fingerprint is the first 12 hex digits of sha256 over a C function's tokens joined "
    "by one space: comments are dropped and whitespace collapsed, so a comment or "
    "indentation edit keeps it and any code change alters it. A step is stale when the "
    "function it follows no longer has the fingerprint the table records (a new release "
    "or a backport changed it): read the function, bring the model in line if its "
    "behaviour changed, then refresh the table with --update.")


def register(sub) -> None:
    p = sub.add_parser(
        "model", help="the model's steps and the kernel functions they follow",
        description="Each model step (a site such as collect:trylock) names, per release, "
        "the kernel function it follows and a fingerprint of that function's source, in "
        "one table shipped with the model (fuzzer/kernel/sources.toml). "
        + FINGERPRINT_HELP)
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), EXIT_ERROR)[1])

    c = msub.add_parser(
        "check-source", help="check every step's fingerprint against a release's source",
        description="Recompute the fingerprint of every kernel function the release's "
        "steps follow, from the installed Debian source package (linux-source-6.1 for "
        "6.1.192, linux-source-6.12 for 6.12.117; unpacked once into $MIGFUZZ_CACHE) or "
        "from --source DIR, and compare with the table. " + FINGERPRINT_HELP,
        epilog="Exit status: 0 every step matches (or --update rewrote the table), 1 some "
        "steps are stale (one 'stale: SITE follows FILE:FUNCTION, table FP source FP' line "
        "each), 2 the check could not run (unknown release, source package not installed: "
        "the line says which apt package, a function the table names is not in its file).")
    c.add_argument("--release", required=True, metavar="R",
                   help="a release of the table with a fingerprint (6.1.192, 6.12.117)")
    c.add_argument("--source", metavar="DIR",
                   help="check against this kernel tree instead of the release's source "
                        "package (an edited copy, a newer stable release)")
    c.add_argument("--update", action="store_true",
                   help="rewrite the release's fingerprints in the table from the source "
                        "(atomically, only the fingerprint values change), after reading "
                        "what changed in each stale function")
    c.add_argument("--table", metavar="FILE", help=argparse.SUPPRESS)
    c.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    c.set_defaults(func=cmd_check_source)

    s = msub.add_parser(
        "steps", help="print the step table: step, release, file, function, fingerprint",
        description="Print every model step with the kernel file, function and fingerprint "
        "it follows in each release (or in one, with --release); steps that are the "
        "model's own, or that a release does not have, say why. " + FINGERPRINT_HELP,
        epilog="Exit status: 0, or 2 for an unknown release.")
    s.add_argument("--release", metavar="R", help="only this release")
    s.add_argument("--table", metavar="FILE", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    s.set_defaults(func=cmd_steps)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_check_source(args) -> int:
    table = sc.load_table(args.table)
    if args.release not in table.fingerprinted:
        known = ", ".join(table.fingerprinted)
        if args.release in table.releases:
            raise sc.SourceError(f"release {args.release} has no fingerprints in the table "
                                 f"(no source package here); check one of {known}")
        raise sc.SourceError(f"unknown release {args.release!r} (fingerprinted: {known})")
    root = sc.release_source(table, args.release, args.source, log=_say)
    version = sc.source_version(root)
    if version and version != args.release:
        # a newer stable release or a hand-made tree: stale steps are what it changed
        _say(f"note: {root} is {version}; the table's fingerprints are for {args.release}")
    if args.update:
        changed = sc.update(table, args.release, root)
        if args.json:
            print(json.dumps({"release": args.release, "source": str(root),
                              "source_version": version, "updated": changed,
                              "table": str(table.path)}))
        else:
            print(f"{args.release}: {changed} fingerprint(s) rewritten in {table.path} "
                  f"from {root}")
        return EXIT_OK
    entries, stale = sc.check(table, args.release, root)
    functions = len({(e.file, e.function) for e in entries})
    if args.json:
        print(json.dumps({
            "release": args.release, "source": str(root), "source_version": version,
            "steps": len(entries), "functions": functions, "ok": not stale,
            "stale": [{"site": s.entry.site, "file": s.entry.file,
                       "function": s.entry.function, "table": s.entry.fingerprint,
                       "source": s.source_fp} for s in stale]}))
    else:
        for s in stale:
            print(s.line())
        if stale:
            print(f"{args.release}: {len(stale)} of {len(entries)} steps stale "
                  f"({len({(s.entry.file, s.entry.function) for s in stale})} of "
                  f"{functions} functions changed in {root}); refresh: migfuzz model "
                  f"check-source --release {args.release} --update", file=sys.stderr)
        else:
            print(f"{args.release}: {len(entries)} steps over {functions} functions match "
                  f"{root}")
    return EXIT_STALE if stale else EXIT_OK


def cmd_steps(args) -> int:
    table = sc.load_table(args.table)
    if args.release is not None and args.release not in table.releases:
        raise sc.SourceError(f"unknown release {args.release!r} (the table has "
                             f"{', '.join(table.releases)})")
    releases = [args.release] if args.release else list(table.releases)
    rows = []
    for site in table.sites():
        if site in table.model:
            rows.append({"step": site, "release": None, "model": table.model[site]})
            continue
        for r in releases:
            e = table.steps[site].get(r)
            if e is None:
                continue
            if e.absent:
                rows.append({"step": site, "release": r, "absent": e.absent})
            else:
                rows.append({"step": site, "release": r, "file": e.file,
                             "function": e.function, "fingerprint": e.fingerprint or None})
    if args.json:
        print(json.dumps({"table": str(table.path), "releases": releases, "steps": rows}))
        return EXIT_OK
    width = max(len(r["step"]) for r in rows)
    for r in rows:
        if "model" in r:
            rest = f"{'-':9} (model) {r['model']}"
        elif "absent" in r:
            rest = f"{r['release']:9} (absent) {r['absent']}"
        else:
            rest = (f"{r['release']:9} {r['file']}:{r['function']}"
                    + (f"  {r['fingerprint']}" if r["fingerprint"] else ""))
        print(f"{r['step']:{width}}  {rest}")
    return EXIT_OK
