"""H2b on a real kernel: two concurrent migrations of one page of a pte-mapped THP.

    python -m migfuzz.kernels.h2b --arm enforced|fix|natural [-n BOOTS] [--iterations I]
                                  [--timeout-ms MS] [--release 7.2] [--json]

The model's finding H2b (bench/results/hypotheses.md): ``migrate_vma_collect_pmd()`` drops
the PTL before ``migrate_vma_split_folio()`` takes its folio reference; a second migration
can split the folio, migrate the old head page and free it in between. Guest program:
``kernels/guest/h2b.c``. Arms (each boot is one trial; a trial is a hit when the console has
a kernel report: BUG, Oops, bad page, WARNING, KASAN, panic):

  enforced  the ``--patch mf_sched`` kernel, plan "collect:split_window finalize:done MS":
            the first migration to reach the window is held there until the other passes
            the end of ``migrate_vma_finalize()`` (or MS passes)
  fix       the same program and plan on ``--patch h2b_fix --patch mf_sched`` (the fix:
            kernels/patches/apply_h2b_fix.py): must give 0 hits
  natural   the mf_sched kernel with no plan armed (its points are a single READ_ONCE then):
            ITERATIONS races per boot, the natural rate

Exit 0 ran (whatever the verdict), 2 bad arguments or the lane cannot run (one line).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migfuzz.kernels.env import LaneError, cache_dir, say

GUEST_SRC = Path(__file__).resolve().parent / "guest" / "h2b.c"
ARMS = {
    "enforced": ("mf_sched",),
    "fix": ("h2b_fix", "mf_sched"),
    "natural": ("mf_sched",),
}
PLAN = "collect:split_window finalize:done {ms}"
# TCG on a loaded 2-core host: the IO-APIC timer check at boot can fail ("IO-APIC + timer
# doesn't work!", a panic; seen here at load 10 on 6.12); the check is not what is tested
APPEND = "no_timer_check"
# kernel reports that count as a hit (console.py kinds); a guest timeout alone does not
HIT_KINDS = {"bug", "oops", "bad_page", "warning", "kasan", "kfence", "panic"}


def guest_binary(log=say) -> Path:
    """h2b built static from kernels/guest/h2b.c, cached by source hash."""
    src = GUEST_SRC.read_bytes()
    out = cache_dir() / "guest" / f"h2b-{hashlib.sha256(src).hexdigest()[:16]}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    r = subprocess.run(["gcc", "-static", "-O2", "-pthread", "-Wall", "-o", str(tmp),
                        str(GUEST_SRC)], capture_output=True, text=True)
    if r.returncode != 0:
        raise LaneError("could not build kernels/guest/h2b.c: "
                        + (r.stderr.strip().splitlines() or ["gcc failed"])[-1])
    os.replace(tmp, out)
    log(f"built {out}")
    return out


def guest_script(iterations: int, plan: str | None, wait_s: int) -> str:
    """/init script of one boot: run h2b in the background and wait for it at most wait_s
    (with the bug, the oopsed migration dies holding the mmap lock and h2b never ends),
    then print the mf_sched counters."""
    arg = f" -e '{plan}'" if plan else ""
    return (f"( /bin/h2b -i {iterations}{arg}; echo $? > /tmp/h2b.rc ) &\n"
            f"i=0\n"
            f"while [ $i -lt {wait_s} ] && [ ! -e /tmp/h2b.rc ]; do sleep 1; i=$((i+1)); done\n"
            f"if [ -e /tmp/h2b.rc ]; then mf_event h2b-exit \"\\\"rc\\\": $(cat /tmp/h2b.rc)\";"
            f" else mf_event h2b-stuck '\"waited_s\": {wait_s}'; fi\n"
            f"mf_event h2b-sched \"\\\"counters\\\": \\\"$(cat /sys/kernel/debug/mf_sched"
            f" 2>/dev/null)\\\"\"\n")


@dataclass
class Trial:
    boot: int
    hit: bool
    findings: list = field(default_factory=list)    # (kind, title)
    events: dict = field(default_factory=dict)      # summary of the guest's lines
    console: str = ""
    excerpt: list = field(default_factory=list)


def summarize(events: list[dict]) -> dict:
    """What the guest said: iterations done, setup failures, stuck, counters."""
    out: dict = {"iterations_done": 0, "stuck": False, "setup_failed": None,
                 "counters": None, "rc": None, "pte_mapped_ok": 0}
    for e in events:
        ev = e.get("event")
        if ev == "h2b-migrated":
            out["iterations_done"] += 1
            out.setdefault("migrated", []).append({k: e[k] for k in ("rc", "errno", "cpages")})
        elif ev == "h2b-pte-mapped":
            out["pte_mapped_ok"] += 1
        elif ev == "h2b-skip":
            out["skipped"] = out.get("skipped", 0) + 1
        elif ev == "h2b-setup-failed":
            out["setup_failed"] = e.get("what")
        elif ev == "h2b-stuck":
            out["stuck"] = True
        elif ev == "h2b-exit":
            out["rc"] = e.get("rc")
        elif ev == "h2b-sched":
            out["counters"] = e.get("counters")
    if len(out.get("migrated", [])) > 3:
        out["migrated"] = out["migrated"][:3]
    return out


def kernel_for(arm: str, release: str = "7.2", log=say):
    """The arm's kernel: cached, else (the fix arm, when the mf_sched kernel is built) an
    incremental build from it (build.build_seeded: one file differs), else a cold build."""
    from migfuzz.kernels.build import build, build_seeded, cached_kernel
    patches = ARMS[arm]
    bk = cached_kernel(release, "base", patches)
    if bk:
        return bk
    if arm == "fix" and cached_kernel(release, "base", ARMS["enforced"]):
        return build_seeded(release, "base", patches, ARMS["enforced"], log=log)
    return build(release, "base", patches=patches, log=log)


def run_arm(arm: str, boots: int, iterations: int = 1, timeout_ms: int = 2000,
            release: str = "7.2", log=say) -> dict:
    from migfuzz.kernels.initramfs import build_initramfs
    from migfuzz.kernels.qemu import run_guest
    if arm not in ARMS:
        raise LaneError(f"unknown arm {arm!r} (choose from {', '.join(ARMS)})")
    bk = kernel_for(arm, release, log)
    plan = None if arm == "natural" else PLAN.format(ms=timeout_ms)
    wait_s = 30 + iterations // 2     # an iteration takes ~0.05 s under TCG here
    initrd = build_initramfs(release, programs={"h2b": guest_binary(log)},
                             script=guest_script(iterations, plan, wait_s),
                             include_hmm_tests=False, log=log)
    trials = []
    t0 = time.monotonic()
    for b in range(boots):
        g = run_guest(bk.bzimage, initrd, timeout_s=wait_s + 90, append=APPEND, log=log)
        kf = [f for f in g.findings if f.kind in HIT_KINDS]
        t = Trial(boot=b, hit=bool(kf), findings=[(f.kind, f.title) for f in g.findings],
                  events=summarize(g.events), console=str(g.console_path),
                  excerpt=kf[0].excerpt[:40] if kf else [])
        trials.append(t)
        log(f"[h2b {arm}] boot {b + 1}/{boots}: {'HIT' if t.hit else 'clean'} "
            f"{[k for k, _ in t.findings]} counters={t.events['counters']!r} "
            f"iterations={t.events['iterations_done']} stuck={t.events['stuck']}")
    k = sum(t.hit for t in trials)
    return {"arm": arm, "release": release, "kernel": bk.kernel_version,
            "source_version": bk.source_version, "patches": list(bk.patches),
            "bzimage": bk.bzimage, "plan": plan, "iterations_per_boot": iterations,
            "boots": boots, "hits": k, "wall_s": round(time.monotonic() - t0, 1),
            "trials": [asdict(t) for t in trials]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m migfuzz.kernels.h2b",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", required=True, choices=sorted(ARMS))
    p.add_argument("-n", "--boots", type=int, default=10)
    p.add_argument("--iterations", type=int, default=1, help="races per boot (default 1)")
    p.add_argument("--timeout-ms", type=int, default=2000)
    p.add_argument("--release", default="7.2")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.boots < 1 or args.iterations < 1 or args.timeout_ms < 1:
        print("h2b: --boots, --iterations and --timeout-ms take positive numbers",
              file=sys.stderr)
        return 2
    try:
        res = run_arm(args.arm, args.boots, args.iterations, args.timeout_ms, args.release)
    except LaneError as e:
        print(f"h2b: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{res['arm']}: {res['hits']} of {res['boots']} boots with a kernel report "
              f"({res['kernel']} {res['source_version']} +{'+'.join(res['patches'])}, "
              f"plan {res['plan']!r}, {res['iterations_per_boot']} races per boot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
