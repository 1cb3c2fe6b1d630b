"""``migfuzz kernel repro``: take a model finding to a real kernel and judge it there.

The reproducer's scenario becomes a guest program (``kernels.translate``: one thread per
actor over the test_hmm ioctls and ordinary memory operations) that ``kernels/guest/
mfrepro.c`` runs in a QEMU guest booted on a kernel built by ``migfuzz kernel build``:
ITERATIONS iterations of REPEATS repetitions of the racing pattern (stress), then, in a
second boot, the CONTROL: the same program made non-concurrent (the same operations, one
actor after the other), so that a leak that is not the race is not counted.

The finding's kind is judged the way the real kernel can show it:

- REFCOUNT_LEAK: the PFNs of every page the program mapped (``/proc/self/pagemap``, before
  and after the actors) are looked up after munmap in ``/proc/kpageflags`` and
  ``/proc/kpagecount``; a THP head or an anonymous page still alive with no mapping left,
  after the per-CPU LRU batches are drained, is leaked (and MemFree drifts by its size);
- LOST_WRITE: a page whose final content is decided whatever the interleaving reads back
  something else;
- DEADLOCK / LOCK_LEAK: an actor that does not finish before the timeout (the guest then
  dumps blocked tasks through sysrq), or the kernel's hung-task detector;
- USE_AFTER_FREE: a KASAN (or KFENCE) report, an oops, a BUG or a bad page state.

An iteration is a hit when it shows the finding's kind; the verdict is "reproduced" when
the race runs hit at least once and the control never did. Exit status as ``replay``: 0
reproduced, 1 not reproduced, 2 bad input or a lane that could not run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migfuzz.kernels.translate import GuestProgram, Untranslatable, translate

GUEST_SRC = Path(__file__).resolve().parent / "guest" / "mfrepro.c"
GUEST_NAME = "mfrepro"
# kernel console findings (kernels.console kinds) that count as a hit, per finding kind
CONSOLE_HITS = {
    "REFCOUNT_LEAK": {"bad_page"},
    "USE_AFTER_FREE": {"kasan", "kfence", "oops", "bug", "bad_page"},
    "DEADLOCK": {"hung_task", "soft_lockup", "rcu_stall"},
    "LOCK_LEAK": {"hung_task", "soft_lockup", "rcu_stall"},
    "HANG": {"hung_task", "soft_lockup", "rcu_stall"},
    "LOST_WRITE": set(),
    # the model's VM_BUG_ON is the kernel's (CONFIG_DEBUG_VM in both configs): a BUG or oops
    "VM_BUG_ON": {"bug", "oops"},
    # a mapcount that disagrees with the page tables: "BUG: Bad page state" when it is freed
    "BAD_MAPCOUNT": {"bad_page", "bug"},
}
DEFAULTS = {"iterations": 20, "control": 20, "repeats": 40, "jitter": 20000, "timeout": 60}


class ReproError(Exception):
    """Bad input, or a lane that could not run: one line, exit 2."""


# ------------------------------------------------------------------ the judge (pure)
@dataclass
class RunResult:
    """One guest run (race or control), parsed from its console."""
    mode: str
    planned: int
    iterations: list[dict] = field(default_factory=list)   # the guest's "iter" objects
    hang: dict | None = None
    ended: bool = False
    error: str | None = None
    leaks: list[dict] = field(default_factory=list)       # "leak" detail objects
    lost: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)    # kernel findings, with "iter"
    final: dict | None = None     # the end-of-run re-check of every leak found
    ops: list[dict] = field(default_factory=list)  # per-op results (-v, first repeat)
    meminfo: dict = field(default_factory=dict)    # /proc/meminfo at "start" and "end"

    @property
    def ran(self) -> int:
        return len(self.iterations) + (1 if self.hang else 0)


def parse_run(text: str, mode: str, planned: int) -> RunResult:
    """The guest program's structured lines and the kernel's findings from one console."""
    from migfuzz.kernels import console
    res = RunResult(mode, planned)
    lines = console.normalize(text)
    starts: list[int] = []           # line number where each iteration ended
    for n, line in enumerate(lines, 1):
        i = line.find(console.PREFIX + "{")
        if i < 0:
            continue
        objs = console.structured(line[i:])
        if not objs or "mfr" not in objs[0]:
            continue
        o = objs[0]
        t = o["mfr"]
        if t == "iter":
            res.iterations.append(o)
            starts.append(n)
        elif t == "hang":
            res.hang = res.hang or o
        elif t == "end":
            res.ended = o.get("status") == "ok"
        elif t == "error":
            res.error = o.get("msg", "guest program error")
        elif t == "leak":
            res.leaks.append(o)
        elif t == "lostwrite":
            res.lost.append(o)
        elif t == "final":
            res.final = o
        elif t == "op":
            res.ops.append(o)
        elif t == "meminfo":
            res.meminfo[o.get("when", "?")] = o
    for f in console.findings(text):
        it = sum(1 for s in starts if s < f.line)       # the iteration it happened in
        res.findings.append({"kind": f.kind, "title": f.title, "line": f.line, "iter": it,
                             "excerpt": f.excerpt})
    return res


def iteration_hits(kind: str, run: RunResult) -> list[bool]:
    """For each iteration that ran: did it show ``kind``?"""
    n = run.ran
    hits = [False] * n
    for i, it in enumerate(run.iterations):
        if kind == "REFCOUNT_LEAK":
            hits[i] = it.get("leaked_thp", 0) + it.get("leaked_pages", 0) > 0
        elif kind == "LOST_WRITE":
            hits[i] = it.get("lost_writes", 0) > 0
    if run.hang and kind in ("DEADLOCK", "LOCK_LEAK", "HANG"):
        hits[n - 1] = True
    wanted = CONSOLE_HITS.get(kind, set())
    for f in run.findings:
        if f["kind"] in wanted and n:
            hits[min(f["iter"], n - 1)] = True
    return hits


@dataclass
class Verdict:
    kind: str
    release: str
    config: str
    reproduced: bool
    iterations: int
    hits: int
    control_iterations: int
    control_hits: int
    mode: str = "stress"
    excerpt: str = ""
    detail: dict = field(default_factory=dict)

    def sentence(self) -> str:
        ctl = f"(control: {self.control_hits} of {self.control_iterations})"
        if self.reproduced:
            return f"reproduced on {self.release} in {self.hits} of {self.iterations} {ctl}"
        if self.hits and self.control_hits:
            return (f"not reproduced: the race runs show it in {self.hits} of "
                    f"{self.iterations} but so does the control {ctl}, so it is not the race")
        return f"not reproduced in {self.iterations} {ctl}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["sentence"] = self.sentence()
        return d


def _memfree_drift(run: RunResult) -> int:
    return sum(it.get("memfree_before_kb", 0) - it.get("memfree_after_kb", 0)
               for it in run.iterations)


def _sum(run: RunResult, key: str) -> int:
    return sum(int(it.get(key, 0)) for it in run.iterations)


def judge(kind: str, race: RunResult, control: RunResult, *, release: str,
          config: str = "base") -> Verdict:
    """The verdict on ``kind`` from a race run and its control. Pure."""
    rh = iteration_hits(kind, race)
    ch = iteration_hits(kind, control)
    hits, chits = sum(rh), sum(ch)
    excerpt = _excerpt(kind, race)
    detail = {
        "race": _summary(race), "control": _summary(control),
        "hit_iterations": [i for i, h in enumerate(rh) if h],
        "control_hit_iterations": [i for i, h in enumerate(ch) if h],
    }
    if kind == "REFCOUNT_LEAK":
        detail["summary"] = (
            f"race: {_sum(race, 'leaked_thp')} THP(s) and {_sum(race, 'leaked_pages')} "
            f"page(s) leaked, MemFree drift {_memfree_drift(race)} kB over "
            f"{race.ran} iteration(s); control: {_sum(control, 'leaked_thp')} THP(s), "
            f"{_sum(control, 'leaked_pages')} page(s), drift {_memfree_drift(control)} kB")
    elif kind == "LOST_WRITE":
        detail["summary"] = (f"race: {_sum(race, 'lost_writes')} lost write(s); control: "
                             f"{_sum(control, 'lost_writes')}")
    elif race.hang:
        detail["summary"] = (f"race: actor {race.hang.get('actor')} stuck in "
                             f"{race.hang.get('op')} (iteration {race.hang.get('i')})")
    return Verdict(kind, release, config, hits > 0 and chits == 0, race.ran, hits,
                   control.ran, chits, "stress", excerpt, detail)


def _summary(run: RunResult) -> dict:
    keys = ("leaked_thp", "leaked_pages", "lost_writes", "thp_formed", "thp_missing",
            "migrated", "enoent", "ebusy", "einval", "eother")
    return {"mode": run.mode, "planned": run.planned, "ran": run.ran, "ended": run.ended,
            "hang": run.hang, "error": run.error,
            "totals": {k: _sum(run, k) for k in keys},
            "memfree_drift_kb": _memfree_drift(run),
            "per_iteration": [{k: it.get(k) for k in ("i", "leaked_thp", "leaked_pages",
                                                       "lost_writes", "thp_formed")}
                              for it in run.iterations],
            "leaks": run.leaks[:8], "final": run.final, "meminfo": run.meminfo,
            "findings": [{k: f[k] for k in ("kind", "title", "iter")} for f in run.findings]}


def _excerpt(kind: str, run: RunResult) -> str:
    """The console lines that show it: the kernel's report if there is one, else the guest
    program's evidence lines."""
    wanted = CONSOLE_HITS.get(kind, set())
    for f in run.findings:
        if f["kind"] in wanted:
            return "\n".join(f["excerpt"][:60])
    lines = []
    for o in run.leaks[:6]:
        lines.append("MIGFUZZ " + json.dumps(o, sort_keys=True))
    for o in run.lost[:4]:
        lines.append("MIGFUZZ " + json.dumps(o, sort_keys=True))
    if run.hang:
        lines.append("MIGFUZZ " + json.dumps(run.hang, sort_keys=True))
    for it in run.iterations:
        if (it.get("leaked_thp") or it.get("leaked_pages") or it.get("lost_writes")) \
                and len(lines) < 16:
            lines.append("MIGFUZZ " + json.dumps(it, sort_keys=True))
    if run.final:
        lines.append("MIGFUZZ " + json.dumps(run.final, sort_keys=True))
    for f in run.findings[:2]:
        lines.extend(f["excerpt"][:20])
    return "\n".join(lines)


