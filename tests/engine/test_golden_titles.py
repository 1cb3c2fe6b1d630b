"""Golden titles and signatures for every finding kind, as syzkaller keeps crash-report
fixtures: a fixed input yields a fixed title and signature. A change here is a change in
how bugs are bucketed across stored campaigns; update deliberately with
MIGFUZZ_UPDATE_GOLDEN=1 and bump fuzzer.ENGINE_VERSION."""
import json
import os
from pathlib import Path

import pytest

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.search.lockgraph import LockGraph
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin
from migfuzz.fuzzer.kernel.state import Kernel
from mutations import break_method, isolate_without_flag, negative_mapcount, skip_restore

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_findings.json")


def regression(name):
    inp = inputs.load(str(ROOT / "tests" / "regressions" / f"{name}.json"))
    return replay(inp["scenario"], inp["variant"], inp["schedule"]).findings


def engine(scenario, variant):
    return execute(scenario if isinstance(scenario, dict) else get_scenario(scenario),
                   variant, RoundRobin()).findings


def one_mm(program):
    return {"name": "golden", "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 2}]}],
            "layout": [{"mm": "A", "start": 0, "npages": 2}],
            "actors": [{"name": "t", "program": program}]}


def potential_deadlock():
    g = LockGraph()
    sc = get_scenario("cross-mm-opposite")
    out = []
    for seed in range(200):
        r = execute(sc, "blocking-lock", RandomWalk(seed))
        if not r.findings:
            out += g.add(sc["name"], r.lock_edges)
    return out


MIGRATE2 = {"op": "migrate", "mm": "A", "start": 0, "npages": 2}
CASES = {
    "deadlock": lambda mp: regression("blocking-lock__cross-mm-opposite"),
    "lost_write_dirty_bit": lambda mp: regression("v5.16__dirty-page"),
    "lost_write_stale_tlb": lambda mp: regression("v5.16__madvise-race"),
    "use_after_free": lambda mp: regression("v5.16__dp-fault-race"),
    "lock_leak": lambda mp: (break_method(mp, "unlock", "finalize:unlock_old"),
                             engine("migrate", "v5.16"))[1],
    "bad_unlock": lambda mp: (break_method(mp, "unlock", "finalize:unlock_old", 2),
                              engine("migrate", "v5.16"))[1],
    "refcount_leak": lambda mp: (break_method(mp, "put", "unmap:put_collect_ref"),
                                 engine("migrate", "v5.16"))[1],
    "refcount_underflow": lambda mp: (break_method(mp, "put", "finalize:put_new", 2),
                                      engine("migrate", "v5.16"))[1],
    "lru_leak": lambda mp: (break_method(mp, "putback_lru_page", "finalize:putback_old"),
                            engine("gup-pin", "v5.16"))[1],
    "stale_migration_entry": lambda mp: (
        skip_restore(mp), mp.setattr(Kernel, "migration_entry_of", lambda self, p: None),
        engine(one_mm([dict(MIGRATE2, fail_alloc=[1])]), "v5.16"))[2],
    "vm_bug_on": lambda mp: (skip_restore(mp), engine(
        one_mm([dict(MIGRATE2, fail_alloc=[1])]), "v5.16"))[1],
    "assertion": lambda mp: (isolate_without_flag(mp), engine("migrate", "v6.1"))[1],
    "lost_write_gup_pin": lambda mp: (
        break_method(mp, "get", "gup:pin"),
        mp.setattr(Kernel, "assert_move", lambda self, *a: None),
        engine("gup-pin", "v6.1"))[2],
    "hang": lambda mp: engine(dict(get_scenario("overlap-2"), max_steps=100), "v5.16"),
    "unexpected_result": lambda mp: engine(one_mm([dict(MIGRATE2, expect={"migrated": 3})]),
                                           "v6.1"),
    "potential_deadlock": lambda mp: potential_deadlock(),
    "model_error": lambda mp: (negative_mapcount(mp), engine("migrate", "v5.16"))[1],
    "bad_mapcount": lambda mp: (break_method(mp, "map_inc", "finalize:remove_migration_ptes"),
                                engine(one_mm([MIGRATE2]), "v6.1"))[1],
}


def observed(monkeypatch, case):
    return [{"kind": f.kind, "title": f.title, "signature": f.signature}
            for f in CASES[case](monkeypatch)]


def test_every_kind_has_a_golden_case():
    from migfuzz.fuzzer.findings import KINDS
    golden = json.loads(GOLDEN.read_text())
    seen = {f["kind"] for case in golden.values() for f in case}
    assert set(KINDS) <= seen
    assert set(golden) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(monkeypatch, case):
    got = observed(monkeypatch, case)
    assert got, f"{case}: no finding"
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("MIGFUZZ_UPDATE_GOLDEN"):
        golden[case] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert golden.get(case) == got
