"""Real-kernel verdicts on bugs: what ``migfuzz kernel repro`` saw (table ``kernel_verdicts``).

``add_verdict(store, signature, **fields)`` stores one, in one transaction through the
store's own write helper; ``verdicts(store, signature)`` lists a bug's, newest first, as
plain dicts; ``render_verdicts(rows)`` is the text that ``show`` and ``bugs`` print.
"""
from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import insert, select

from .errors import StoreError
from .models import Bug as BugRow, KernelVerdict

MODES = ("stress", "enforced")
MAX_EXCERPT = 20000
FIELDS = ("release", "config", "reproduced", "iterations", "hits", "control_iterations",
          "control_hits", "mode", "command", "excerpt", "detail")


def _clean(s: Any, n: int) -> str:
    return str(s).replace("\x00", "")[:n]


def add_verdict(store, signature: str, **fields) -> int:
    """Store a verdict on the bug ``signature``; returns its id. Unknown or missing fields,
    a bug that does not exist, or counts out of range are a StoreError."""
    extra = set(fields) - set(FIELDS)
    if extra:
        raise StoreError(f"unknown verdict field(s): {', '.join(sorted(extra))}")
    missing = {"release", "iterations", "hits"} - set(fields)
    if missing:
        raise StoreError(f"a verdict needs {', '.join(sorted(missing))}")
    row: dict[str, Any] = {
        "signature": signature,
        "release": _clean(fields["release"], 64),
        "config": _clean(fields.get("config", "base"), 64),
        "iterations": int(fields["iterations"]),
        "hits": int(fields["hits"]),
        "control_iterations": int(fields.get("control_iterations", 0)),
        "control_hits": int(fields.get("control_hits", 0)),
        "mode": fields.get("mode", "stress"),
        "command": _clean(fields.get("command", ""), 4000),
        "excerpt": _clean(fields.get("excerpt", ""), MAX_EXCERPT),
        "detail": json.loads(json.dumps(fields.get("detail") or {}, default=str)),
        "created_at": time.time(),
    }
    if row["mode"] not in MODES:
        raise StoreError(f"verdict mode must be one of {', '.join(MODES)}")
    for a, b in (("hits", "iterations"), ("control_hits", "control_iterations")):
        if not 0 <= row[a] <= row[b]:
            raise StoreError(f"verdict {a} must be between 0 and {b}")
    row["reproduced"] = bool(fields.get("reproduced", row["hits"] > 0
                                        and row["control_hits"] == 0))

    def tx(conn):
        if conn.execute(select(BugRow.signature).where(BugRow.signature == signature)
                        ).first() is None:
            raise StoreError(f"{signature}: no such bug")
        return conn.execute(insert(KernelVerdict).values(row)
                            .returning(KernelVerdict.id)).scalar()

    return store._write(tx)


def verdicts(store, signature: str) -> list[dict]:
    """The bug's verdicts, newest first, each a dict of the table's columns."""
    cols = [c for c in KernelVerdict.__table__.columns]
    q = (select(*cols).where(KernelVerdict.signature == signature)
         .order_by(KernelVerdict.created_at.desc(), KernelVerdict.id.desc()))
    reader = getattr(store, "_reader", store.engine)
    with reader.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def render_verdicts(rows: list[dict]) -> str:
    """The verdicts as text lines for ``show``/``bugs`` (empty string for none)."""
    if not rows:
        return ""
    out = ["Real kernel:"]
    for v in rows:
        word = "reproduced" if v["reproduced"] else "not reproduced"
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(v["created_at"]))
        out.append(f"  {word} on {v['release']} ({v['config']}, {v['mode']}) in "
                   f"{v['hits']} of {v['iterations']} (control: {v['control_hits']} of "
                   f"{v['control_iterations']})  [{when} UTC]")
        detail = v.get("detail") or {}
        if detail.get("summary"):
            out.append(f"    {detail['summary']}")
        if v.get("command"):
            out.append(f"    $ {v['command']}")
    return "\n".join(out)
