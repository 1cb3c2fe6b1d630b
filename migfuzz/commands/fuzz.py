"""``migfuzz fuzz``: a fuzzing campaign (buckets, minimized reproducers), on a Ray farm
(``workers/``: a local Ray instance, or ``--address`` to join a cluster) or, with
``--workers 0``, in this process."""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import scenario_names
from migfuzz.fuzzer.execute import Nondeterministic
from migfuzz.fuzzer.search.bounded import prove
from migfuzz.fuzzer.search.loop import FuzzConfig
from migfuzz.fuzzer.search.portfolio import SEARCHES
from migfuzz.fuzzer.kernel.variants import resolve_variant

from ..cli import EXIT_ERROR, EXIT_FOUND, EXIT_OK, UsageError
from ..files import check_dir_writable, write_atomic
from ..refs import DB_HELP
from ..render import table
from ..session import CampaignSession
from .engine import load_scenario

from migfuzz.workers.runtime import FarmError

STRATEGY_CHOICES = SEARCHES + ("exhaustive",)
USER_ERRORS = (FarmError,)


def register(sub) -> None:
    p = sub.add_parser(
        "fuzz", help="fuzz schedules and scenarios; group and minimize the bugs found",
        description="Run a fuzzing campaign: pick a scenario and a scheduling strategy per "
        "execution, keep inputs that add interleaving coverage, group findings into "
        "buckets by signature, and write a minimized reproducer per bucket (replay one "
        "with 'migfuzz replay FILE'). By default the fuzz loops run as Ray actors on a "
        "local Ray instance started for the campaign (loopback only), one per CPU; "
        "--address joins an existing Ray cluster instead; --workers 0 runs one loop in "
        "this process, where the same --seed and --execs give the same results.",
        epilog="Exit status: 0 the campaign ran (findings or not; see --fail-on-finding), "
        "1 with --fail-on-finding and at least one bucket, 2 usage error.")
    p.add_argument("--variant", default="v5.16", help="variant spec (default v5.16)")
    p.add_argument("--scenario", action="append", metavar="NAME|FILE",
                   help="a built-in scenario or a scenario JSON file; repeatable (default: "
                        "every built-in concurrency and known-bug scenario, plus generated "
                        "ones)")
    p.add_argument("--strategy", default="portfolio", choices=STRATEGY_CHOICES,
                   help="portfolio (default; per execution " + _portfolio_mix() + ", and "
                        "DeadlockFuzzer-style directed runs to confirm a potential "
                        "deadlock), one strategy alone, or exhaustive (preemption-bounded "
                        "search of each scenario, see --bound). 'run --strategy' lists "
                        "the per-execution strategies instead: the same random, pct, pos "
                        "and conflict, and round-robin, which fuzz leaves out because it "
                        "is deterministic (every execution of a scenario would be the "
                        "same); guided needs a corpus, which only a campaign has")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--execs", type=int, metavar="N", help="executions to run")
    budget.add_argument("--duration", type=float, metavar="S",
                        help="seconds to run (results then depend on the machine's speed)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--generate", dest="generate", action="store_true", default=None,
                   help="also mutate and generate scenarios (default only without --scenario)")
    p.add_argument("--no-generate", dest="generate", action="store_false")
    p.add_argument("--bound", type=int, default=2,
                   help="preemption bound for --strategy exhaustive (default 2)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="fuzz loops on Ray (default: the number of CPUs, here "
                        f"{os.cpu_count()}); 0 runs one loop in this process, no Ray")
    p.add_argument("--address", metavar="ADDR",
                   help="join this Ray cluster instead of starting a local Ray instance: "
                        "HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT (Ray Client) or "
                        "auto (the cluster this machine or Ray Job is part of); starts and "
                        "stops nothing. migfuzz's own code goes to the cluster's workers "
                        "in Ray's runtime_env (py_modules): the other nodes need only the "
                        "same Python and Ray (MIGFUZZ_SHIP_CODE=0: they have migfuzz "
                        "installed)")
    p.add_argument("--batch", type=int, default=250, metavar="N",
                   help="executions per worker call on the farm (default 250, ~0.1 s)")
    p.add_argument("--out", default="repros", metavar="DIR",
                   help="directory for minimized reproducer files (default ./repros): "
                        "DIR/CAMPAIGN/KIND-SIG.json for a campaign in the store (so "
                        "campaigns do not write each other's files), DIR/KIND-SIG.json "
                        "with --no-db; a file holding a different reproducer is never "
                        "overwritten (the new one gets a -2, -3... suffix)")
    p.add_argument("--no-minimize", action="store_true", help="skip minimization")
    p.add_argument("--fail-on-finding", action="store_true",
                   help="exit 1 if any bug was found (for CI)")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--name", help="campaign name in the store (default: fuzz-<variant>-"
                                  "<UTC time>-<6 random hex digits>)")
    p.add_argument("--resume", metavar="NAME",
                   help="continue a stopped or killed campaign: its config, corpus and "
                        "coverage come from the store; --execs/--duration say how much more")
    p.add_argument("--check-determinism", action="store_true",
                   help="replay every execution's schedule on a fresh kernel and require the "
                        "same trace and findings, as Shuttle's checker (twice the cost; "
                        "--workers 0 only; exit 3 where a run is not deterministic)")
    p.add_argument("--max-crashes-per-bug", type=int, default=100, metavar="N",
                   help="crash rows the store keeps per bug and campaign (default 100, as "
                        "syzkaller keeps 100 crash logs per bug); past it a crash leaves no "
                        "row but still "
                        "moves the bug's last seen and can give it a smaller reproducer")
    p.add_argument("--max-generated-scenarios", type=int, default=None, metavar="N",
                   help="generated scenarios the pool keeps, the first N that add coverage "
                        "(default 64); a generated scenario past the cap still reports its "
                        "findings but adds no corpus entry")
    p.add_argument("--no-db", action="store_true",
                   help="keep nothing in a database (reproducer files only)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_fuzz)


def _portfolio_mix() -> str:
    from migfuzz.fuzzer.search.portfolio import PORTFOLIO
    total = sum(PORTFOLIO.values())
    return ", ".join(f"{arm} {100 * w // total}%%" for arm, w in PORTFOLIO.items() if w)


def _scenarios(args) -> tuple[list[dict], bool]:
    if args.scenario:
        scs = [load_scenario(s) for s in args.scenario]
        names = [s["name"] for s in scs]
        if len(set(names)) != len(names):
            raise UsageError("a scenario was given twice: " + ", ".join(names))
        return scs, bool(args.generate)
    names = scenario_names("concurrency") + scenario_names("known-bug")
    return [load_scenario(n) for n in names], args.generate is not False


def cmd_fuzz(args) -> int:
    if args.workers is None:
        args.workers = os.cpu_count() or 1
    if args.workers < 0:
        raise UsageError("--workers must be 0 (in this process) or more")
    if args.workers == 0 and args.address:
        raise UsageError("--address needs workers on the cluster (--workers 1 or more)")
    if args.address:
        from migfuzz.workers.runtime import check_address
        try:
            args.address = check_address(args.address)
        except FarmError as e:
            raise UsageError(str(e)) from None
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    if args.check_determinism and args.workers != 0:
        raise UsageError("--check-determinism runs in this process: add --workers 0")
    if args.max_crashes_per_bug < 1:
        raise UsageError("--max-crashes-per-bug must be at least 1")
    if args.max_generated_scenarios is not None and args.max_generated_scenarios < 0:
        raise UsageError("--max-generated-scenarios must be 0 or more")
    if args.execs is not None and args.execs < 1:
        raise UsageError("--execs must be at least 1")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.bound < 0:
        raise UsageError("--bound must be 0 or more")
    if args.resume and (args.name or args.scenario or args.no_db):
        raise UsageError("--resume takes its scenarios and name from the store "
                         "(no --name, --scenario or --no-db)")
    if args.strategy == "exhaustive":
        vname, _ = resolve_variant(args.variant)
        return _exhaustive(args, vname, _scenarios(args)[0])
    check_dir_writable(args.out, "reproducer directory")    # before the campaign runs
    if args.resume:
        session = CampaignSession.resume(db=args.db, name=args.resume,
                                         max_crashes_per_bug=args.max_crashes_per_bug)
    else:
        vname, _ = resolve_variant(args.variant)
        scs, gen = _scenarios(args)
        cfg = FuzzConfig(vname, scs, args.strategy, gen)
        if args.max_generated_scenarios is not None:
            cfg.max_generated = args.max_generated_scenarios
        session = CampaignSession.new(cfg, args.seed,
                                      db=args.db, name=args.name, no_db=args.no_db,
                                      max_crashes_per_bug=args.max_crashes_per_bug)
    session.campaign.loop.config.check_determinism = args.check_determinism   # --resume too
    try:
        return _run(args, session) if args.workers == 0 else _run_farm(args, session)
    except Nondeterministic:
        session.mark_failed()
        raise
    finally:
        session.close()


def _run(args, session) -> int:
    camp = session.campaign
    more = args.execs if args.execs is not None or args.duration is not None else 4000
    target = session.base + more if args.execs is not None or args.duration is None else None
    tty = sys.stderr.isatty() and not args.json
    t0 = time.monotonic()
    show = _Progress(tty, quiet=args.json, target=more if target is not None else None,
                     base=session.base, duration=args.duration)
    interrupted = False
    with session.stop_on_signals() as stopped:
        try:
            camp.run(execs=target, duration=args.duration, progress=show,
                     stop=lambda _c: stopped[0], on_batch=session.on_batch)
        except KeyboardInterrupt:
            stopped[0] = True
        interrupted = stopped[0]
    show.done()
    spent = 0
    if not args.no_minimize and not interrupted:
        def minimizing(i: int, n: int, b) -> None:
            if args.json:
                return
            line = f"minimizing {i + 1}/{n}: {b.kind} ({b.signature})"
            if tty:
                print("\r" + line + "\x1b[K", end="", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)

        spent = camp.minimize_all(progress=minimizing)
        if tty and not args.json:
            print(file=sys.stderr)
    res = camp.result(time.monotonic() - t0, spent)
    return _report(args, res, session, interrupted)


def _report(args, res, session, interrupted: bool) -> int:
    """Reproducer files, the store's end of the campaign, and the summary (both modes)."""
    write_error = None
    try:
        _write_repros(res, repro_dir(args.out, session.name))
    except UsageError as e:         # the campaign still ends properly in the store
        write_error = str(e)
    stored = session.finish(res, interrupted)
    if args.json:
        out = res.to_json()
        out["store"] = stored
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        _print(res, session.base)
        if stored:
            print(f"\nstored in {stored['db']}: campaign {stored['campaign']} "
                  f"({stored['status']}), {stored['executions']} executions, "
                  f"{stored['corpus']} corpus entries, {stored['crashes']} crashes "
                  f"(distinct inputs), {stored['bugs']} bugs"
                  + (f" (+{stored['duplicates']} filed as duplicates)"
                     if stored["duplicates"] else "")
                  + f"; see 'migfuzz bugs --campaign {stored['campaign']}'")
    if write_error:
        print(f"migfuzz: error: {write_error}", file=sys.stderr)
        return EXIT_ERROR
    if interrupted:
        print("migfuzz: stopped; continue with --resume "
              f"{stored['campaign'] if stored else ''}".rstrip(), file=sys.stderr)
        return 130
    return EXIT_FOUND if (args.fail_on_finding and res.buckets) else EXIT_OK


def _run_farm(args, session) -> int:
    from migfuzz.workers.farm import FarmOptions, run_campaign
    from migfuzz.workers.runtime import ray_session
    more = args.execs if args.execs is not None or args.duration is not None else 4000
    execs = more if args.execs is not None or args.duration is None else None
    n = args.workers
    tty = sys.stderr.isatty() and not args.json
    opts = FarmOptions(workers=n, batch=args.batch, minimize=not args.no_minimize)
    show = _Progress(tty, quiet=args.json, target=execs, base=session.base,
                     duration=args.duration)
    # one logical CPU more than the workers: minimization tasks run beside them
    with ray_session(args.address, num_cpus=None if args.address else n + 1) as ray:
        with session.stop_on_signals(sigint=True) as stopped:
            res, interrupted, _ = run_campaign(
                ray, session.campaign, opts, recorder=session.recorder,
                hub=session.hub_state(), prior_workers=session.prior_workers,
                base=session.base, execs=execs, duration=args.duration,
                stop=lambda: stopped[0], progress=show,
                log=show.log if not args.json else None)
    show.done()
    return _report(args, res, session, interrupted)


class _Progress:
    """Executions (of the campaign, and per worker on the farm), executions/s, coverage,
    corpus, bugs; with a known budget (--execs or --duration) a bar, the share done and
    the time left. A redrawn line on a terminal, a plain line every few seconds otherwise
    (a log file then gets a readable record). Both modes, one renderer."""

    def __init__(self, tty: bool, quiet: bool, target: int | None, base: int,
                 duration: float | None = None, every: float = 5.0):
        self.tty, self.quiet, self.target, self.base = tty, quiet, target, base
        self.duration = duration
        self.every = every if not tty else 0.25
        self.last = 0.0
        self.drawn = False

    def line(self, st: dict) -> str:
        ws = " ".join(f"{w['name']} {w['rate']:.0f}/s" + ("!" if w["failed"] else "")
                      for w in st["workers"])
        total = f"/{self.base + self.target}" if self.target else ""
        return (f"{st['executions']}{total} execs, {st['rate']:.0f}/s"
                + (f" ({ws})" if ws else "") + f", coverage {st['coverage']}, corpus "
                f"{st['corpus']}, bugs {st['buckets']}")

    def fraction(self, st: dict) -> tuple[float, float] | None:
        """(share done, seconds left) when the budget is known."""
        if self.target:
            frac = min(1.0, st["session_executions"] / self.target)
            left = (self.target - st["session_executions"]) / max(st["rate"], 1e-9)
            return frac, max(0.0, left)
        if self.duration:
            return (min(1.0, st["elapsed"] / self.duration),
                    max(0.0, self.duration - st["elapsed"]))
        return None

    def __call__(self, st: dict) -> None:
        if self.quiet or st["elapsed"] - self.last < self.every:
            return
        self.last = st["elapsed"]
        done = self.fraction(st)
        eta = f", {_clock(done[1])} left" if done else ""
        if not self.tty:
            print(f"[{st['elapsed']:.0f}s] " + self.line(st)
                  + (f" ({done[0] * 100:.0f}%{eta})" if done else ""),
                  file=sys.stderr, flush=True)
            return
        bar = ""
        if done:
            bar = f"[{'#' * int(done[0] * 20):<20}] {done[0] * 100:3.0f}% "
        print(f"\r{bar}{self.line(st)}{eta}\x1b[K", end="", file=sys.stderr, flush=True)
        self.drawn = True

    def log(self, msg: str) -> None:
        if self.drawn:
            print(file=sys.stderr)
            self.drawn = False
        print(f"migfuzz: {msg}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.drawn:
            print(file=sys.stderr)
            self.drawn = False


def repro_dir(out: str, campaign: str) -> str:
    """Where a campaign's reproducer files go: ``out/<campaign>``, the name made a safe
    directory name (anything but letters, digits, '.', '_' and '-' becomes '_', and then
    a hash of the real name keeps two names apart); ``out`` itself with no campaign
    (--no-db)."""
    if not campaign:
        return out
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", campaign)
    if safe != campaign or safe.strip(".") == "":
        safe = safe.strip(".") + "-" + hashlib.sha256(campaign.encode()).hexdigest()[:8]
    return os.path.join(out, safe)


def _free_path(path: str, text: str) -> str:
    """``path``, unless it holds a different file: then the first ``-N`` sibling that is
    free or holds the same text. A reproducer file is never overwritten by another."""
    stem, ext = os.path.splitext(path)
    for n in range(1, 1000):
        cand = path if n == 1 else f"{stem}-{n}{ext}"
        try:
            with open(cand, encoding="utf-8", errors="replace") as f:
                if f.read(len(text) + 1) == text:
                    return cand
        except FileNotFoundError:
            return cand
        except OSError:                 # a directory, an unreadable file: taken
            pass
    raise UsageError(f"{path}: cannot write the reproducer file: 999 other files or "
                     f"directories hold its name and -2 ... -999")


def _clock(seconds: float) -> str:
    m, sec = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def _write_repros(res, out: str) -> None:
    if not res.buckets:
        return
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot make the reproducer directory: "
                         f"{e.strerror or e}") from None
    for b in res.buckets:
        if b.minimized and "scenario" in b.minimized:
            m = b.minimized
            inp = inputs.make(m["scenario"], b.input["variant"], m["schedule"],
                              strategy="minimized", seed=b.input.get("seed"),
                              result={"trace_hash": m["trace_hash"],
                                      "findings": m["findings"]})
        else:
            i = b.input
            inp = inputs.make(i["scenario"], i["variant"], i["schedule"],
                              strategy=i.get("strategy", ""), seed=i.get("seed"))
        path = os.path.join(out, f"{b.kind.lower()}-{b.signature.split('-')[-1]}.json")
        text = inputs.dumps(inp)
        path = _free_path(path, text)
        write_atomic(path, text, "reproducer file")
        b.repro_path = path


def _print(res, base: int = 0) -> None:
    """The summary. ``base``: executions stored before this run (--resume); rates and the
    'first' column are this run's, the totals the campaign's."""
    st = res.stats
    run = res.executions - base
    print(f"{res.executions} executions on {res.config['variant']}"
          + (f" ({run} in this run)" if base else "") + f" in {res.seconds:.1f} s "
          f"({run / max(st['seconds'], 1e-9):.0f}/s fuzzing), coverage "
          f"{st['coverage']} ({st['coverage_kinds']['branches']} branches, "
          f"{st['coverage_kinds']['pairs']} pairs, {st['coverage_kinds']['lock_edges']} lock "
          f"edges), corpus {st['corpus']}, {st['scenarios']} scenarios, "
          f"{len(res.buckets)} bug(s)")
    if not res.buckets:
        return
    rows = []
    for b in res.buckets:
        m = b.minimized or {}
        size = (f"{m['actors']}a/{m['pages']}p/{m['preemptions']}pre"
                if "actors" in m else "-")
        rows.append((b.kind, b.hits, b.first_seen, size, b.repro_path or "-",
                     b.title[:90] + ("..." if len(b.title) > 90 else "")))
    print()
    # "first": the campaign-wide number of the execution that first hit the bug in this
    # run (a resumed run does not know the execution numbers of earlier runs' hits)
    table(rows, ["kind", "hits", "first" if not base else "first (this run)", "minimized",
                 "reproducer", "title"])


def _exhaustive(args, vname: str, scs: list[dict]) -> int:
    proofs = [prove(sc, vname, args.bound) for sc in scs]
    if args.json:
        json.dump([{"scenario": p.scenario, "variant": vname, "bound": p.bound,
                    "executions": p.executions, "complete": p.complete,
                    "traces": p.traces, "verdict": p.verdict(),
                    "findings": [{"execution": n, **f.to_json(), "schedule": s}
                                 for n, f, s in p.findings]} for p in proofs],
                  sys.stdout, indent=1)
        print()
    else:
        table([(p.scenario, p.executions, p.verdict()) for p in proofs],
              ["scenario", "executions", "verdict"])
    found = any(p.findings for p in proofs)
    return EXIT_FOUND if (args.fail_on_finding and found) else EXIT_OK


__all__ = ["register"]
