"""Text rendering shared by commands: tables and the one-column-per-actor interleaving."""
from __future__ import annotations

import sys
from typing import Iterable, Sequence


def table(rows: Sequence[Sequence], headers: Sequence[str], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


COLUMN = 34                 # the narrowest actor column (a longer site widens them all)
MARKS_NOTE = "* marks steps on the involved page or address"


def interleaving(actors: Sequence[str], trace: Sequence[tuple],
                 marks: Iterable[int] | None = None) -> str:
    """The one rendering of an interleaving (``show``, the exported test, ``run`` and
    ``replay --trace``): one column per actor, one row per run of consecutive steps of one
    actor, wrapped when the cell is full. A row's step column names the steps it holds
    ("9" or "9-10"), numbered from 0 as the trace, the audit log and the dashboard number
    them; ``marks`` (step numbers) are shown as ``*site*``. Nothing depends on the caller:
    the same trace always gives the same rows."""
    marks = set(marks or ())
    sites = [f"*{t[1]}*" if n in marks else str(t[1]) for n, t in enumerate(trace)]
    width = max([COLUMN] + [len(s) + 2 for s in sites])
    rows: list[tuple[int, int, int, str]] = []          # first step, last step, actor, text
    i = 0
    while i < len(trace):
        who = trace[i][0]
        j = i
        while j < len(trace) and trace[j][0] == who:
            j += 1
        text, start = [], i
        for n in range(i, j):
            # wrap long runs: a new row once the cell is full
            if text and len(", ".join(text + [sites[n]])) > width - 2:
                rows.append((start, n - 1, who, ", ".join(text)))
                text, start = [], n
            text.append(sites[n])
        rows.append((start, j - 1, who, ", ".join(text)))
        i = j
    stepw = max([5] + [len(_steps(a, b)) for a, b, _, _ in rows])
    lines = ["step".ljust(stepw) + "  " +
             "".join(a[:width - 1].ljust(width) for a in actors).rstrip(),
             "-" * stepw + "  " + "".join(("-" * (width - 1)).ljust(width)
                                         for _ in actors).rstrip()]
    for a, b, who, text in rows:
        cols = [""] * len(actors)
        cols[who] = text
        lines.append(_steps(a, b).ljust(stepw) + "  " +
                     "".join(c.ljust(width) for c in cols).rstrip())
    return "\n".join(lines)


def interleaving_block(actors: Sequence[str], trace: Sequence[tuple],
                       marks: Iterable[int] | None = None) -> str:
    """``interleaving`` under its one heading, as ``show`` and the exported test print it."""
    return (f"interleaving, one column per actor ({MARKS_NOTE}):\n"
            + interleaving(actors, trace, marks))


def _steps(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}-{b}"
