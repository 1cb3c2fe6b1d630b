"""The real-kernel lane end to end: boot the cached kernel in QEMU, run hmm-tests, provoke
real kernel reports with LKDTM and check the console parser sees them.

Marked ``kernel``. Without MIGFUZZ_KERNEL_LANE=1 these tests are skipped (a boot takes
minutes under TCG); with it, a lane that cannot run (no package, no build, no boot) FAILS.
CI prepares the kernels first with kernels/ci-lane.sh.
"""
import os

import pytest

from migfuzz.kernels.env import LaneError

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(1800)]

REQUIRED = os.environ.get("MIGFUZZ_KERNEL_LANE") == "1"
RELEASES = os.environ.get("MIGFUZZ_KERNEL_RELEASES", "6.1 6.12").split()

# hmm-tests that fail on these kernels for a reason outside the lane (documented in
# bench/results/kernel.md); anything else failing is a regression of the lane or the kernel.
KNOWN_FAILURES: dict[str, set[str]] = {"6.1": set(), "6.12": set()}


def _need_lane():
    if not REQUIRED:
        pytest.skip("the real-kernel lane runs with MIGFUZZ_KERNEL_LANE=1 (kernels/ci-lane.sh "
                    "builds the kernels first)")


def _lane(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except LaneError as e:          # with MIGFUZZ_KERNEL_LANE=1 this is a failure, not a skip
        pytest.fail(f"the real-kernel lane could not run: {e}")


@pytest.mark.parametrize("release", RELEASES)
def test_hmm_tests_on_real_kernel(release):
    _need_lane()
    from migfuzz.kernels.lane import run_hmm_tests
    run = _lane(run_hmm_tests, release, "base", timeout_s=1200)
    g = run.guest
    assert g.booted, f"guest did not boot; console {g.console_path}"
    init = next(e for e in g.events if e.get("event") == "init")
    assert init["cpus"] == 2, "the guest must see both vCPUs"
    assert run.ran, f"hmm-tests did not finish; console {g.console_path}"
    assert not g.findings, "kernel findings: " + "; ".join(f"{f.kind}: {f.title}"
                                                           for f in g.findings)
    s = run.suite
    assert s.planned and len(s.tests) == s.planned
    assert s.passed >= 25, s.summary()
    failed = {t.name for t in s.tests if t.status == "failed"}
    assert failed <= KNOWN_FAILURES[release], f"unexpected failures: {sorted(failed)}"
    # THP in madvise mode, hugetlb pages, gup_test, a tmpfs cwd and the DEVICE_COHERENT
    # devices on reserved memory: nothing should be skipped
    assert s.skipped == 0, [(t.name, t.reason) for t in s.tests if t.status == "skipped"]


def test_console_parser_sees_real_kernel_reports():
    """LKDTM provokes a WARNING, a BUG (an oops killing the writer) and a hung task on the
    real kernel; each comes back as a finding of its kind, and the guest still finishes."""
    _need_lane()
    from migfuzz.kernels.build import build
    from migfuzz.kernels.initramfs import build_initramfs
    from migfuzz.kernels.qemu import run_guest
    bk = _lane(build, RELEASES[0], "base")
    # the hung-task detector stops after an oops (TAINT_DIE): provoke the hung task first
    script = "\n".join([
        "D=/sys/kernel/debug/provoke-crash/DIRECT",
        "sh -c \"echo HUNG_TASK > $D\" &",
        "sleep 15",
        "sh -c \"echo WARNING > $D\"",
        "sh -c \"echo BUG > $D\"",
        "mf_event lkdtm-done",
    ])
    initrd = _lane(build_initramfs, RELEASES[0], script=script, include_hmm_tests=False)
    g = _lane(run_guest, bk.bzimage, initrd, timeout_s=600,
              append="sysctl.kernel.hung_task_timeout_secs=5")
    kinds = [f.kind for f in g.findings]
    assert g.booted and g.finished, (g.exit, kinds, g.console_path)
    assert "warning" in kinds and "hung_task" in kinds, kinds
    assert "bug" in kinds or "oops" in kinds, kinds
    w = next(f for f in g.findings if f.kind == "warning")
    assert any("Call Trace" in ln for ln in w.excerpt) and "end trace" in w.excerpt[-1]
