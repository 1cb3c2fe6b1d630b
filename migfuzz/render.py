"""Text rendering shared by commands: tables and the one-column-per-actor interleaving."""
from __future__ import annotations

import sys
from typing import Sequence


def table(rows: Sequence[Sequence], headers: Sequence[str], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def interleaving(actors: Sequence[str], trace: Sequence[tuple],
                 marks: dict[int, str] | None = None, width: int = 34) -> str:
    """One column per actor, one row per run of consecutive steps of one actor; a row
    shows the first step number and the sites it ran. ``marks`` flags decisive steps."""
    marks = marks or {}
    lines = ["step   " + "".join(a[:width - 1].ljust(width) for a in actors).rstrip(),
             "-----  " + "".join(("-" * (width - 1)).ljust(width) for _ in actors).rstrip()]
    i = 0
    while i < len(trace):
        who = trace[i][0]
        j = i
        while j < len(trace) and trace[j][0] == who:
            j += 1
        sites = [trace[n][1] for n in range(i, j)]
        for n in range(i, j):
            if n in marks:
                sites[n - i] = f"*{sites[n - i]}*"
        text, row_start = [], i
        for n, s in enumerate(sites):
            # wrap long runs: one site per line once the cell is full
            if text and len(", ".join(text + [s])) > width - 2:
                lines.append(_row(row_start, who, ", ".join(text), len(actors), width))
                text, row_start = [], i + n
            text.append(s)
        lines.append(_row(row_start, who, ", ".join(text), len(actors), width))
        i = j
    return "\n".join(lines)


def _row(step: int, who: int, text: str, n: int, width: int) -> str:
    cols = [""] * n
    cols[who] = text
    return f"{step:<5}  " + "".join(c.ljust(width) for c in cols).rstrip()
