"""`migfuzz kernel test` exit statuses, with the lane replaced by canned results."""
import json

import pytest

from migfuzz.kernels import console, kselftest, lane
from migfuzz.kernels.build import BuiltKernel
from migfuzz.kernels.env import LaneError
from migfuzz.kernels.qemu import GuestRun
from migfuzz.cli import main

HMM_OK = "\n".join(["1..1", "#  RUN           hmm.hmm_device_private.migrate ...",
                    "#            OK  hmm.hmm_device_private.migrate",
                    "ok 1 hmm.hmm_device_private.migrate"])


def _run(events, findings=(), console_text=HMM_OK, exit_="done"):
    bk = BuiltKernel(release="6.1", config="base", key="k", source_version="6.1.192-3",
                     kernel_version="6.1.192", bzimage="/bz", build_dir="/b", log="/l",
                     wall_s=1, cpu_s=1, steps=1, jobs=2, built_at="t", cached=True)
    g = GuestRun(accel="tcg", command=["qemu-system-x86_64", "-nic", "none"],
                 console_path="/c.log", console=console_text, exit=exit_, returncode=0,
                 wall_s=5, boot_s=2, guest_uptime_at_init=1, events=list(events),
                 findings=list(findings))
    return lane.HmmTestsRun(kernel=bk, initrd="/i", guest=g,
                            suite=kselftest.parse(console_text))


BOOTED = [{"event": "init", "cpus": 2}, {"event": "hmm-tests-exit", "rc": 0},
          {"event": "done"}]


@pytest.mark.parametrize("run,status", [
    (_run(BOOTED), 0),
    (_run(BOOTED, [console.Finding("warning", "WARNING: CPU: 0 PID: 1 at mm/x.c:1", 9,
                                   ["WARNING: CPU: 0 PID: 1 at mm/x.c:1"])]), 1),
    (_run([{"event": "init"}], [console.Finding("guest_timeout", "killed", 9, [])],
          exit_="timeout"), 1),
    (_run([], [console.Finding("guest_died", "no init", 1, [])], console_text="",
          exit_="rebooted"), 2),
])
def test_kernel_test_exit_status(monkeypatch, capsys, run, status):
    monkeypatch.setattr(lane, "run_hmm_tests", lambda *a, **k: run)
    assert main(["kernel", "test", "--release", "6.1"]) == status
    out = capsys.readouterr()
    if status == 1:
        assert "KERNEL FINDING [" in out.out
    if status == 2:
        assert "did not boot" in out.err
    assert main(["kernel", "test", "--json"]) == status
    assert json.loads(capsys.readouterr().out)["exit_status"] == status


def test_lane_error_is_one_line_exit_2(monkeypatch, capsys):
    def boom(*a, **k):
        raise LaneError("missing packages: run `apt-get install -y qemu-system-x86` as root")
    monkeypatch.setattr(lane, "run_hmm_tests", boom)
    assert main(["kernel", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["migfuzz: error: missing packages: run `apt-get install -y "
                   "qemu-system-x86` as root"]
