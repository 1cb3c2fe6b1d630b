"""A lenient replay (another variant) whose schedule stops fitting says where, carries on
under a fair, named continuation, and never reports what the continuation found as the
schedule's finding. Before this, the continuation kept the current actor while it could
run: on v6.1 a CPU spinning on the device page ran to the step limit and the replay of the
v5.16 use-after-free printed an invented 'HANG: no end within 20000 steps'."""
from __future__ import annotations

import json
import subprocess
import sys

from migfuzz.corpus import input as inputs
from migfuzz.fuzzer.execute import replay

# the minimized v5.16 dp-fault-race reproducer a 3000-execution campaign stored
SCENARIO = {
    "name": "dp-fault-race-min", "kind": "concurrency",
    "description": "two CPUs fault the same device-private page back to RAM while the "
                   "device evicts",
    "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 1}]}],
    "layout": [{"mm": "A", "start": 0, "npages": 1, "state": "device"}],
    "actors": [{"name": "cpu0", "program": [{"op": "read", "mm": "A", "start": 0, "npages": 1}]},
               {"name": "cpu1", "program": [{"op": "read", "mm": "A", "start": 0, "npages": 1}]}]}
SCHEDULE = [[1, 3], [0, 12]]


def test_the_reproducer_replays_exactly_on_its_own_variant():
    r = replay(SCENARIO, "v5.16", SCHEDULE)
    assert r.diverged is None
    assert [f.kind for f in r.schedule_findings()] == ["USE_AFTER_FREE"]


def test_on_v61_the_divergence_is_reported_and_no_hang_is_invented():
    r = replay(SCENARIO, "v6.1", SCHEDULE, strict=False)
    assert r.diverged_step == 15 and "diverged at step 15" in r.diverged
    assert not any(f.kind == "HANG" for f in r.findings), [f.title for f in r.findings]
    assert r.steps < 1000                      # the continuation is fair: the run ends


def test_what_the_continuation_finds_is_not_the_schedules():
    r = replay(SCENARIO, "v5.15", SCHEDULE, strict=False)
    assert r.diverged_step == 15
    later = [f for f in r.findings if f.step >= r.diverged_step]
    assert later and all(f not in r.schedule_findings() for f in later)


def test_replay_cli_on_another_variant_says_diverged_not_a_finding(tmp_path):
    path = tmp_path / "uaf.json"
    path.write_text(inputs.dumps(inputs.make(SCENARIO, "v5.16", SCHEDULE)))
    p = subprocess.run([sys.executable, "-m", "migfuzz", "replay", str(path), "--variant",
                        "v6.1", "--json"], capture_output=True, text=True, timeout=120)
    out = json.loads(p.stdout)
    assert out["findings"] == [] and out["diverged_step"] == 15
    assert out["after_divergence"]["continued_with"].startswith("random walk")
    p = subprocess.run([sys.executable, "-m", "migfuzz", "replay", str(path), "--variant",
                        "v6.1"], capture_output=True, text=True, timeout=120)
    assert "HANG" not in p.stdout and "diverged at step 15" in p.stdout, p.stdout
