"""Who writes a running campaign, and is it still alive.

A process that creates or resumes a campaign writes ``campaigns.owner = HOST:PID:TOKEN``
(TOKEN is random per claim, so two claims by one process differ) and keeps
``campaigns.heartbeat_at`` fresh: every batch write sets it, and a :class:`Heartbeat`
thread sets it every ``HEARTBEAT_EVERY`` seconds while the campaign is open (so long
minimization, Ray start-up or a farm waiting on its workers count as alive too).

A ``running`` campaign's owner is judged alive:

- on this host: its pid exists (and, if the pid is this process, the claim is one this
  process still holds). A pid that exists but started after the owner's last heartbeat
  was reused by another program, so the owner is dead. A SIGKILLed owner on this host
  is therefore recognised at once.
- on another host (we cannot see its processes): its heartbeat is younger than
  ``STALE_AFTER``.

A ``running`` campaign whose owner is not alive is *stale*: it is shown so, and
``--resume`` may take it over.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time

# An owner beats every HEARTBEAT_EVERY seconds. STALE_AFTER allows for a whole SQLite busy
# timeout (30 s: a heartbeat waits that long for another writer's lock before failing) plus
# a couple of missed beats (a long GC pause, a slow PostgreSQL commit) and a few seconds
# of clock difference between hosts (heartbeat_at is the writer's clock, compared with the
# reader's). A live owner is never that late; a dead one is recognised within a minute.
HEARTBEAT_EVERY = 10.0
STALE_AFTER = 60.0

HOST = socket.gethostname()
_held: set[str] = set()            # claims this process holds (owner strings)
_held_lock = threading.Lock()


def new_owner() -> str:
    """A fresh owner string for this process: HOST:PID:TOKEN."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def hold(owner: str) -> None:
    with _held_lock:
        _held.add(owner)


def release(owner: str) -> None:
    with _held_lock:
        _held.discard(owner)


def parse(owner: str) -> tuple[str, int, str] | None:
    """(host, pid, token), or None if the text is not an owner string."""
    host, sep, rest = owner.rpartition(":")
    host, sep2, pid = host.rpartition(":")
    if not (sep and sep2 and host and pid.isdigit()):
        return None
    return host, int(pid), rest


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:            # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def _started_at(pid: int) -> float | None:
    """When the process started (epoch seconds), from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        ticks = int(stat.rsplit(")", 1)[1].split()[19])      # field 22: starttime
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def last_sign(heartbeat_at: float | None, updated_at: float | None) -> float | None:
    """The owner's last sign of life: its heartbeat, else (a campaign written before
    heartbeats existed) its last write."""
    return heartbeat_at if heartbeat_at is not None else updated_at


def owner_alive(owner: str | None, heartbeat_at: float | None,
                updated_at: float | None = None, now: float | None = None) -> tuple[bool, str]:
    """(alive, why) for the owner of a running campaign; ``why`` is for the user."""
    now = time.time() if now is None else now
    seen = last_sign(heartbeat_at, updated_at)
    age = None if seen is None else max(0.0, now - seen)
    parts = parse(owner) if owner else None
    if parts is not None and parts[0] == HOST:
        _, pid, _ = parts
        if pid == os.getpid():
            with _held_lock:
                held = owner in _held
            return held, (f"this process (pid {pid})" if held else
                          f"pid {pid} is this process, which no longer runs it")
        if not _pid_exists(pid):
            return False, f"its process (pid {pid}) is gone"
        started = _started_at(pid)
        # 2 s: /proc's boot time is whole seconds and start times are clock ticks
        if started is not None and seen is not None and started > seen + 2:
            return False, f"its process (pid {pid}) is gone (the pid was reused)"
        return True, f"pid {pid} on this host"
    where = f"on {parts[0]}" if parts else "owner unknown"
    if age is None:
        return False, f"{where}, no heartbeat"
    if age < STALE_AFTER:
        return True, f"{where}, heartbeat {age:.0f}s ago"
    return False, f"{where}, no heartbeat for {_ago(age)}"


def _ago(s: float) -> str:
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


class Heartbeat:
    """A daemon thread that calls ``beat()`` every ``every`` seconds until stopped.
    ``beat`` returning False (the claim was lost) ends it; errors are retried."""

    def __init__(self, beat, every: float | None = None):
        self._beat = beat
        self._every = HEARTBEAT_EVERY if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="migfuzz-heartbeat",
                                        daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if self._beat() is False:
                    return
            except Exception:        # noqa: BLE001 - a lost beat is retried; the
                pass                 # fuzz loop's own writes report a broken store

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