def render_verdicts(rows: list[dict]) -> str:
    """Text for ``show`` and ``bugs``: the verdicts stored on a bug (see db.verdicts)."""
    from migfuzz.db.verdicts import render_verdicts as render
    return render(rows)


# ------------------------------------------------------------------ the guest side
def finding_kind(inp: dict, signature: str | None) -> str:
    stored = (inp.get("result") or {}).get("findings") or []
    for f in stored:
        if signature is None or f.get("signature") == signature:
            return f["kind"]
    if signature:
        return signature.split("-", 1)[0]
    raise ReproError("the input names no finding: nothing to judge on the kernel")


def guest_binary(log=None) -> Path:
    """mfrepro built static from kernels/guest/mfrepro.c, cached by source hash."""
    from migfuzz.kernels.env import cache_dir
    src = GUEST_SRC.read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:16]
    out = cache_dir() / "guest" / f"{GUEST_NAME}-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    cmd = ["gcc", "-static", "-O2", "-pthread", "-Wall", "-o", str(tmp), str(GUEST_SRC)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ReproError(f"could not build the guest program: "
                         f"{(r.stderr.strip().splitlines() or ['gcc failed'])[-1]}")
    os.replace(tmp, out)
    if log:
        log(f"built {out}")
    return out


def guest_script(prog: GuestProgram, mode: str, iterations: int, repeats: int, seed: int,
                 jitter: int, timeout: int, enforce: str | None = None) -> str:
    """The /init script of one run: write the spec, run the program."""
    spec = prog.spec()
    if "MFSPEC_END" in spec:
        raise ReproError("the program spec contains the heredoc marker")
    args = (f"-i {iterations} -r {repeats} -m {mode} -s {seed} -j {jitter} "
            f"-t {timeout}")
    if enforce:
        if not re.fullmatch(r"[\w:.-]+ [\w:.-]+ \d+", enforce):
            raise ReproError("--enforce takes 'HOLD_SITE UNTIL_SITE TIMEOUT_MS'")
        args += f" -e '{enforce}'"
    return (f"cat > /tmp/spec <<'MFSPEC_END'\n{spec}MFSPEC_END\n"
            f"mf_event repro-start '\"mode\": \"{mode}\"'\n"
            f"/bin/{GUEST_NAME} /tmp/spec {args} 2>&1\n"
            f"mf_event repro-exit \"\\\"rc\\\": $?\"\n")


