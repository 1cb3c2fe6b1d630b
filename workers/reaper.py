"""Ends the Ray processes a campaign started when the campaign itself is killed.

``ray.shutdown()`` ends a local Ray instance when the driver exits normally, but a SIGKILLed
driver never runs it: gcs_server and the raylet notice and exit, while Ray's per-node agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) ignore SIGTERM and were seen running
long after (issue 11, item 18). This module runs as a separate process beside the driver
(``python -m migfuzz.workers.reaper``): it keeps a list of the processes the driver started since
the reaper began (its descendants, each with its start time, so a recycled pid is never
touched) and waits on a pipe from the driver. The driver writes ``done`` before a normal
shutdown; end of file without it means the driver died, and the reaper SIGKILLs exactly the
processes on its list and removes Ray's temp dir. Nothing else on the machine is touched:
never ``ray stop``.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time

TICK = 0.5           # seconds between snapshots: Ray starts its agents within ~1-2 s


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()      # the name may hold spaces and ')'
    return int(rest[1]), int(rest[19])


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live descendant of ``root``."""
    parent: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parent[int(name)] = st
    out: dict[int, int] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, start) in parent.items():
            if ppid == p and pid not in out:
                out[pid] = start
                frontier.append(pid)
    return out


def reap(victims: dict[int, int]) -> int:
    """SIGKILL each listed process that is still the same process; returns how many."""
    n = 0
    for pid, start in victims.items():
        st = _stat(pid)
        if st is not None and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except OSError:
                pass
    return n


def watch(driver: int, pipe_fd: int, temp_dir: str | None) -> int:
    baseline = set(descendants(driver))        # what the driver ran before Ray: not ours
    seen: dict[int, int] = {}
    buf = b""
    while True:
        ready, _, _ = select.select([pipe_fd], [], [], TICK)
        for pid, start in descendants(driver).items():
            if pid not in baseline and pid != os.getpid():
                seen.setdefault(pid, start)
        if not ready:
            continue
        chunk = os.read(pipe_fd, 64)
        if chunk:
            buf += chunk
            if b"done" in buf:
                return 0
            continue
        # end of file and no "done": the driver died; its Ray processes are orphans now
        seen.update({p: s for p, s in descendants(driver).items() if p not in baseline})
        reap(seen)
        time.sleep(1.0)
        reap(seen)                             # anything that forked while we reaped
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        return 1


class Reaper:
    """The driver's side: start the watcher; ``release()`` before a normal shutdown."""

    def __init__(self, temp_dir: str | None):
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid()), str(r), temp_dir or ""],
            pass_fds=(r,), start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r)
        self.w = w

    def release(self) -> None:
        try:
            os.write(self.w, b"done")
            os.close(self.w)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


if __name__ == "__main__":
    sys.exit(watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] or None))
