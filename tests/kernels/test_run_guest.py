"""run_guest's handling of what a guest does, with a stand-in for QEMU (a shell script that
prints a console and then exits, panics or hangs): a panic or a hang is a finding, never an
exception; past the timeout the process is killed."""
import os
import time

import pytest

from migfuzz.kernels import qemu


@pytest.fixture
def fake_qemu(tmp_path, monkeypatch):
    def make(body: str):
        p = tmp_path / "fake-qemu"
        p.write_text("#!/bin/sh\n" + body + "\n")
        p.chmod(0o755)
        monkeypatch.setattr(qemu, "QEMU", str(p))
        monkeypatch.setattr(qemu, "require", lambda *a, **k: None)
        return p
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "cache"))
    return make


def test_clean_run(fake_qemu, tmp_path):
    fake_qemu("""printf '[    0.1] Linux version 6.1.192\\r\\n'
printf 'MIGFUZZ {"event": "init", "uptime": 0.9, "cpus": 2}\\r\\n'
printf 'MIGFUZZ {"event": "done"}\\r\\n'""")
    g = qemu.run_guest("bz", "initrd", timeout_s=20, accel="tcg",
                       console_path=tmp_path / "c.log")
    assert g.exit == "done" and g.booted and g.finished and g.findings == []
    assert g.guest_uptime_at_init == 0.9 and g.boot_s is not None
    assert (tmp_path / "c.log").read_bytes().count(b"MIGFUZZ") == 2
    assert "-nic" in g.command and g.command[g.command.index("-nic") + 1] == "none"


def test_panic_is_a_finding(fake_qemu):
    fake_qemu("""printf 'MIGFUZZ {"event": "init", "uptime": 0.9}\\n'
printf '[    5.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\\n'
printf '[    5.0] ---[ end Kernel panic - not syncing: Attempted to kill init! ]---\\n'
exit 0""")
    g = qemu.run_guest("bz", "initrd", timeout_s=20, accel="tcg")
    assert g.exit == "rebooted" and g.booted and not g.finished
    assert [f.kind for f in g.findings] == ["panic"]
    assert g.findings[0].excerpt[-1].startswith("---[ end Kernel panic")


def test_hang_is_killed_and_reported(fake_qemu, tmp_path):
    pidfile = tmp_path / "pid"
    fake_qemu(f"""echo $$ > {pidfile}
printf 'MIGFUZZ {{"event": "init", "uptime": 0.9}}\\n'
printf '[   40.0] INFO: task mfrepro:90 blocked for more than 30 seconds.\\n'
exec sleep 600""")
    t0 = time.monotonic()
    g = qemu.run_guest("bz", "initrd", timeout_s=3, accel="tcg")
    assert time.monotonic() - t0 < 30
    assert g.exit == "timeout"
    assert [f.kind for f in g.findings] == ["hung_task", "guest_timeout"]
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_no_boot(fake_qemu):
    fake_qemu("printf 'SeaBIOS\\n'; exit 0")
    g = qemu.run_guest("bz", "initrd", timeout_s=20, accel="tcg")
    assert not g.booted and g.exit == "rebooted"
    assert [f.kind for f in g.findings] == ["guest_died"]


def test_done_but_reboot_hangs(fake_qemu, monkeypatch):
    monkeypatch.setattr(qemu, "DONE_GRACE_S", 1.0)
    fake_qemu("""printf 'MIGFUZZ {"event": "init", "uptime": 0.9}\\n'
printf 'MIGFUZZ {"event": "done"}\\n'
exec sleep 600""")
    t0 = time.monotonic()
    g = qemu.run_guest("bz", "initrd", timeout_s=120, accel="tcg")
    assert time.monotonic() - t0 < 30
    assert g.exit == "done" and [f.kind for f in g.findings] == ["guest_timeout"]
    assert "did not reboot" in g.findings[0].title
