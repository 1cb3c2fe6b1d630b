"""One numbering, one renderer (issue 11, item 28): `migfuzz show` and the pytest file
`migfuzz export` writes print the same interleaving, rows numbered by the steps they hold,
every step once, from 0 as the trace, the audit log and the dashboard number them."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from migfuzz.render import interleaving


def _migfuzz(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("migfuzz"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _block(text: str) -> list[str]:
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("interleaving"))
    out = []
    for line in lines[i:]:
        if not line.strip() or line.startswith('"""'):
            break
        out.append(line)
    return out


def _steps_held(block: list[str]) -> list[int]:
    held = []
    for line in block[3:]:
        a, _, b = line.split()[0].partition("-")
        held += list(range(int(a), int(b or a) + 1))
    return held


def test_show_and_export_render_the_same_interleaving(filled_db, tmp_path):
    for sig in filled_db["bugs"][:4]:
        show = _migfuzz("show", sig, "--db", filled_db["url"])
        assert show.returncode == 0, show.stderr
        out = tmp_path / f"{sig}.py"
        exp = _migfuzz("export", sig, "--db", filled_db["url"], "-o", str(out))
        assert exp.returncode == 0, exp.stderr
        shown, exported = _block(show.stdout), _block(out.read_text())
        assert shown == exported, (sig, shown, exported)
        steps = int(re.search(r"on \S+: (\d+) steps", show.stdout).group(1))
        assert _steps_held(shown) == list(range(steps)), sig


def test_rows_do_not_depend_on_who_renders():
    trace = [(0, "a:" + "x" * 20, None)] * 5 + [(1, "b", None)] * 3 + [(0, "c", None)]
    text = interleaving(["cpu0", "cpu1"], trace, marks=[1, 8])
    lines = text.splitlines()
    assert _steps_held(["", *lines]) == list(range(len(trace)))
    assert "*c*" in lines[-1] and lines[-1].startswith("8 ")
    assert lines[-2].startswith("5-7 ")
    # a site longer than the column widens the columns instead of pushing the next one
    long = [(0, "s" * 60, None), (1, "t", None)]
    rows = interleaving(["cpu0", "cpu1"], long).splitlines()
    assert rows[3].index("t") == rows[0].index("cpu1")
