"""kernel repro on a real kernel: the THP regression input on the cached 6.1 kernel.

Marked ``kernel``. With MIGFUZZ_KERNEL_LANE=1 (CI's real-kernel lane) a lane that cannot run
(no built kernel, no QEMU, a guest that does not boot) FAILS this test; without it, the test
is skipped when no 6.1 kernel is built on this machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THP_INPUT = ROOT / "tests" / "regressions" / "v6.1__thp-collect-race.json"
REQUIRED = os.environ.get("MIGFUZZ_KERNEL_LANE") == "1"


def _kernel_or_skip():
    from migfuzz.kernels.build import cached_kernel
    kern = cached_kernel("6.1", "base")
    if kern is None and not REQUIRED:
        pytest.skip("no 6.1 kernel built here (`migfuzz kernel build --release 6.1`); "
                    "set MIGFUZZ_KERNEL_LANE=1 to require it")
    return kern


@pytest.mark.kernel
def test_thp_leak_repro_runs_on_61_with_a_clean_control(tmp_path):
    _kernel_or_skip()
    cmd = [sys.executable, "-m", "migfuzz", "kernel", "repro", str(THP_INPUT),
           "--release", "6.1", "--iterations", "3", "--control", "2", "--repeats", "30",
           "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1500,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    # 0 reproduced, 1 not reproduced; 2 (or a traceback) is a lane that could not run
    assert r.returncode in (0, 1), f"exit {r.returncode}: {r.stderr.strip()[-2000:]}"
    out = json.loads(r.stdout)
    assert out["kind"] == "REFCOUNT_LEAK"
    assert out["release"].startswith("6.1.")
    assert out["iterations"] == 3 and out["control_iterations"] == 2
    assert out["control_hits"] == 0, out["detail"]["control"]
    race = out["detail"]["race"]
    assert race["ended"] and race["totals"]["thp_formed"] == 3 * 30
    assert out["reproduced"] == (r.returncode == 0) == (out["hits"] > 0)
