"""A SIGKILLed farm campaign leaves no Ray process behind: the reaper (workers/reaper.py)
ends exactly what the campaign started. Before it, ray::DashboardAgent and
ray::RuntimeEnvAgent (which ignore SIGTERM) kept running after the driver died."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from migfuzz.workers.reaper import _stat, descendants


def _alive(procs: dict[int, int]) -> dict[int, str]:
    """Each live process's whole command line: never cut it, since the interpreter's
    path alone can be 80 characters in a deep checkout (CI runs under /check/...)."""
    out = {}
    for pid, start in procs.items():
        st = _stat(pid)
        if st is not None and st[1] == start:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


def test_sigkill_of_a_farm_campaign_leaves_no_ray_process(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "migfuzz", "fuzz", "--workers", "1",
                          "--no-db", "--no-minimize", "--duration", "120",
                          "--out", str(tmp_path / "r")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True, text=True)
    try:
        # the farm prints a progress line every 5 s once the workers run
        line = p.stderr.readline()
        while line and "execs" not in line:
            line = p.stderr.readline()
        assert "execs" in line, "the campaign never reported progress"
        procs = descendants(p.pid)
        names = " ".join(_alive(procs).values())
        assert "raylet" in names and "gcs_server" in names, names[:2000]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        deadline = time.monotonic() + 30
        while _alive(procs) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(procs), _alive(procs)
    finally:
        if p.poll() is None:
            p.kill()
