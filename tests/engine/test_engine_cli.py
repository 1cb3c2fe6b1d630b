"""The engine's command line: listings, run/--save/replay round trip, and bad input as one
clear line with exit status 2 and no traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def migfuzz(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=120)


def test_variants_and_scenarios_list_the_presets():
    out = json.loads(migfuzz("variants", "--json").stdout)
    names = [v["name"] for v in out["variants"]]
    assert names == ["v5.15", "v5.16", "v6.1", "6.1.192", "6.12.117", "mainline",
                     "blocking-lock"]
    # issue 12: the releases name the source text they follow
    desc = {v["name"]: v["description"] for v in out["variants"]}
    assert "linux-source-6.1 " in desc["6.1.192"] and "linux-source-6.12" in desc["6.12.117"]
    assert "torvalds/linux" in desc["mainline"] and "022a12deda53" in desc["mainline"]
    assert out["variants"][0]["switches"]["pfn_locked"] is True
    scs = json.loads(migfuzz("scenarios", "--json").stdout)
    assert {"overlap-2", "cross-mm-opposite", "madvise-race", "dp-fault-race", "fault-storm",
            "migrate", "dirty-page"} <= {s["name"] for s in scs}


def test_run_save_replay_round_trip(tmp_path):
    save = tmp_path / "found.json"
    r = migfuzz("run", "--scenario", "dirty-page", "--variant", "v5.16", "--count", "3",
                "--save", str(save), "--json")
    assert r.returncode == 1, r.stderr                 # 1: a finding
    out = json.loads(r.stdout)
    assert out["executions"] == 1 and out["runs"][0]["findings"][0]["kind"] == "LOST_WRITE"
    assert out["runs"][0]["trace_hash"] and out["runs"][0]["steps"] > 0
    rep = migfuzz("replay", str(save), "--json")
    assert rep.returncode == 0, rep.stderr
    got = json.loads(rep.stdout)
    assert got["reproduced"] is True and got["trace_hash"] == out["runs"][0]["trace_hash"]


def test_run_clean_exits_zero_and_trace_has_one_column_per_actor():
    r = migfuzz("run", "--scenario", "overlap-2", "--variant", "v6.1", "--trace")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[1]
    assert header.split() == ["step", "mig0", "mig1", "cpu2"]


def test_replay_on_a_stale_schedule_says_where(tmp_path):
    inp = json.loads((ROOT / "tests/regressions/v5.16__madvise-race.json").read_text())
    inp["schedule"] = inp["schedule"][:3]
    bad = tmp_path / "stale.json"
    bad.write_text(json.dumps(inp))
    r = migfuzz("replay", str(bad))
    assert r.returncode == 2 and "schedule diverged at step" in r.stderr


BAD = [
    (["run", "--scenario", "no-such"], "unknown scenario 'no-such'"),
    (["run", "--scenario", "migrate", "--variant", "v9.9"], "unknown variant 'v9.9'"),
    (["run", "--scenario", "migrate", "--variant", "v5.16+nope"], "unknown switch 'nope'"),
    (["replay", "/nonexistent.json"], "No such file"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_arguments_are_one_line(args, message):
    r = migfuzz(*args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("content,message", [
    ("{not json", "malformed JSON"),
    ('{"format": "migfuzz-input", "version": 99}', "newer than this migfuzz"),
    ('{"format": "something-else", "version": 1}', "not a migfuzz input"),
    ("[" * 100000 + "]" * 100000, "unreadable JSON"),
    ('{"format": "migfuzz-input", "version": 1, "scenario": {"name": "x"}, "variant": "v5.16", '
     '"schedule": []}', "missing actors, mms"),
])
def test_bad_input_files_are_one_line(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = migfuzz("replay", str(f))
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_save_writes_nothing_when_nothing_is_found(tmp_path):
    save = tmp_path / "none.json"
    r = migfuzz("run", "--scenario", "migrate", "--variant", "v6.1", "--save", str(save))
    assert r.returncode == 0 and not save.exists() and "nothing saved" in r.stderr


def test_check_determinism_passes_and_catches_state_left_by_a_run(monkeypatch, capsys):
    """--check-determinism replays every execution: clean engine, exit as usual; an engine
    whose page numbers depend on how many kernels were built before (state that leaks
    between executions) is caught: exit 3 with the step where the traces part."""
    from migfuzz.cli import main
    from migfuzz.fuzzer.kernel.state import Kernel
    assert main(["run", "--scenario", "dp-fault-race", "--count", "200", "--all",
                 "--check-determinism"]) == 1
    capsys.readouterr()
    init = Kernel.__init__
    built = [0]

    def leaky(self, *a, **kw):
        init(self, *a, **kw)
        built[0] += 1
        self.next_pfn += built[0] % 2

    monkeypatch.setattr(Kernel, "__init__", leaky)
    rc = main(["run", "--scenario", "dp-fault-race", "--count", "5", "--check-determinism"])
    err = capsys.readouterr().err
    assert rc == 3 and "nondeterministic execution of dp-fault-race" in err
    assert "they part at step" in err and len(err.strip().splitlines()) == 1
