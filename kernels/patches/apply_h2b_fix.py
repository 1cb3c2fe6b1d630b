"""The H2b fix, as a source patch: ``--patch h2b_fix`` (docs/kernel-h2b.md).

    python kernels/patches/apply_h2b_fix.py SRC/mm/migrate_device.c OUT.c

``migrate_vma_collect_pmd()`` reads a large folio from a present (or device-private) pte
under the PTL, drops the PTL and only then does ``migrate_vma_split_folio()`` take a
reference: in between, nothing pins the folio, and a concurrent migration of the same range
can split it, migrate the page and free it. The fix takes the reference under the PTL and
hands it to ``migrate_vma_split_folio()``, which no longer takes its own:

  * both callers: ``folio_get(folio);`` right before ``pte_unmap_unlock(ptep, ptl);``
  * ``migrate_vma_split_folio()``: the ``folio_get(folio);`` next to ``folio_lock(folio);``
    goes; for the fault folio (its reference and lock are the fault path's, and a second
    reference would make ``split_folio()`` fail on the refcount) the caller's reference is
    dropped before the split.

Every anchor must match exactly the expected number of times, or the patch is refused.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

# (what, pattern, replacement, expected count)
EDITS = [
    ("callers: reference under the PTL",
     r"^([ \t]*)pte_unmap_unlock\(ptep, ptl\);\n(?=[ \t]*ret = migrate_vma_split_folio\()",
     r"\1folio_get(folio);\n\1pte_unmap_unlock(ptep, ptl);\n", 2),
    ("split helper: consume the caller's reference",
     r"^([ \t]*)if \(folio != fault_folio\) \{\n[ \t]*folio_get\(folio\);\n"
     r"([ \t]*)folio_lock\(folio\);\n[ \t]*\}\n",
     r"\1if (folio != fault_folio)\n\2folio_lock(folio);\n\1else\n"
     r"\2folio_put(folio);\t/* the fault path holds its own reference */\n", 1),
]


def fix(text: str) -> str:
    if "static int migrate_vma_split_folio(" not in text:
        raise SystemExit("no migrate_vma_split_folio() in this source: nothing to fix")
    for what, pat, rep, want in EDITS:
        text, n = re.subn(pat, rep, text, flags=re.M)
        if n != want:
            raise SystemExit(f"anchor {what!r}: found {n} times, expected {want}")
    return text


if __name__ == "__main__":
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(fix(src.read_text()))
