"""The selftests' "every page moves" as an invariant of every execution (issue 13 item 4):
a migration that runs alone over idle pages must move all of them, whatever scenario
the fuzzer generated. Injected: an LRU drain that never reaches CPU 1's batch (what
lru_add_drain_all missing a CPU does), so a page faulted in there cannot be isolated;
the migration then fails for a reason no user could see, and nothing else noticed."""
from __future__ import annotations

from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.kernel.state import Kernel
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin

# w faults A's pages in on CPU 1 (they wait in its LRU batch) and ends; m, on CPU 0,
# reads C for a while and then migrates A, by then alone
SCENARIO = {
    "name": "idle-after-other-cpu",
    "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 2}]},
            {"name": "C", "vmas": [{"start": 0, "npages": 1}]}],
    "layout": [{"mm": "C", "start": 0, "npages": 1}],
    "actors": [
        {"name": "w", "cpu": 1, "program": [{"op": "write", "mm": "A", "start": 0,
                                             "npages": 2}]},
        {"name": "m", "cpu": 0, "program": [
            {"op": "read", "mm": "C", "start": 0, "npages": 1, "repeat": 20},
            {"op": "migrate", "mm": "A", "start": 0, "npages": 2}]},
    ],
}


def _cpu1_never_drained(monkeypatch):
    orig = Kernel.lru_add_drain

    def broken(self, cpu):
        if cpu != 1:
            orig(self, cpu)
    monkeypatch.setattr(Kernel, "lru_add_drain", broken)


def test_an_idle_page_left_behind_is_a_finding(monkeypatch):
    _cpu1_never_drained(monkeypatch)
    r = execute(SCENARIO, "v6.1", RoundRobin(), check=False)
    f = [f for f in r.findings if f.kind == "UNEXPECTED_RESULT"]
    assert f and f[0].title == (
        "UNEXPECTED_RESULT: an idle page at A#0 was not migrated by a migration that ran "
        "alone (hmm-tests: every page moves); its path: unmap:lru_add_drain_all > "
        "unmap:isolate:busy > unmap:isolate_fail > unmap:restore"), [g.title for g in r.findings]
    assert f[0].sites == ("idle-not-migrated", "unmap:restore")


def test_a_correct_kernel_moves_every_idle_page():
    for seed in range(200):
        r = execute(SCENARIO, "v6.1", RandomWalk(seed), seed=seed, check=False)
        assert not r.findings, (seed, [f.title for f in r.findings])
    assert execute(SCENARIO, "v6.1", RoundRobin()).migrated == 2
