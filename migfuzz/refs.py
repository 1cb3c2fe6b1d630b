"""Resolve what a triage command is pointed at: an input file now; a bug or crash id in the
store (``--db``) once one is given."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from corpus import input as inputs

from .cli import UsageError


@dataclass
class Ref:
    label: str
    input: dict
    signature: str | None = None           # the bug's signature, when known
    alt_titles: list[str] = field(default_factory=list)


def add_ref_arguments(p) -> None:
    p.add_argument("ref", metavar="BUG|CRASH|FILE",
                   help="a bug id, a crash id (c<N>) or an input file")
    p.add_argument("--db", default=None,
                   help="database URL for bug and crash ids (default: $MIGFUZZ_DB or "
                        "sqlite:///migfuzz.db)")


def resolve(args) -> Ref:
    ref = args.ref
    if os.path.exists(ref) or ref.endswith(".json"):
        inp = inputs.load(ref)
        stored = (inp.get("result") or {}).get("findings") or []
        return Ref(ref, inp, stored[0]["signature"] if stored else None)
    raise UsageError(f"{ref}: no such input file")
