"""Read a guest's serial console: structured lines and kernel findings. Pure functions.

Structured lines: a guest program (or the initramfs's /init) prints one line
``MIGFUZZ {json object}``; :func:`structured` returns the objects in order. The prefix may
appear after other text on the same line (the kernel's console output can land in the middle
of a user-space line), and a line whose JSON does not parse is kept as ``{"garbled": text}``.

Findings: every oops, ``BUG:``, ``kernel BUG at``, ``WARNING:``, KASAN report, hung-task
report, soft lockup, RCU stall, bad page state and ``Kernel panic`` on the console, each with
its excerpt: the lines from the header to the end of its trace (an ``---[ end trace`` line,
the closing ``=====`` of a KASAN report, or the first line that is not kernel output).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

PREFIX = "MIGFUZZ "
MAX_EXCERPT = 120

# printk's time prefix ("[   12.345678] "), present with CONFIG_PRINTK_TIME
_TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# (kind, pattern); the first that matches a line names the finding
HEADERS: list[tuple[str, re.Pattern]] = [
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("kfence", re.compile(r"BUG: KFENCE: ")),
    ("soft_lockup", re.compile(r"(watchdog: )?BUG: soft lockup")),
    ("hard_lockup", re.compile(r"Watchdog detected hard LOCKUP")),
    ("bad_page", re.compile(r"BUG: Bad page (state|map)")),
    ("rcu_stall", re.compile(r"rcu: INFO: \S+ (self-)?detected stall|"
                             r"INFO: rcu_\w+ (self-)?detected stall")),
    ("hung_task", re.compile(r"INFO: task .+ blocked for more than \d+ seconds")),
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("bug", re.compile(r"kernel BUG at |BUG: ")),
    ("oops", re.compile(r"Oops: |general protection fault|"
                        r"Unable to handle kernel|unable to handle page fault")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at |WARNING: at |"
                           r"WARNING: (possible|suspicious) .*(lock|RCU)")),
]
# lines that end a finding's excerpt (kept in the excerpt)
_END = re.compile(r"---\[ end (trace|Kernel panic)|^={20,}$")
# lines that start the next report (not kept in the open excerpt)
_BOUNDARY = re.compile(r"^-+\[ cut here \]-+$")


@dataclass
class Finding:
    kind: str
    title: str            # the header line (without the time prefix)
    line: int             # 1-based line number of the header in the console text
    excerpt: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        return "\n".join(self.excerpt)


def normalize(text: str) -> list[str]:
    """Console text as lines: CRLF to LF, escape sequences dropped."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.split("\n")


def strip_ts(line: str) -> str:
    return _TS.sub("", line, count=1)


def is_kernel_line(line: str) -> bool:
    return bool(_TS.match(line))


def classify(line: str) -> str | None:
    body = strip_ts(line)
    for kind, pat in HEADERS:
        if pat.search(body):
            return kind
    return None


def structured(text: str) -> list[dict]:
    """Every ``MIGFUZZ {...}`` object on the console, in order."""
    out = []
    for line in normalize(text):
        i = line.find(PREFIX + "{")
        if i < 0:
            continue
        payload = line[i + len(PREFIX):].strip()
        try:
            obj = json.loads(payload)
        except ValueError:
            # trailing kernel output on the same line: cut at the last closing brace
            j = payload.rfind("}")
            try:
                obj = json.loads(payload[:j + 1]) if j >= 0 else None
            except ValueError:
                obj = None
        if isinstance(obj, dict):
            out.append(obj)
        else:
            out.append({"garbled": payload[:500]})
    return out


def findings(text: str) -> list[Finding]:
    """Every kernel finding on the console, each with its excerpt, in console order.

    A header inside an open excerpt (``BUG: unable to handle page fault`` then ``Oops:``, a
    KASAN report's own ``BUG:``) belongs to it, except a ``Kernel panic`` or a new KASAN /
    hung-task / lockup report, which starts its own finding."""
    lines = normalize(text)
    out: list[Finding] = []
    cur: Finding | None = None
    user_run = 0
    own_start = {"panic", "kasan", "hung_task", "soft_lockup", "rcu_stall", "hard_lockup",
                 "bad_page", "warning"}
    for n, line in enumerate(lines, 1):
        kind = classify(line) if (PREFIX + "{") not in line else None
        if kind and _END.search(strip_ts(line)):
            kind = None             # "---[ end Kernel panic ...": a closing line, no header
        if cur is not None:
            ends_here = bool(_END.search(strip_ts(line)))
            if ends_here and is_kernel_line(line):
                cur.excerpt.append(strip_ts(line))
                cur = None
                continue
            if _BOUNDARY.search(strip_ts(line).strip()):
                cur = None
                continue
            if kind and (kind in own_start or cur.kind == "warning") and n != cur.line:
                cur = None          # a new report starts; the open one ends before it
            elif not is_kernel_line(line) and line.strip() and not kind:
                # user-space output: interleaved (skip it) or the report is over
                user_run += 1
                if user_run >= 3:
                    cur = None
                continue
            else:
                user_run = 0
                if len(cur.excerpt) < MAX_EXCERPT:
                    cur.excerpt.append(strip_ts(line))
                continue
        if kind:
            cur = Finding(kind=kind, title=strip_ts(line).strip(), line=n,
                          excerpt=[strip_ts(line)])
            user_run = 0
            out.append(cur)
    # drop trailing blank lines from excerpts
    for f in out:
        while f.excerpt and not f.excerpt[-1].strip():
            f.excerpt.pop()
    return out


def last_lines(text: str, n: int = 40) -> list[str]:
    lines = [ln for ln in normalize(text) if ln.strip()]
    return lines[-n:]
