"""A swap-cache page that a fork child swapped in first is shared: the parent's write fault
on its own swap entry (now the slot's last user) must copy, not map the page writable
(reuse_swap_page in v5.15/v5.16, the exclusive-or-sole-reference test in v6.1). The model
once mapped it writable, and the fuzzer reported the child seeing the parent's write as a
LOST_WRITE on v6.1 (a generated scenario: fork, gup_fast, a write, two migrations)."""
from __future__ import annotations

import pytest

from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RandomWalk

SCENARIO = {
    "name": "swap-cow-after-fork", "kind": "test",
    "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 1}]}],
    "layout": [{"mm": "A", "start": 0, "npages": 1, "state": "swapped", "value": 7}],
    "actors": [{"name": "task", "program": [
        {"op": "fork", "mm": "A", "child": "B"},
        {"op": "read", "mm": "B", "start": 0, "npages": 1},      # the child swaps it in
        {"op": "write", "mm": "A", "start": 0, "npages": 1, "value": 99},
        {"op": "read", "mm": "B", "start": 0, "npages": 1},
        {"op": "read", "mm": "A", "start": 0, "npages": 1}]}],
}


@pytest.mark.parametrize("variant", ["v5.15", "v5.16", "v6.1"])
def test_parent_write_after_child_swapin_copies(variant):
    r = execute(SCENARIO, variant, RandomWalk(0))
    assert r.findings == []
    k = r.kernel
    a, b = k.mms["A"].pte(0), k.mms["B"].pte(0)
    assert a[1] is not b[1]                       # two pages now
    assert (a[1].data, b[1].data) == (99, 7)
    assert a[2] and not b[2]                      # the parent's copy is writable
