"""collect makes the zero page a hole only for a caller that selects system memory (every
release read: v5.15 skips non-device ptes before the zero-pfn test without
MIGRATE_VMA_SELECT_SYSTEM; 6.1.192, 6.12.117 and mainline test "is_zero_pfn(pfn) &&
SELECT_SYSTEM"). The device fault's migrate_to_ram selects device-private pages only and
must skip it; the model used to count it as a hole to fill."""
import pytest

from migfuzz.fuzzer.kernel import collect
from migfuzz.fuzzer.kernel.migrate_vma import MIGRATE, MigrateVma
from migfuzz.fuzzer.kernel.variants import VARIANTS
from migfuzz.fuzzer.scenario import build, validate

SC = validate({"name": "zero", "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 2}]}],
               "layout": [{"mm": "A", "start": 0, "npages": 1, "state": "zero"}],
               "actors": [{"name": "t", "program": [{"op": "read", "mm": "A", "start": 0,
                                                     "npages": 1}]}]})


def _collect(variant: str, select_system: bool) -> list[int]:
    k = build(SC, VARIANTS[variant][0]).kernel
    mm = k.mms["A"]
    m = MigrateVma(mm, mm.vma_at(0), 0, 2, select_system=select_system,
                   select_device=not select_system, owner="dev0")
    m.src_page, m.src = [None] * 2, [0] * 2
    m.dst_page, m.dst = [None] * 2, [0] * 2
    for _ in collect._collect_ptes(k, m, 0, 2):
        pass
    return m.src


@pytest.mark.parametrize("variant", ["v5.15", "6.1.192", "6.12.117", "mainline"])
def test_the_zero_page_is_a_hole_only_when_system_memory_is_selected(variant):
    zero, empty = _collect(variant, select_system=True)
    assert zero & MIGRATE and empty & MIGRATE
    zero, empty = _collect(variant, select_system=False)
    assert not zero & MIGRATE          # skipped: migrate_to_ram never fills it
    assert empty & MIGRATE             # an empty anonymous pte is a hole for every caller