def run_guest_text(kernel, initrd: Path, timeout: float, log=None) -> str:
    """Boot the guest on the built kernel and return its console text (the boot lane's
    ``kernels.qemu.run_guest``: no network device, killed at the timeout)."""
    from migfuzz.kernels import qemu
    res = qemu.run_guest(kernel.bzimage, initrd, timeout_s=timeout,
                         log=log or (lambda m: None))
    return res.console


# the source patch whose schedule points --enforce arms (kernels/patches/apply_mf_sched.py)
ENFORCE_PATCHES = ("mf_sched",)


def run(ref_label: str, inp: dict, signature: str | None, *, release: str = "6.1",
        config: str = "base", iterations: int = DEFAULTS["iterations"],
        control: int = DEFAULTS["control"], repeats: int = DEFAULTS["repeats"],
        jitter: int = DEFAULTS["jitter"], timeout: int = DEFAULTS["timeout"], seed: int = 1,
        enforce: str | None = None, bzimage: str | None = None,
        log=None) -> tuple[Verdict, dict]:
    """Translate, boot twice (race, control), judge. Raises ReproError (exit 2)."""
    from migfuzz.kernels.build import cached_kernel
    from migfuzz.kernels.env import LaneError
    from migfuzz.kernels.initramfs import build_initramfs
    kind = finding_kind(inp, signature)
    try:
        prog = translate(inp["scenario"], kind)
    except Untranslatable as e:
        raise ReproError(f"cannot run on a real kernel: {e}") from None
    if enforce and not bzimage:
        # the schedule points live in the mf_sched build of the release (built once, cached)
        from migfuzz.kernels.build import build
        from migfuzz.kernels.env import LaneError, say
        try:
            kern = build(release, config, patches=ENFORCE_PATCHES, log=log or say)
        except LaneError as e:
            raise ReproError(str(e)) from None
        config = f"{config}+{'+'.join(ENFORCE_PATCHES)}"
    else:
        kern = cached_kernel(release, config)
    if kern is None:
        raise ReproError(f"no {release} kernel with the {config} config is built here: run "
                         f"`migfuzz kernel build --release {release}` first")
    if bzimage:
        # another image of the same release (an instrumented or patched build of it)
        if not Path(bzimage).is_file():
            raise ReproError(f"--bzimage {bzimage}: no such file")
        from dataclasses import replace
        kern = replace(kern, bzimage=str(bzimage))
        config = f"{config}+{Path(bzimage).parent.parent.parent.parent.name or 'custom'}"
    try:
        binary = guest_binary(log)
        texts = {}
        for mode, n in (("race", iterations), ("serial", control)):
            script = guest_script(prog, mode, n, repeats, seed, jitter, timeout,
                                  enforce if mode == "race" else None)
            initrd = build_initramfs(release, {GUEST_NAME: binary}, script,
                                     include_hmm_tests=False, log=log or (lambda m: None))
            budget = 120 + n * (repeats * 2 + 20) + timeout
            if log:
                log(f"booting {kern.kernel_version} ({config}): {mode}, {n} iteration(s) "
                    f"x {repeats} repeat(s)")
            t0 = time.time()
            texts[mode] = run_guest_text(kern, initrd, budget, log)
            if log:
                log(f"  {mode} run: {time.time() - t0:.0f} s")
    except LaneError as e:
        raise ReproError(str(e)) from None
    race = parse_run(texts["race"], "race", iterations)
    ctl = parse_run(texts["serial"], "serial", control)
    for r, name in ((race, "race"), (ctl, "control")):
        if r.error:
            raise ReproError(f"the guest program failed in the {name} run: {r.error}")
        if r.ran == 0 and not r.findings:
            raise ReproError(f"the {name} run produced no result (see the console: "
                             f"{_tail(texts['race' if name == 'race' else 'serial'])})")
    v = judge(kind, race, ctl, release=kern.kernel_version, config=config)
    if enforce:
        v.mode = "enforced"
        v.detail["enforce"] = enforce
        v.detail["enforce_counters"] = _enforce_counters(texts["race"])
    v.detail["ref"] = ref_label
    v.detail["program"] = prog.spec()
    v.detail["repeats"] = repeats
    v.detail["jitter"] = jitter
    return v, texts


