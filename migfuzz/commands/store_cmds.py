"""Store commands: corpus export/import (JSON lines), db upgrade/status, campaigns."""
from __future__ import annotations

import json
import sys

from migfuzz.corpus import jsonl
from migfuzz.db.errors import StoreError
from migfuzz.fuzzer import ENGINE_VERSION
from migfuzz.fuzzer.kernel.variants import resolve_variant

from ..cli import EXIT_OK, UsageError
from ..render import table

USER_ERRORS = (StoreError,)



def _store():
    from migfuzz.db.store import Store        # SQLAlchemy and Alembic load only when used
    return Store


def _url(args) -> str:
    from migfuzz.db.engine import redact, resolve_url
    return redact(resolve_url(args.db))


DB_HELP = "database URL (default: $MIGFUZZ_DB, else sqlite:///migfuzz.db here)"


def register(sub) -> None:
    p = sub.add_parser("corpus", help="export or import a campaign's corpus as JSON lines",
                       description="Move a campaign's corpus in and out of the store as "
                       "JSON lines (a header line, then one entry per line).")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    e = csub.add_parser("export", help="write a campaign's corpus as JSON lines",
                        description="Write the corpus of campaign NAME, in the order it was "
                        "found, as JSON lines to FILE (default stdout).")
    e.add_argument("--name", required=True, help="the campaign")
    e.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout "
                   "(its directory must exist; written whole or not at all)")
    e.add_argument("--db", metavar="URL", help=DB_HELP)
    e.add_argument("--json", action="store_true",
                   help="with -o, print what was written as JSON (without -o the output "
                        "is JSON lines already)")
    e.set_defaults(func=cmd_export)
    i = csub.add_parser(
        "import", help="add a JSON-lines corpus to a campaign",
        description="Check every line of FILE, then add its entries to campaign NAME in one "
        "transaction (entries already there are skipped). A bad line is reported as "
        "FILE:LINE and nothing is written. The campaign is created if it does not exist.",
        epilog="Exit status: 0 imported, 2 bad file or usage error.")
    i.add_argument("file", help="a file written by 'migfuzz corpus export' (or one input "
                   "per line)")
    i.add_argument("--name", help="the campaign (default: the one named in the file)")
    i.add_argument("--variant", help="variant of a new campaign (default: from the file)")
    i.add_argument("--db", metavar="URL", help=DB_HELP)
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_import)

    p = sub.add_parser("db", help="database schema: upgrade or show its revision",
                       description="The store migrates itself when a command opens it; "
                       "'db upgrade' does it explicitly. A database written by a newer "
                       "migfuzz is refused.")
    dsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    u = dsub.add_parser("upgrade", help="migrate the database schema to this migfuzz's head")
    u.add_argument("--db", metavar="URL", help=DB_HELP)
    u.add_argument("--json", action="store_true", help="machine-readable output")
    u.set_defaults(func=cmd_db_upgrade)
    s = dsub.add_parser("status", help="show the database's schema revision and row counts")
    s.add_argument("--db", metavar="URL", help=DB_HELP)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_db_status)

    p = sub.add_parser("campaigns", help="list the campaigns in the store",
                       description="List campaigns with their status, corpus size, crashes "
                       "and bugs (as 'migfuzz bugs' counts them: duplicates apart), newest first.")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_campaigns)


def cmd_export(args) -> int:
    # reading commands (export, status, campaigns) open the store read-only: nothing is
    # created, migrated or written, and an archived database opens where it lies
    from ..files import check_writable, write_atomic
    if args.output:
        check_writable(args.output, "corpus file")
    with _store().open_readonly(args.db) as st:
        c = st.campaign(args.name)
        n = sum(1 for _ in st.iter_corpus(c.name))
        header = {"campaign": c.name, "variant": c.variant,
                  "engine_version": c.engine_version, "entries": n}
        if args.output:
            written = write_atomic(
                args.output, lambda out: jsonl.write(out, header, st.iter_corpus(c.name)),
                "corpus file")
            if args.json:
                print(json.dumps({"campaign": c.name, "entries": written,
                                  "output": args.output}))
            else:
                print(f"exported {written} entries of campaign {c.name} to {args.output}",
                      file=sys.stderr)
        else:
            jsonl.write(sys.stdout, header, st.iter_corpus(c.name))
    return EXIT_OK


def cmd_import(args) -> int:
    header, entries = jsonl.load(args.file)          # everything is checked before writing
    name = args.name or (header or {}).get("campaign")
    if not name:
        raise UsageError(f"{args.file} names no campaign: give --name")
    with _store().open(args.db) as st:
        existing = st.get_campaign(name)
        created = False
        if existing is None:
            variant = args.variant or (header or {}).get("variant") or (
                resolve_variant(entries[0]["input"]["variant"])[0] if entries else None)
            if not variant:
                raise UsageError("an empty corpus cannot create a campaign: give --variant")
            resolve_variant(variant)
            st.create_campaign(name, variant, {"imported_from": args.file}, None,
                               (header or {}).get("engine_version") or ENGINE_VERSION)
            st.set_campaign_status(name, "stopped")
            created = True
        res = st.add_corpus_entries(name, entries)
    out = {"campaign": name, "created": created, "read": len(entries), "added": res["added"],
           "already_there": len(entries) - res["added"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.file}: {len(entries)} entries read, {res['added']} added to campaign "
              f"{name}{' (new)' if created else ''}, {out['already_there']} already there")
    return EXIT_OK


def cmd_db_upgrade(args) -> int:
    with _store().open(args.db) as st:
        rev, head = st.revision()
    if args.json:
        print(json.dumps({"url": _url(args), "revision": rev, "head": head}))
        return EXIT_OK
    print(f"{_url(args)}: schema at revision {rev} (head {head})")
    return EXIT_OK


def cmd_db_status(args) -> int:
    with _store().open_readonly(args.db, require_head=False) as st:
        rev, head = st.revision()
        counts = st.counts()
    if args.json:
        print(json.dumps({"url": _url(args), "revision": rev, "head": head,
                          "rows": counts}))
        return EXIT_OK
    print(f"{_url(args)}: schema at revision {rev} (head {head})")
    table(sorted(counts.items()), ["table", "rows"])
    return EXIT_OK


def cmd_campaigns(args) -> int:
    with _store().open_readonly(args.db) as st:
        rows = st.list_campaigns()
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    if not rows:
        print("no campaigns")
        return EXIT_OK
    table([(r["name"], r["status"], r["variant"], r["corpus"], r["crashes"],
            f"{r['bugs']}" + (f" (+{r['duplicates']} dup)" if r["duplicates"] else ""),
            r["engine_version"]) for r in rows],
          ["campaign", "status", "variant", "corpus", "crashes", "bugs", "engine"])
    for r in rows:
        if r["status"] == "stale":
            print(f"{r['name']}: stale: marked running, but {r['liveness']}; "
                  f"'migfuzz fuzz --resume {r['name']}' continues it")
    return EXIT_OK
