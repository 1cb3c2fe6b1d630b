"""The lane end to end: build (cached), initramfs, boot, run hmm-tests, collect results."""
from __future__ import annotations

from dataclasses import dataclass

from migfuzz.kernels import kselftest
from migfuzz.kernels.config import boot_append
from migfuzz.kernels.build import BuiltKernel, build
from migfuzz.kernels.env import say
from migfuzz.kernels.initramfs import build_initramfs
from migfuzz.kernels.qemu import GuestRun, run_guest


# test_hmm's two DEVICE_COHERENT devices (/dev/hmm_dmirror2, 3) need 2 x 256 MiB of
# "special purpose memory" that is not System RAM: reserve 512 MiB at 1 GiB with memmap= (the
# guest then has 1.5 GiB of RAM) and hand the two halves to test_hmm. Without it hmm-tests
# skip their 29 device_coherent tests (6.1's harness even counts those skips as passes).
DEVICE_COHERENT_APPEND = ("memmap=512M$0x40000000 test_hmm.spm_addr_dev0=0x40000000 "
                          "test_hmm.spm_addr_dev1=0x50000000")


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
                  accel: str | None = None, coherent: bool = True, echo=None,
                  log=say) -> HmmTestsRun:
    kernel = build(release, config, log=log)
    initrd = build_initramfs(release, log=log)
    log(f"booting {kernel.kernel_version} ({config}) with hmm-tests; timeout {timeout_s:.0f}s")
    guest = run_guest(kernel.bzimage, initrd, timeout_s=timeout_s, accel=accel, echo=echo,
                      append=" ".join(filter(None, [boot_append(config),
                                                    DEVICE_COHERENT_APPEND if coherent else ""])),
                      log=log)
    suite = kselftest.parse(guest.console)
    return HmmTestsRun(kernel=kernel, initrd=str(initrd), guest=guest, suite=suite)