def _enforce_counters(text: str) -> list[str]:
    from migfuzz.kernels import console
    return [o.get("counters", "").strip() for o in console.structured(text)
            if o.get("mfr") == "enforce"]


def _tail(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[:300]


# ------------------------------------------------------------------ model vs kernel
SELFTEST_SCENARIOS = ("migrate", "migrate-fault", "migrate-multiple", "migrate-shared",
                      "migrate-release", "migrate-mixed", "migrate-partial-unmap-fault",
                      "gup-pin", "cow-in-device", "anon-write-child", "migrate-thp")
_WHERE = {0: "-", 1: "Z", 2: "R", 3: "M", 4: "D", 5: "S"}   # fuzzer.kernel.state pte kinds


def model_end_state(scenario: dict, variant: str = "v6.1") -> dict:
    """The model's serial run (round robin: each actor as if alone, as the selftests run):
    its findings, pages migrated, and where each page of the first mm ends, in the guest's
    letters (R RAM, Z zero page, D device, S swap, - none), one per guest page."""
    from migfuzz.fuzzer.execute import execute
    from migfuzz.fuzzer.scheduler.round_robin import RoundRobin
    r = execute(scenario, variant, RoundRobin())
    mm = r.kernel.mms[scenario["mms"][0]["name"]]
    prog = translate(scenario)
    where = []
    for v in scenario["mms"][0]["vmas"]:
        for vpn in range(v["start"], v["start"] + v["npages"]):
            where.append(_WHERE.get(mm.walk(vpn)[0], "?") * prog.scale)
    return {"findings": [f.kind for f in r.findings], "migrated": r.migrated * prog.scale,
            "requested": r.requested * prog.scale, "where": "".join(where)}


def kernel_end_state(run: RunResult) -> dict:
    """The same from one serial run of the guest program with -v (first repeat)."""
    where = next((o["pages"] for o in reversed(run.ops) if o.get("mfr") == "where"), None)
    ops = [o for o in run.ops if o.get("mfr") == "op" and o.get("actor") != "layout"]
    it = run.iterations[0] if run.iterations else {}
    return {"where": where, "ops": [(o["op"], o["errno"], o["cpages"]) for o in ops],
            "migrated": sum(o["cpages"] for o in ops if o["op"] == "migrate"),
            "lost_writes": it.get("lost_writes"),
            "leaked": (it.get("leaked_thp", 0) or 0) + (it.get("leaked_pages", 0) or 0),
            "findings": [f["kind"] for f in run.findings]}


def compare_script(progs: dict[str, GuestProgram]) -> str:
    """One /init script running every program once, serially, with per-op reports."""
    # the kernel's own boot messages (input probing ~2 s in) can cut a line in two
    parts = ["sleep 3\n"]
    for name, prog in progs.items():
        spec = prog.spec()
        parts.append(f"cat > /tmp/{name}.spec <<'MFSPEC_END'\n{spec}MFSPEC_END\n"
                     f"mf_event compare-start '\"scenario\": \"{name}\"'\n"
                     f"/bin/{GUEST_NAME} /tmp/{name}.spec -i 1 -r 1 -m serial -v -t 60 2>&1\n"
                     f"mf_event compare-exit \"\\\"rc\\\": $?\"\n")
    return "".join(parts)


def split_compare_console(text: str) -> dict[str, str]:
    """The console cut at each ``compare-start`` event: scenario -> its part."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if '"event": "compare-start"' in line:
            try:
                cur = json.loads(line[line.index("{"):])["scenario"]
            except (ValueError, KeyError):
                cur = None
            out[cur] = []
            continue
        if cur is not None:
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items() if k}


def parse_verbose(text: str) -> RunResult:
    res = parse_run(text, "serial", 1)
    from migfuzz.kernels import console
    for o in console.structured(text):
        if o.get("mfr") == "where":
            res.ops.append(o)
    return res


def model_vs_kernel(release: str = "6.1", config: str = "base", variant: str = "v6.1",
                    names=SELFTEST_SCENARIOS, log=None) -> list[dict]:
    """For each selftest scenario: the model's serial end state against what user space
    sees on the real kernel after the same operations. One boot for all of them."""
    from migfuzz.corpus.builtin import get_scenario
    from migfuzz.kernels.build import cached_kernel
    from migfuzz.kernels.initramfs import build_initramfs
    rows, progs = [], {}
    for name in names:
        sc = get_scenario(name)
        try:
            progs[name] = translate(sc)
        except Untranslatable as e:
            rows.append({"scenario": name, "refused": str(e)})
    kern = cached_kernel(release, config)
    if kern is None:
        raise ReproError(f"no {release} kernel with the {config} config is built here")
    initrd = build_initramfs(release, {GUEST_NAME: guest_binary(log)}, compare_script(progs),
                             include_hmm_tests=False, log=log or (lambda m: None))
    text = run_guest_text(kern, initrd, 600, log)
    parts = split_compare_console(text)
    for name, prog in progs.items():
        m = model_end_state(get_scenario(name), variant)
        k = kernel_end_state(parse_verbose(parts.get(name, "")))
        agree = {"where": m["where"] == k["where"], "migrated": m["migrated"] == k["migrated"],
                 "data": k["lost_writes"] == 0, "leaks": k["leaked"] == 0,
                 "findings": not m["findings"] and not k["findings"]}
        rows.append({"scenario": name, "model": m, "kernel": k, "agree": agree,
                     "release": kern.kernel_version})
    return rows


# ------------------------------------------------------------------ the command
def register(ksub) -> None:
    p = ksub.add_parser(
        "repro", help="run a model finding on a real kernel: k of N, with a control",
        description="Translate a bug's reproducer (or a crash's, or an input file's) into a "
                    "guest program, one thread per actor over test_hmm's ioctls and ordinary "
                    "memory operations, run it N times in a QEMU guest on a kernel built by "
                    "`migfuzz kernel build`, and judge the same finding kind there; then "
                    "run it again made non-concurrent (the control). Exit status: 0 "
                    "reproduced, 1 not reproduced, 2 bad input or a lane that could not run.")
    from migfuzz.refs import add_ref_arguments
    add_ref_arguments(p)
    p.add_argument("--release", default="6.1", help="6.1 or 6.12 (default 6.1)")
    p.add_argument("--config", default="base", help="kernel config fragment (base, kasan)")
    p.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], metavar="N",
                   help=f"race iterations (default {DEFAULTS['iterations']})")
    p.add_argument("--control", type=int, default=DEFAULTS["control"], metavar="N",
                   help=f"control iterations (default {DEFAULTS['control']})")
    p.add_argument("--repeats", type=int, default=DEFAULTS["repeats"], metavar="R",
                   help=f"repetitions of the racing pattern per iteration (default "
                        f"{DEFAULTS['repeats']})")
    p.add_argument("--jitter", type=int, default=DEFAULTS["jitter"],
                   help="random spin before each actor starts, in loop turns (sweeps the "
                        "threads' relative timing; 0: none)")
    p.add_argument("--timeout", type=int, default=DEFAULTS["timeout"], metavar="S",
                   help="seconds one repetition may take before an actor counts as hung")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--enforce", metavar="'HOLD UNTIL MS'",
                   help="enforced mode: hold the first task reaching schedule point HOLD "
                        "until another passes UNTIL (at most MS ms), every repetition; boots "
                        "the release's `kernel build --patch mf_sched` kernel (built and "
                        "cached if missing) unless --bzimage is given")
    p.add_argument("--bzimage", metavar="PATH",
                   help="boot this image of the release instead of the cached build (an "
                        "instrumented or patched build of the same source)")
    p.add_argument("--no-store", action="store_true", help="do not store the verdict")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_repro)


def cmd_repro(args) -> int:
    from migfuzz import refs
    from migfuzz.cli import UsageError
    for name in ("iterations", "control", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.jitter < 0 or args.timeout < 1:
        raise UsageError("--jitter must be >= 0 and --timeout >= 1")
    if args.release not in ("6.1", "6.12"):
        raise UsageError(f"--release must be 6.1 or 6.12, not {args.release!r}")
    ref = refs.resolve(args)
    log = (lambda m: print(m, file=sys.stderr)) if not args.json else None
    try:
        v, _texts = run(ref.label, ref.input, ref.signature, release=args.release,
                        config=args.config, iterations=args.iterations, control=args.control,
                        repeats=args.repeats, jitter=args.jitter, timeout=args.timeout,
                        seed=args.seed, enforce=args.enforce, bzimage=args.bzimage, log=log)
    except ReproError as e:
        raise UsageError(str(e)) from None
    command = (f"migfuzz kernel repro {shlex.quote(ref.label)} --release {args.release} "
               f"--config {args.config} --iterations {args.iterations} --control "
               f"{args.control} --repeats {args.repeats} --jitter {args.jitter} "
               f"--seed {args.seed}"
               + (f" --enforce {shlex.quote(args.enforce)}" if args.enforce else "")
               + (f" --bzimage {shlex.quote(args.bzimage)}" if args.bzimage else ""))
    stored = None
    if ref.bug is not None and not args.no_store:
        from migfuzz.db.verdicts import add_verdict
        with refs.open_store(args.db) as st:
            stored = add_verdict(st, ref.bug.signature, release=v.release, config=v.config,
                                 reproduced=v.reproduced, iterations=v.iterations,
                                 hits=v.hits, control_iterations=v.control_iterations,
                                 control_hits=v.control_hits, mode=v.mode, command=command,
                                 excerpt=v.excerpt, detail=v.detail)
    if args.json:
        out = v.to_json()
        out["ref"] = ref.label
        out["command"] = command
        out["stored_id"] = stored
        print(json.dumps(out, indent=1, sort_keys=True))
    else:
        print(f"{ref.label} ({v.kind}): {v.sentence()}")
        if v.detail.get("summary"):
            print(f"  {v.detail['summary']}")
        if v.excerpt:
            print("  console:")
            for line in v.excerpt.splitlines()[:12]:
                print(f"    {line}")
        if stored is not None:
            print(f"  stored on {ref.bug.signature}")
    return 0 if v.reproduced else 1


USER_ERRORS = (ReproError,)
