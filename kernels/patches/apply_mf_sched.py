"""Instrument a copy of mm/migrate_device.c with migfuzz schedule points.

    python kernels/patches/apply_mf_sched.py SRC/mm/migrate_device.c OUT.c

Writes OUT.c: the original with a declaration of ``mf_sched_point()``, calls at the model's
sites of the THP branch of ``migrate_vma_collect_pmd()`` (``collect_pmd:got`` after the
reference is taken and the pmd lock dropped; ``collect_pmd:locked`` after a successful
trylock, before the split), and ``mf_sched.c`` appended (a debugfs control, see there).
Anchors are single statements; a source where one is missing or not unique is refused.
Works on 6.1 (``get_page``/``split_huge_page``) and 6.12 (``folio_get``/``split_folio``).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (pattern matching one statement line, what to insert after it)
SITES = [
    (r"^(\s*)#include \"internal\.h\"\n", "void mf_sched_point(const char *site);\n"),
    (r"^(\s*)(get_page\(page\)|folio_get\(folio\));\n\s*spin_unlock\(ptl\);\n",
     '{indent}mf_sched_point("collect_pmd:got");\n'),
]
# inserted before the split in the THP branch (after the trylock succeeded)
BEFORE = [(r"^(\s*)ret = (split_huge_page\(page\)|split_folio\(folio\));\n",
           '{indent}mf_sched_point("collect_pmd:locked");\n')]


def instrument(text: str) -> str:
    # SITES insert after their anchor, BEFORE in front of it
    for anchors, after in ((SITES, True), (BEFORE, False)):
        for pat, ins in anchors:
            ms = list(re.finditer(pat, text, re.M))
            if len(ms) != 1:
                raise SystemExit(f"anchor {pat!r}: found {len(ms)} times, expected once")
            m = ms[0]
            at = m.end() if after else m.start()
            text = text[:at] + ins.format(indent=m.group(1)) + text[at:]
    return text + "\n" + (HERE / "mf_sched.c").read_text()


if __name__ == "__main__":
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(instrument(src.read_text()))
