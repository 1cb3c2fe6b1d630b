"""The lane end to end: build (cached), initramfs, boot, run hmm-tests, collect results."""
from __future__ import annotations

from dataclasses import dataclass

from kernels import kselftest
from kernels.build import BuiltKernel, build
from kernels.env import say
from kernels.initramfs import build_initramfs
from kernels.qemu import GuestRun, run_guest


@dataclass
class HmmTestsRun:
    kernel: BuiltKernel
    initrd: str
    guest: GuestRun
    suite: kselftest.SuiteResult

    @property
    def ran(self) -> bool:
        """The guest booted and hmm-tests ran to its end (whatever its results)."""
        return any(e.get("event") == "hmm-tests-exit" for e in self.guest.events)

    def to_json(self) -> dict:
        return {"kernel": self.kernel.to_json(), "initrd": self.initrd,
                "guest": self.guest.to_json(), "hmm_tests": self.suite.to_json(),
                "ran": self.ran}


def run_hmm_tests(release: str, config: str = "base", timeout_s: float = 900.0,
                  accel: str | None = None, echo=None, log=say) -> HmmTestsRun:
    kernel = build(release, config, log=log)
    initrd = build_initramfs(release, log=log)
    log(f"booting {kernel.kernel_version} ({config}) with hmm-tests; timeout {timeout_s:.0f}s")
    guest = run_guest(kernel.bzimage, initrd, timeout_s=timeout_s, accel=accel, echo=echo,
                      log=log)
    suite = kselftest.parse(guest.console)
    return HmmTestsRun(kernel=kernel, initrd=str(initrd), guest=guest, suite=suite)
