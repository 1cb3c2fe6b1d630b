"""Migration by pfn (migrate_device_range, dmirror_device_evict_chunk) as an actor: no vma
walk and no PTL, a reference and a trylock per pfn, the rmap for the mappings."""
import json
from pathlib import Path

import pytest

from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.kernel.state import DEVICE, PRESENT
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin

ROOT = Path(__file__).resolve().parents[2]
RACE = json.loads((ROOT / "corpus/scenarios/evict-pfns-race.json").read_text())


def _alone():
    sc = json.loads(json.dumps(RACE))
    sc["name"] = "evict-alone"
    sc["actors"] = [{"name": "evict", "program": [{"op": "evict_pfns"}]}]
    return sc


@pytest.mark.parametrize("variant", ["6.1.192", "6.12.117", "mainline"])
def test_eviction_alone_brings_every_page_home_through_every_mapping(variant):
    r = execute(_alone(), variant, RoundRobin())
    assert not r.findings, [f.title for f in r.findings]
    k = r.kernel
    a, b = k.mms["A"], k.mms["B"]
    for vpn in range(3):
        pte = a.pte(vpn)
        assert pte[0] == PRESENT and not pte[1].device
        assert pte[1].data == 100 + vpn          # the layout's values, copied
    # the page shared with B was found through the rmap: both map the one new page
    assert b.pte(0)[0] == PRESENT and b.pte(0)[1] is a.pte(2)[1]
    assert a.pte(2)[1].mapcount == 2
    dev = k.devices["dev0"]
    assert len(dev.free_list) == len(dev.pages)
    assert "pfn:free" in r.branches               # 3 of the 6 pfns were free: skipped


def test_a_fault_holding_the_folio_makes_the_pfn_trylock_fail():
    # mainline's do_swap_page holds the device folio's lock across migrate_to_ram
    # (1afaeb8293c9): migrate_device_range's trylock loses and skips that pfn
    seen = 0
    for seed in range(300):
        r = execute(RACE, "mainline", RandomWalk(seed), seed=seed)
        assert not r.findings, (seed, [f.title for f in r.findings])
        if "pfn:trylock_fail" in r.branches:
            locks = [row for row in r.kernel.audit if row[2] == "fault:dp_trylock"]
            seen += bool(locks)
    assert seen


@pytest.mark.parametrize("variant", ["6.1.192", "6.12.117", "mainline"])
def test_the_race_leaves_nothing_behind(variant):
    for seed in range(300):
        r = execute(RACE, variant, RandomWalk(seed), seed=seed)
        assert not r.findings, (seed, [f.title for f in r.findings])
        # whoever won, no device-private entry points at a freed device page and every
        # address reads its value back (the end-state oracles checked it); the
        # eviction ran to its end
        k = r.kernel
        for mm in k.mms.values():
            for pte in mm.ptes.values():
                assert not (pte[0] == DEVICE and pte[1].free)


def test_the_pfn_lock_takes_no_page_table_lock():
    r = execute(_alone(), "mainline", RoundRobin())
    sites = [site for _, site, _ in r.trace]
    first_unmap = sites.index("unmap:page")
    # before migrate_device_unmap: only the per-pfn lock, no walk and no PTL
    assert set(sites[1:first_unmap]) <= {"evict_chunk:start", "pfn:lock"}
    ptl = [row for row in r.kernel.audit if row[2].startswith("pfn:")]
    assert {row[4] for row in ptl} <= {"+migrate", "-migrate", "lock"}
