"""``migfuzz kernel``: the real-kernel lane (build, test; ``repro`` is added by kernels.repro).

``kernel build`` builds a release's kernel from Debian's source package with a config
fragment from kernels/configs (once per machine: cached by source version and config hash).
``kernel test`` boots it in QEMU (no network device) and runs the kernel's own hmm-tests.
"""
from __future__ import annotations

import argparse
import json
import sys

from migfuzz.kernels.config import ConfigError, fragment_names
from migfuzz.kernels.env import DEFAULT_RELEASE, RELEASES, LaneError

USER_ERRORS = (LaneError, ConfigError)

EXIT_OK, EXIT_FINDING, EXIT_LANE = 0, 1, 2


def _common(p, timeout: bool = False) -> None:
    p.add_argument("--release", default=DEFAULT_RELEASE, choices=sorted(RELEASES),
                   help=f"kernel release (Debian's linux-source-R package; default "
                        f"{DEFAULT_RELEASE})")
    p.add_argument("--config", default="base", choices=fragment_names(),
                   help="config fragment set from kernels/configs: base (trimmed, DEBUG_VM, "
                        "TEST_HMM=y) or kasan (base + KASAN, PAGE_OWNER, DEBUG_PAGEALLOC)")
    if timeout:
        p.add_argument("--timeout", type=float, default=900.0,
                       help="seconds the guest may run before QEMU is killed (default 900)")
        p.add_argument("--accel", choices=("kvm", "tcg"),
                       help="force an accelerator (default: probe KVM, fall back to TCG)")
        p.add_argument("--verbose", "-v", action="store_true",
                       help="echo the guest's serial console while it runs")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def register(sub) -> argparse._SubParsersAction:
    p = sub.add_parser(
        "kernel", help="the real-kernel lane: build kernels, run their HMM selftests in QEMU",
        description="Build the kernels migfuzz models (Debian's linux-source packages, a "
        "trimmed config with DEVICE_PRIVATE, TEST_HMM=y and DEBUG_VM), boot them in QEMU "
        "with no network device, and run the kernel's own hmm-tests. Builds are cached under "
        "$MIGFUZZ_CACHE (default ~/.cache/migfuzz) by source version and config hash.",
        epilog="Exit status (test): 0 the lane ran and the kernel reported nothing, 1 the "
        "kernel reported a finding (oops, BUG, WARNING, KASAN, hung task, panic, lockup, "
        "stall, or the guest hung), 2 the lane could not run (missing package, no root for "
        "apt-get, build failure, guest did not boot).")
    ksub = p.add_subparsers(dest="kernel_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), EXIT_LANE)[1])

    b = ksub.add_parser(
        "build", help="build (or reuse) a release's bzImage",
        description="Unpack /usr/src/linux-source-R.tar.xz (installing the package with "
        "apt-get as root if missing), configure it (make tinyconfig + the fragment + make "
        "olddefconfig; every wanted option must survive), and run make -j$(nproc) bzImage "
        "with progress lines. A cached build is reused.",
        epilog="Exit status: 0 built or cached, 2 could not build (the log path is printed).")
    _common(b)
    b.add_argument("--jobs", "-j", type=int, help="make -j (default: number of CPUs)")
    b.add_argument("--patch", action="append", default=[], metavar="NAME",
                   help="apply a source patch from kernels/patches before building (repeatable; "
                        "known: mf_sched, the schedule points `kernel repro --enforce` needs); "
                        "built from a patched copy of the source, in its own cache entry")
    b.set_defaults(func=cmd_build)

    t = ksub.add_parser(
        "test", help="boot a release in QEMU and run the kernel's own hmm-tests",
        description="Build (cached), make an initramfs (busybox-static, hmm-tests built "
        "statically from the same source, run as root in a tmpfs with hugetlb pages "
        "reserved, THP in madvise mode, DEVICE_COHERENT devices on reserved memory), boot QEMU "
        "(-nic none; KVM if it works, else TCG), and report hmm-tests "
        "per test (passed/failed/skipped) and every kernel finding with its console excerpt.",
        epilog="Exit status: 0 the lane ran and no kernel finding appeared (failed hmm-tests "
        "alone do not change it), 1 the kernel reported a finding or the guest hung, 2 the "
        "lane could not run.")
    _common(t, timeout=True)
    t.add_argument("--no-coherent", action="store_true",
                   help="do not reserve memory for test_hmm's DEVICE_COHERENT devices "
                        "(hmm-tests then skip their 29 device_coherent tests)")
    t.set_defaults(func=cmd_test)
    # `kernel repro` (kernels/repro.py) registers itself on `ksub` here, e.g.
    # `repro_cli.register(ksub)`: keep that line the last before the return.
    from migfuzz.kernels import repro as repro_cli; repro_cli.register(ksub)  # noqa: E702
    return ksub


def cmd_build(args) -> int:
    from migfuzz.kernels.build import build, check_patches
    patches = check_patches(args.patch)      # an unknown name: LaneError, one line, exit 2
    bk = build(args.release, args.config, jobs=args.jobs, patches=patches)
    if args.json:
        json.dump(bk.to_json(), sys.stdout, indent=1)
        print()
    else:
        how = "cached" if bk.cached else "built"
        what = bk.config + "".join(f"+{p}" for p in bk.patches)
        print(f"{bk.kernel_version} ({what}) {how}: {bk.bzimage}")
        print(f"  build: {bk.wall_s / 60:.1f} min wall, {bk.cpu_s / 60:.1f} CPU-min, "
              f"make -j{bk.jobs}, {bk.steps} steps, at {bk.built_at}; log {bk.log}")
    return EXIT_OK


def _print_findings(findings) -> None:
    for f in findings:
        print(f"\nKERNEL FINDING [{f.kind}] {f.title}  (console line {f.line})")
        for line in f.excerpt[:60]:
            print(f"  | {line}")
        if len(f.excerpt) > 60:
            print(f"  | ... ({len(f.excerpt) - 60} more lines)")


def cmd_test(args) -> int:
    from migfuzz.kernels.lane import run_hmm_tests
    echo = (lambda line: print(f"  guest| {line}", file=sys.stderr, flush=True)) \
        if args.verbose else None
    run = run_hmm_tests(args.release, args.config, timeout_s=args.timeout, accel=args.accel,
                        coherent=not args.no_coherent, echo=echo)
    g = run.guest
    if not g.booted:
        status = EXIT_LANE
    elif g.findings:
        status = EXIT_FINDING
    elif not run.ran:
        status = EXIT_LANE
    else:
        status = EXIT_OK
    if args.json:
        out = run.to_json()
        out["exit_status"] = status
        json.dump(out, sys.stdout, indent=1)
        print()
        return status
    k = run.kernel
    print(f"kernel {k.kernel_version} ({k.config}), {g.accel.upper()}, "
          f"booted to userspace in {g.boot_s}s (guest uptime {g.guest_uptime_at_init}s), "
          f"guest ran {g.wall_s:.0f}s, ended: {g.exit}")
    print(f"console: {g.console_path}")
    if run.suite.tests:
        w = max(len(t.name) for t in run.suite.tests)
        for t in run.suite.tests:
            note = f"  {t.reason}" if t.reason else ""
            if t.harness_passed:
                note += "  (harness counts it as passed)"
            print(f"  {t.status:10s} {t.name:{w}s}{note}")
    print(f"hmm-tests: {run.suite.summary()}")
    _print_findings(g.findings)
    if not g.booted:
        print(f"migfuzz: error: the guest did not boot to userspace (see {g.console_path})",
              file=sys.stderr)
    elif not run.ran and not g.findings:
        print(f"migfuzz: error: hmm-tests did not run to its end (see {g.console_path})",
              file=sys.stderr)
    elif g.findings:
        print(f"\n{len(g.findings)} kernel finding(s)")
    return status
