"""H2b on the real 7.2.13 kernel (docs/kernel-h2b.md): the enforced plan gives the
use-after-free (kernel BUG in folio_get on the freed old head page), the fix kernel with the
same program and plan gives none.

Marked ``kernel``. Needs the 7.2 kernels (``kernels/ci-lane.sh 7.2``: the mf_sched kernel
cold, the fix kernel seeded from it; ``make test`` builds them). With MIGFUZZ_KERNEL_LANE=1
(``make test``) a missing kernel FAILS this test; a hand-run pytest without the lane skips it.
~3 min under TCG (4 boots).
"""
from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("MIGFUZZ_KERNEL_LANE") == "1"


def _kernels_or_skip():
    from migfuzz.kernels.build import cached_kernel
    from migfuzz.kernels.h2b import ARMS
    have = all(cached_kernel("7.2", "base", ARMS[a]) for a in ("enforced", "fix"))
    if not have and not REQUIRED:
        pytest.skip("7.2 kernels not built here (kernels/ci-lane.sh 7.2, or make test); "
                    "set MIGFUZZ_KERNEL_LANE=1 to require them")


@pytest.mark.kernel
def test_h2b_enforced_hits_and_the_fix_does_not():
    _kernels_or_skip()
    from migfuzz.kernels.h2b import run_arm
    quiet = lambda m: None      # noqa: E731
    bug = run_arm("enforced", boots=2, log=quiet)
    fixed = run_arm("fix", boots=2, log=quiet)
    for r in (bug, fixed):
        for t in r["trials"]:
            # the setup really was a pte-mapped large folio, and the plan really held
            assert t["events"]["pte_mapped_ok"] >= 1 or t["events"]["iterations_done"] == 1
            assert t["events"]["counters"] == "holds 1 released 1 timeouts 0", t
    assert bug["hits"] == 2, [t["findings"] for t in bug["trials"]]
    for t in bug["trials"]:
        assert any(k == "bug" and "include/linux/mm.h" in title
                   for k, title in t["findings"]), t["findings"]
        assert any("VM_BUG_ON_FOLIO" in line or "folio_get" in line for line in t["excerpt"])
    assert fixed["hits"] == 0, [t["findings"] for t in fixed["trials"]]
    for t in fixed["trials"]:
        assert t["events"]["rc"] == 0 and not t["events"]["stuck"]
