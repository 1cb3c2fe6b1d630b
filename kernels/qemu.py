"""Boot a kernel + initramfs in QEMU with no network device, under a timeout, and read back
its serial console (saved to a file) as structured lines and kernel findings.

The machine: ``qemu-system-x86_64 -nographic -no-reboot -nic none -m 2048 -smp 2``. KVM is
probed once per host boot (a kernel under ``-accel kvm`` must print its banner within a few
seconds; nested virtualisation often fails that) and TCG is the fallback; the result says
which ran. The guest ends by rebooting (QEMU exits under ``-no-reboot``), including on a
panic (``panic=-1``); past the timeout QEMU is killed by its pid.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from migfuzz.kernels import console
from migfuzz.kernels.env import GUEST_TOOLS, LaneError, cache_dir, require, say

QEMU = "qemu-system-x86_64"
# seconds QEMU may take to exit after the init printed "done" (a stuck CPU can hang the reboot)
DONE_GRACE_S = 20.0
DEFAULT_APPEND = ("console=ttyS0 panic=-1 loglevel=7 "
                  "softlockup_panic=0 printk.time=1")


def qemu_command(kernel: str | Path, initrd: str | Path | None, *, accel: str = "tcg",
                 memory_mb: int = 2048, cpus: int = 2, append: str = "") -> list[str]:
    """The QEMU command line. No network device, ever: ``-nic none`` and no -netdev."""
    cmd = [QEMU, "-nographic", "-no-reboot", "-nic", "none", "-m", str(memory_mb),
           "-smp", str(cpus), "-accel", accel, "-kernel", str(kernel)]
    if accel == "kvm":
        cmd += ["-cpu", "host"]
    if initrd:
        cmd += ["-initrd", str(initrd)]
    full = DEFAULT_APPEND + (" " + append if append else "")
    cmd += ["-append", full.strip()]
    return cmd


@dataclass
class GuestRun:
    accel: str
    command: list[str]
    console_path: str
    console: str
    exit: str                    # "done" (the init finished), "rebooted" (QEMU exited
                                 # without "done": a panic or an init that died), "timeout"
    returncode: int | None
    wall_s: float
    boot_s: float | None         # host seconds until the init's first structured line
    guest_uptime_at_init: float | None
    events: list[dict] = field(default_factory=list)
    findings: list[console.Finding] = field(default_factory=list)

    @property
    def booted(self) -> bool:
        return any(e.get("event") == "init" for e in self.events)

    @property
    def finished(self) -> bool:
        return self.exit == "done"

    def to_json(self) -> dict:
        return {"accel": self.accel, "command": self.command, "console_path": self.console_path,
                "exit": self.exit, "returncode": self.returncode, "wall_s": self.wall_s,
                "boot_s": self.boot_s, "guest_uptime_at_init": self.guest_uptime_at_init,
                "booted": self.booted, "events": self.events,
                "findings": [f.to_json() for f in self.findings]}


def _kvm_usable() -> bool:
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def probe_accel(kernel: str | Path, timeout_s: float = 20.0, log=say) -> str:
    """``kvm`` when a KVM guest prints the kernel banner in time, else ``tcg``. Cached per
    host boot (``$MIGFUZZ_CACHE/accel.json``). ``MIGFUZZ_ACCEL=kvm|tcg`` overrides."""
    forced = os.environ.get("MIGFUZZ_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if not _kvm_usable():
        return "tcg"
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = "?"
    memo = cache_dir() / "accel.json"
    try:
        m = json.loads(memo.read_text())
        if m.get("boot_id") == boot_id:
            return m["accel"]
    except (OSError, ValueError, KeyError):
        pass
    cmd = qemu_command(kernel, None, accel="kvm", memory_mb=256, cpus=1)
    ok = False
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        ok = b"Linux version" in out
    except OSError:
        ok = False
    accel = "kvm" if ok else "tcg"
    log(f"accelerator probe: {'KVM boots a guest' if ok else 'KVM did not boot a guest'}; "
        f"using {accel}")
    try:
        memo.write_text(json.dumps({"boot_id": boot_id, "accel": accel}))
    except OSError:
        pass
    return accel


def run_guest(kernel: str | Path, initrd: str | Path, *, timeout_s: float = 600.0,
              accel: str | None = None, memory_mb: int = 2048, cpus: int = 2,
              append: str = "", console_path: str | Path | None = None,
              echo=None, log=say) -> GuestRun:
    """Boot the guest and wait until QEMU exits or the timeout passes (then kill it by pid).

    echo: optional callable given each console line as it arrives (progress display).
    Never raises for what the guest does (a panic, a hang); raises LaneError only when QEMU
    cannot be started."""
    require(GUEST_TOOLS, log=log)
    accel = accel or probe_accel(kernel, log=log)
    if console_path is None:
        d = cache_dir() / "runs"
        d.mkdir(parents=True, exist_ok=True)
        console_path = d / f"console-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    console_path = Path(console_path)
    console_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = qemu_command(kernel, initrd, accel=accel, memory_mb=memory_mb, cpus=cpus,
                       append=append)
    t0 = time.monotonic()
    boot_s: list[float] = []
    done_at: list[float] = []
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as e:
        raise LaneError(f"could not start {QEMU}: {e}") from e
    chunks: list[bytes] = []

    def reader():
        assert proc.stdout is not None
        with open(console_path, "wb") as fh:
            pending = b""
            while True:
                b = proc.stdout.readline()
                if not b:
                    break
                chunks.append(b)
                fh.write(b)
                fh.flush()
                if not boot_s and b"MIGFUZZ {\"event\": \"init\"" in b:
                    boot_s.append(time.monotonic() - t0)
                if not done_at and b"MIGFUZZ {\"event\": \"done\"" in b:
                    done_at.append(time.monotonic())
                if echo is not None:
                    pending += b
                    if pending.endswith(b"\n"):
                        echo(pending.decode("utf-8", "replace").rstrip("\r\n"))
                        pending = b""

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    timed_out = False
    killed_after_done = False
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - t0 > timeout_s:
                timed_out = True
            elif done_at and now - done_at[0] > DONE_GRACE_S:
                killed_after_done = True    # the init finished but the reboot hangs
            if timed_out or killed_after_done:
                proc.kill()                 # by pid: this QEMU only
                proc.wait()
                break
            time.sleep(0.2)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    th.join(timeout=10)
    wall = time.monotonic() - t0
    text = b"".join(chunks).decode("utf-8", "replace")
    events = console.structured(text)
    finds = console.findings(text)
    done = any(e.get("event") == "done" for e in events)
    exit_ = "done" if done else ("timeout" if timed_out else "rebooted")
    if exit_ == "timeout":
        finds.append(console.Finding(
            kind="guest_timeout", title=f"guest still running after {timeout_s:.0f}s; killed",
            line=len(console.normalize(text)), excerpt=console.last_lines(text, 30)))
    elif killed_after_done:
        finds.append(console.Finding(
            kind="guest_timeout", title=f"guest did not reboot within {DONE_GRACE_S:.0f}s of "
            "its init finishing; killed", line=len(console.normalize(text)),
            excerpt=console.last_lines(text, 30)))
    elif exit_ == "rebooted" and not any(f.kind == "panic" for f in finds):
        finds.append(console.Finding(
            kind="guest_died", title="guest stopped before its init finished",
            line=len(console.normalize(text)), excerpt=console.last_lines(text, 30)))
    init = next((e for e in events if e.get("event") == "init"), None)
    up = init.get("uptime") if init else None
    return GuestRun(accel=accel, command=cmd, console_path=str(console_path), console=text,
                    exit=exit_, returncode=proc.returncode, wall_s=round(wall, 2),
                    boot_s=round(boot_s[0], 2) if boot_s else None,
                    guest_uptime_at_init=float(up) if isinstance(up, (int, float)) else None,
                    events=events, findings=finds)
