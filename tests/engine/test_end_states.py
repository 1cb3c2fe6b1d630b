"""End states match the kernel's (kernel-model.md 2.9): after an uncontended migration the
new page has the kernel's refcount and mapcount and the old page is free; after a failed one
the old page is exactly as it started. For every variant."""
import pytest

from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.kernel.state import DEVICE, PRESENT
from migfuzz.fuzzer.scheduler import RoundRobin

VARIANTS = ["v5.15", "v5.16", "v6.1", "blocking-lock"]


def run(program, variant, layout_state="present", allowed=()):
    sc = {"name": "one-page", "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 1}]}],
          "layout": [{"mm": "A", "start": 0, "npages": 1, "state": layout_state, "value": 7}],
          "actors": [{"name": "t", "program": program}]}
    r = execute(sc, variant, RoundRobin())
    assert [f.title for f in r.findings] == list(allowed)
    return r.kernel, r.kernel.mms["A"]


def snapshot(page):
    return (page.refcount, page.mapcount, page.lru, page.isolated, page.locked_by,
            page.mapping, page.data, page.free, sorted(
                (k, len(v)) for k, v in page.refs.items() if v))


MIGRATE = {"op": "migrate", "mm": "A", "start": 0, "npages": 1}


@pytest.mark.parametrize("variant", VARIANTS)
def test_system_to_device_success(variant):
    k, mm = run([MIGRATE], variant)
    old = k.pages[min(p for p in k.pages if not k.pages[p].device)]
    kind, new, write, _ = mm.pte(0)
    assert kind == DEVICE and new.device == "dev0" and write
    assert old.free and old.refcount == 0
    base = 0 if k.sw.dp_idle_zero else 1          # v6.1: idle device pages have refcount 0
    assert (new.refcount, new.mapcount, new.locked_by, new.data) == (base + 1, 1, None, 7)


@pytest.mark.parametrize("variant", VARIANTS)
def test_device_to_system_by_fault(variant):
    k, mm = run([MIGRATE, {"op": "read", "mm": "A", "start": 0, "npages": 1}], variant)
    kind, new, _, _ = mm.pte(0)
    assert kind == PRESENT and not new.device
    # "the new page ends refcount 1, mapcount 1, on the LRU"
    assert (new.refcount, new.mapcount, new.lru, new.locked_by, new.data) == (1, 1, True, None, 7)
    dev = [p for p in k.pages.values() if p.device]
    assert all(p.free for p in dev), "the device page went back to the driver's pool"
    assert all(p.refcount == (0 if k.sw.dp_idle_zero else 1) for p in dev)


@pytest.mark.parametrize("variant", VARIANTS)
def test_failed_migration_leaves_the_page_as_it_started(variant):
    """A pinned page fails check_page and is restored exactly."""
    pin = {"op": "pin", "mm": "A", "start": 0, "npages": 1}
    held = ["REFCOUNT_LEAK: pin reference taken at gup:pin was never dropped"]
    k0, mm0 = run([pin], variant, allowed=held)
    before = snapshot(mm0.pte(0)[1])
    pte_before = mm0.pte(0)[:1] + mm0.pte(0)[2:]
    k, mm = run([pin, MIGRATE], variant, allowed=held)
    page = mm.pte(0)[1]
    assert snapshot(page) == before
    assert mm.pte(0)[:1] + mm.pte(0)[2:3] == pte_before[:2]   # present, writable again
    assert page.refcount == 2 and page.mapcount == 1 and page.lru   # mapping + pin
    # The dirty state: the pte was dirty before. v6.1 moved the bit to the page
    # (fd35ca3d12cc); v5.15/v5.16 dropped it in collect, the root of the dirty-page bug.
    assert mm0.pte(0)[3] and not mm0.pte(0)[1].dirty
    still_dirty = page.dirty or mm.pte(0)[3]
    assert still_dirty == k.sw.dirty_to_page


@pytest.mark.parametrize("variant", VARIANTS)
def test_hole_becomes_a_device_page(variant):
    k, mm = run([MIGRATE, {"op": "read", "mm": "A", "start": 0, "npages": 1}], variant,
                layout_state="none")
    kind, page, _, _ = mm.pte(0)
    assert kind == PRESENT and page.data == 0 and page.refcount == 1 and page.mapcount == 1
