"""Replay is exact: a saved input replayed in a fresh process with another PYTHONHASHSEED
gives the same trace hash and findings; a schedule that no longer fits says where."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.scheduler.controlled import Diverged
from migfuzz.fuzzer.scheduler import RandomWalk
from migfuzz.fuzzer.scheduler.replay import rle_decode, rle_encode

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = sorted((ROOT / "tests" / "regressions").glob("*.json"))

CHILD = r"""
import json, sys
from migfuzz.corpus import input as inputs
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.scheduler import RandomWalk
out = []
for inp in json.load(sys.stdin):
    inputs.check(inp)
    r = replay(inp["scenario"], inp["variant"], inp["schedule"])
    s = execute(inp["scenario"], inp["variant"], RandomWalk(inp["seed"]))
    out.append([r.trace_hash, [f.signature for f in r.findings], s.trace_hash])
json.dump(out, sys.stdout)
"""


def in_fresh_process(batch, hashseed):
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(batch), text=True,
                         capture_output=True, env=env, cwd=ROOT, check=True).stdout
    return json.loads(out)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.sampled_from(scenario_names()), min_size=1, max_size=4),
       variant=st.sampled_from(["v5.15", "v5.16", "v6.1", "blocking-lock"]),
       seed=st.integers(0, 2**31), hashseed=st.integers(1, 4000))
def test_replay_is_deterministic_across_processes_and_hash_seeds(names, variant, seed,
                                                                   hashseed):
    """Determinism property: same input, same trace, whatever PYTHONHASHSEED the replaying
    process has; and the seed alone regenerates the same schedule."""
    batch, want = [], []
    for i, name in enumerate(names):
        sc = get_scenario(name)
        r = execute(sc, variant, RandomWalk(seed + i), seed=seed + i)
        batch.append(inputs.make(sc, variant, r.schedule, strategy="random", seed=seed + i))
        want.append([r.trace_hash, [f.signature for f in r.findings], r.trace_hash])
    assert in_fresh_process(batch, hashseed) == want


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_regression_inputs_reproduce(path):
    inp = inputs.load(str(path))
    r = replay(inp["scenario"], inp["variant"], inp["schedule"])
    assert r.trace_hash == inp["result"]["trace_hash"]
    assert [f.signature for f in r.findings] == [f["signature"] for f in inp["result"]["findings"]]
    assert r.findings, "a regression input must still find its bug"


def test_regression_set_covers_the_ground_truth():
    stems = {p.stem for p in REGRESSIONS}
    assert {"blocking-lock__cross-mm-opposite", "v5.15__dirty-page", "v5.16__dirty-page",
            "v5.15__madvise-race", "v5.16__madvise-race", "v5.15__dp-fault-race",
            "v5.16__dp-fault-race", "v5.15__thp-collect-race", "v5.16__thp-collect-race",
            "v6.1__thp-collect-race"} <= stems


# bugs that no release fixed: their schedules replay clean only with the hypothetical fix
# bugs with no fixed release in the presets: replayed with the fix's switch instead
# (mainline's: the fixes the write-ups in bench/results/hypotheses.md propose, and
# b570f37a2ce4 for the drain livelock)
UNFIXED = {"thp-collect-race": "+thp_skip_put",
           "h2-split-window": "-collect_split_folio",
           "h2-split-uaf": "+split_folio_get_first",
           "migrate-swapcache": "+refresh_mapping",
           "drain-livelock": "+dp_fault_waits"}


def test_regressions_do_not_reproduce_on_v61():
    """The same schedules, replayed leniently on v6.1 (where the fixed code paths make
    some diverge), find nothing; an unfixed bug's, on its variant with the fix switch."""
    for path in REGRESSIONS:
        inp = inputs.load(str(path))
        fix = UNFIXED.get(inp["scenario"]["name"])
        variant = inp["variant"] + fix if fix else "v6.1"
        r = replay(inp["scenario"], variant, inp["schedule"], strict=False)
        assert not r.findings, (path.name, [f.title for f in r.findings])


def test_lenient_replay_reports_where_it_diverged():
    inp = inputs.load(str(ROOT / "tests/regressions/v5.16__madvise-race.json"))
    r = replay(inp["scenario"], "v6.1", inp["schedule"], strict=False)
    assert r.diverged and r.diverged.startswith("schedule diverged at step ")
    same = replay(inp["scenario"], inp["variant"], inp["schedule"], strict=False)
    assert same.diverged is None and same.trace_hash == inp["result"]["trace_hash"]


def test_diverging_schedule_names_the_step():
    sc = get_scenario("overlap-2")
    r = execute(sc, "v5.16", RandomWalk(3))
    choices = rle_decode(r.schedule)
    assert len(choices) > 20
    bad = list(choices)
    bad[10] = 7                                   # no such actor: never enabled
    with pytest.raises(Diverged, match="the schedule runs #7, but only") as e:
        replay(sc, "v5.16", rle_encode(bad))
    assert 10 <= e.value.step < r.steps
    with pytest.raises(Diverged, match="schedule ended after 10 steps"):
        replay(sc, "v5.16", rle_encode(choices[:10]))
    with pytest.raises(Diverged, match="has 2 more step"):
        replay(sc, "v5.16", rle_encode(choices + [0, 0]))


def test_rle_round_trip():
    assert rle_decode(rle_encode([0, 0, 1, 2, 2, 2, 0])) == [0, 0, 1, 2, 2, 2, 0]
    assert rle_encode([1, 1, 0]) == [[1, 2], [0, 1]]
