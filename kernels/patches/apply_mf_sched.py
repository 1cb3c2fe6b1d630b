"""Instrument a copy of mm/migrate_device.c with migfuzz schedule points.

    python kernels/patches/apply_mf_sched.py SRC/mm/migrate_device.c OUT.c

Writes OUT.c: the original with a declaration of ``mf_sched_point()``, calls at the model's
sites, and ``mf_sched.c`` appended (a debugfs control, see there).

THP branch of the pmd collection (every release):
  ``collect_pmd:got``     the folio reference is taken and the pmd lock dropped
                          (6.1/6.12: after ``get_page``/``folio_get`` + ``spin_unlock``;
                          7.2, where ``migrate_vma_collect_huge_pmd`` takes the reference and
                          the trylock under the lock: after the ``fallback:`` unlock)
  ``collect_pmd:locked``  after a successful trylock, before the split
H2b (releases with ``migrate_vma_split_folio``, i.e. 7.2; required there, absent before):
  ``collect:split_window`` in the pte loop's system-page branch, right after the
                          ``pte_unmap_unlock`` that precedes ``migrate_vma_split_folio()``:
                          no reference on the large folio is held here
  ``finalize:done``       at the end of ``migrate_vma_finalize()``, after the source folios
                          were put
Each anchor must match exactly once (alternatives are tried in order; the first one that
matches at all is the one used); a source where a required one is missing or any is not
unique is refused. 6.1/6.12 output is the same as before the H2b sites were added.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, alternative patterns, insert after the match?, the call, required?)
# ``required`` is a predicate on the source text. A pattern's group 1 is the indentation.
_ALWAYS = lambda text: True                                         # noqa: E731
_HAS_SPLIT_HELPER = lambda text: "static int migrate_vma_split_folio(" in text  # noqa: E731

SITES = [
    ("decl", [r"^(\s*)#include \"internal\.h\"\n"], True,
     "void mf_sched_point(const char *site);\n", _ALWAYS),
    ("collect_pmd:got",
     [r"^(\s*)(?:get_page\(page\)|folio_get\(folio\));\n\s*spin_unlock\(ptl\);\n",
      # 7.2: reference and trylock under the pmd lock; the lock is dropped at fallback:
      r"^fallback:\n([ \t]*)spin_unlock\(ptl\);\n"], True,
     '{indent}mf_sched_point("collect_pmd:got");\n', _ALWAYS),
    ("collect_pmd:locked",
     # 7.2 also has split_folio() in migrate_vma_split_folio(): the THP branch's one is the
     # one right after the "not large: goto done" check
     [r"(?<=goto done;\n)([ \t]*)ret = split_folio\(folio\);\n",
      r"^(\s*)ret = (?:split_huge_page\(page\)|split_folio\(folio\));\n"], False,
     '{indent}mf_sched_point("collect_pmd:locked");\n', _ALWAYS),
    ("collect:split_window",
     # the system-page branch ("folio && folio_test_large"), not the device-private one
     [r"if \(folio && folio_test_large\(folio\)\) \{\n(?:[^\n]*\n){0,4}?"
      r"([ \t]*)pte_unmap_unlock\(ptep, ptl\);\n(?=[ \t]*ret = migrate_vma_split_folio\()"],
     True, '{indent}mf_sched_point("collect:split_window");\n', _HAS_SPLIT_HELPER),
    ("finalize:done",
     [r"^([ \t]*)__migrate_device_finalize\(migrate->src, migrate->dst, migrate->npages,\n"
      r"[ \t]*migrate->fault_page\);\n"],
     True, '{indent}mf_sched_point("finalize:done");\n', _HAS_SPLIT_HELPER),
]


def find_site(text: str, name: str, patterns: list[str]) -> re.Match | None:
    """The one match of the first alternative that matches at all; None if none does.
    Raises SystemExit if that alternative matches more than once."""
    for pat in patterns:
        ms = list(re.finditer(pat, text, re.M))
        if len(ms) > 1:
            raise SystemExit(f"anchor {name} {pat!r}: found {len(ms)} times, expected once")
        if ms:
            return ms[0]
    return None


def instrument(text: str) -> str:
    # Locate every site in the ORIGINAL text, then insert from the end backwards, so one
    # insertion never shifts or creates another site's anchor.
    edits = []
    for name, patterns, after, ins, required in SITES:
        m = find_site(text, name, patterns)
        if m is None:
            if required(text):
                raise SystemExit(f"anchor {name} {patterns[-1]!r}: found 0 times, "
                                 f"expected once")
            continue
        edits.append((m.end() if after else m.start(), ins.format(indent=m.group(1))))
    for at, ins in sorted(edits, reverse=True):
        text = text[:at] + ins + text[at:]
    return text + "\n" + (HERE / "mf_sched.c").read_text()


if __name__ == "__main__":
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(instrument(src.read_text()))
