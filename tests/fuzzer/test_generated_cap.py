"""The generated-scenario cap: a generated scenario that gains coverage after the pool is
full must not leave a corpus entry naming a scenario nobody can resolve (a 20-60 s stored
campaign crashed with KeyError 'gen-...' in the recorder before this was fixed)."""
from __future__ import annotations

import json
import subprocess
import sys

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop

SCS = [get_scenario(n) for n in scenario_names("concurrency") + scenario_names("known-bug")]


def test_a_full_pool_refuses_new_scenarios_and_no_entry_names_one():
    loop = FuzzLoop(FuzzConfig("v5.16", SCS, max_generated=1), 3)
    named, joined = set(), []
    for _ in range(12):
        rep = loop.run_batch(250)
        named |= {e.scenario for e in rep.new_entries}
        joined += [sc["name"] for sc in rep.new_scenarios]
    generated = [s for s in loop.pool.values() if s.generated]
    assert len(generated) == 1 and joined == [generated[0].name]
    # the cap was reached and then refused scenarios that would have gained coverage
    assert loop.stats()["scenarios_refused"] > 0
    assert named <= set(loop.pool), named - set(loop.pool)


def test_a_stored_campaign_past_the_cap_runs_to_its_end(tmp_path):
    """The user's command, with a cap small enough to be reached in seconds."""
    db = f"sqlite:///{tmp_path}/cap.db"
    p = subprocess.run(
        [sys.executable, "-m", "migfuzz", "fuzz", "--workers", "0", "--variant", "v5.16",
         "--execs", "3000", "--seed", "9", "--max-generated-scenarios", "1",
         "--no-minimize", "--out", str(tmp_path / "r"), "--db", db, "--json"],
        capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    out = json.loads(p.stdout)
    assert out["stats"]["scenarios_refused"] > 0
    assert out["store"]["executions"] == 3000
