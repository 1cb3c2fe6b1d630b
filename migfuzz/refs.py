"""Resolve what a triage command is pointed at: an input file, a bug (its signature, or an
unambiguous prefix of it) or a crash (``c:`` plus a prefix of its input hash) in the store."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from migfuzz.corpus import input as inputs

from .cli import UsageError

DB_HELP = "database URL (default: $MIGFUZZ_DB, else sqlite:///migfuzz.db here)"


@dataclass
class Ref:
    label: str
    input: dict
    signature: str | None = None           # the bug's signature, when known
    alt_titles: list[str] = field(default_factory=list)
    bug: object = None                     # db.store.Bug when the ref is a bug
    verdicts: list = field(default_factory=list)   # its real-kernel verdicts (kernel repro)


def add_ref_arguments(p) -> None:
    p.add_argument("ref", metavar="BUG|CRASH|FILE",
                   help="a bug signature (or a unique prefix), c:<input hash prefix> for a "
                        "crash, or an input file")
    p.add_argument("--db", metavar="URL", default=None, help=DB_HELP)


def open_store(url: str | None, *, readonly: bool = False):
    """Open an existing store: a missing (or 0-byte) SQLite file is an error (a typo must
    not create an empty database), and the schema is never upgraded here. ``readonly``
    (every command that only reads): nothing is written, and an archived database in a
    read-only directory opens too; otherwise a read-only database is refused at once."""
    from migfuzz.db.store import Store
    if readonly:
        return Store.open_readonly(url)
    return Store.open(url, upgrade=False, create=False)


def find_bug(store, ref: str):
    """A bug by signature or by an unambiguous prefix of it."""
    if not ref.strip():
        raise UsageError("empty reference: give a bug signature or a prefix of it "
                         "(see 'migfuzz bugs')")
    bug = store.get_bug(ref)
    if bug is not None:
        return bug
    matches = [b for b in store.list_bugs() if b.signature.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{ref}: ambiguous, matches {len(matches)} bugs "
                         f"({', '.join(b.signature for b in matches[:3])}, ...)")
    raise UsageError(f"{ref}: no such bug (see 'migfuzz bugs')")


def resolve(args) -> Ref:
    ref = args.ref
    if not ref.strip() or ref.strip() == "c:":
        raise UsageError("empty reference: give a bug signature (or a prefix of it), "
                         "c:<input hash prefix> or an input file")
    if os.path.exists(ref) or ref.endswith(".json"):
        inp = inputs.load(ref)
        stored = (inp.get("result") or {}).get("findings") or []
        return Ref(ref, inp, stored[0]["signature"] if stored else None)
    with open_store(getattr(args, "db", None), readonly=True) as st:
        if ref.startswith("c:"):
            found = st.list_crashes(input_prefix=ref[2:], limit=50)
            if not found:
                raise UsageError(f"{ref}: no such crash (see 'migfuzz bugs' and "
                                 f"'migfuzz show BUG --json')")
            if len({c["input_hash"] for c in found}) > 1:
                raise UsageError(f"{ref}: ambiguous, give more of the input hash")
            crash = found[0]
            # stored inputs are checked again (bounded schedule, valid text): a database
            # written by an older migfuzz, or by hand, must not make replay blow up
            return Ref(ref, inputs.check(crash["input"], ref), crash["signature"],
                       [crash["title"]])
        bug = find_bug(st, ref)
        if bug.reproducer is None:
            raise UsageError(f"{bug.signature}: this bug has no reproducer stored")
        from migfuzz.db.verdicts import verdicts
        return Ref(bug.signature, inputs.check(bug.reproducer, bug.signature),
                   bug.signature, [bug.title] + bug.alt_titles, bug,
                   verdicts(st, bug.signature))
