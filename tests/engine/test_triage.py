"""Triage on reproducer files: show explains, bisect names the fixing switch, export writes
a pytest file that fails while the bug is present and passes on the fixed variant."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REG = ROOT / "tests" / "regressions"


def migfuzz(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], capture_output=True,
                          text=True, cwd=ROOT, env=e, timeout=300)


def test_show_explains_the_dirty_page_bug():
    r = migfuzz("show", str(REG / "v5.16__dirty-page.json"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kind"] == "LOST_WRITE" and out["alternative_titles"]
    ops = [(a["site"], a["op"]) for a in out["audit"]]
    # the audit log tells the story: taken by collect, restored clean, dropped by reclaim
    assert ("collect:trylock", "lock") in ops and ("finalize:unlock_old", "unlock") in ops
    assert ops[-2:] == [("reclaim:free", "-isolate"), ("reclaim:free", "free")]
    assert out["marks"] and all(0 <= m < out["steps"] for m in out["marks"])
    text = migfuzz("show", str(REG / "v5.16__dirty-page.json")).stdout
    assert "interleaving" in text and "*collect:install_migration*" in text
    assert text.rstrip().splitlines()[-1].startswith("oracle, at step")


@pytest.mark.parametrize("name,fix", [
    ("v5.16__dirty-page", "absent when dirty_to_page is on"),
    ("v5.16__madvise-race", "absent when flush_under_ptl is on"),
    ("v5.16__dp-fault-race", "absent when dp_fault_pins is on"),
    ("blocking-lock__cross-mm-opposite", "absent when blocking_lock is off"),
])
def test_bisect_names_the_fixing_switch(name, fix):
    # not mainline: there dirty-page's swapcache pages hit H3 and every execution runs to
    # the step bound (0.36 s), so its 22 single-switch flips x 200 searches take ~25 min
    r = migfuzz("bisect", str(REG / f"{name}.json"), "--json", "--budget", "200",
                "--variants", "v5.15,v5.16,v6.1,6.1.192,6.12.117,blocking-lock")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert fix in out["fixed_by"]
    present = {v["variant"]: v["present"] for v in out["variants"]}
    assert present["v6.1"] is False
    assert present[out["base"]] is True


def test_exported_pytest_fails_on_the_buggy_variant_and_passes_on_v61(tmp_path):
    test_file = tmp_path / "test_repro.py"
    r = migfuzz("export", str(REG / "v5.16__madvise-race.json"), "-o", str(test_file))
    assert r.returncode == 0, r.stderr
    text = test_file.read_text()
    assert "LOST_WRITE" in text.split('"""')[1] and "mig1" in text.split('"""')[1]

    def pytest_on(variant):
        env = dict(os.environ, PYTHONPATH=str(ROOT), MIGFUZZ_VARIANT=variant)
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(test_file)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    assert pytest_on("v5.16").returncode == 1
    assert pytest_on("v6.1").returncode == 0


def test_export_json_is_the_input(tmp_path):
    out = tmp_path / "x.json"
    assert migfuzz("export", str(REG / "v5.15__dirty-page.json"), "-o", str(out),
                   "--format", "json").returncode == 0
    assert json.loads(out.read_text()) == json.loads((REG / "v5.15__dirty-page.json").read_text())


def test_unknown_reference_is_one_line():
    r = migfuzz("show", "no-such-thing")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
