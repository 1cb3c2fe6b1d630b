"""Search benchmark: executions and seconds to the first finding of each known bug.

For each known bug of the engine's ground truth, each strategy (random walk, PCT d=3 with k
= the scenario's typical decision count as the loop measures it, POS, conflict-directed
delay, and the default portfolio) runs as a fuzz loop on that scenario alone (no scenario
generation) for SEEDS seeds, until the first finding
of the bug's kind or the budget. The same strategies run on v6.1, where nothing should be
found. Prints a Markdown table and writes bench/results/search.md and search.json.

A second table gives per-execution hit rates with 95% Wilson intervals: each strategy's fuzz
loop run for RATE_LOOPS seeds x --rate-execs/RATE_LOOPS executions (the loop goes on after
a finding; the rate is executions with a finding of the bug's kind), and textbook PCT d=3
on its own with k fixed to the median decision count of 200 random-walk runs (the loop's
k is the median decision count of the scenario's first runs that ended before the fairness
bound; until 2026-11-26 it was the most decisions any run made, which one run starved to
that bound inflates to ~500, leaving nearly every change point after the end of the run).

    python bench/search.py [--seeds 30] [--budget 5000] [--clean-budget 2000]
                           [--rate-execs 8000]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from migfuzz.corpus.builtin import get_scenario  # noqa: E402
from migfuzz.fuzzer.execute import execute  # noqa: E402
from migfuzz.fuzzer.search.loop import BatchReport, FuzzConfig, FuzzLoop  # noqa: E402
from migfuzz.fuzzer.scheduler.pct import PCT  # noqa: E402
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk  # noqa: E402

BUGS = [  # (scenario, variant, kind) from the engine's ground-truth table
    ("cross-mm-opposite", "blocking-lock", "DEADLOCK"),
    ("dirty-page", "v5.15", "LOST_WRITE"),
    ("dirty-page", "v5.16", "LOST_WRITE"),
    ("madvise-race", "v5.15", "LOST_WRITE"),
    ("madvise-race", "v5.16", "LOST_WRITE"),
    ("dp-fault-race", "v5.15", "USE_AFTER_FREE"),
    ("dp-fault-race", "v5.16", "USE_AFTER_FREE"),
]
RATE_BUGS = [("madvise-race", "v5.16", "LOST_WRITE"),
             ("dp-fault-race", "v5.16", "USE_AFTER_FREE"),
             ("cross-mm-opposite", "blocking-lock", "DEADLOCK")]
RATE_LOOPS = 4
CLEAN = ["cross-mm-opposite", "dirty-page", "madvise-race", "dp-fault-race"]
STRATEGIES = [  # (label, search, fixed_pct)
    ("random", "random", False),
    ("PCT d=3", "pct", True),
    ("POS", "pos", False),
    ("conflict delay", "conflict", False),
    ("portfolio (default)", "portfolio", False),
]


def first_finding(scenario: str, variant: str, kind: str | None, search: str,
                  fixed_pct: bool, seed: int, budget: int, seconds: float):
    """(executions, seconds) to the first finding of ``kind`` (any kind if None), or None."""
    loop = FuzzLoop(FuzzConfig(variant, [get_scenario(scenario)], search, False,
                               fixed_pct), seed)
    rep = BatchReport(0, [], [], [], [], [], {})
    t0 = time.perf_counter()
    while loop.executions < budget and time.perf_counter() - t0 < seconds:
        loop.step(rep)
        if any(kind is None or ev.finding.kind == kind for ev in rep.findings):
            return loop.executions, time.perf_counter() - t0
        rep.findings.clear()
    return None


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = hits / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    w = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - w), min(1.0, c + w)


def loop_rate(scenario: str, variant: str, kind: str, search: str, fixed_pct: bool,
              execs: int) -> tuple[int, int]:
    """(executions with a finding of ``kind``, executions) over RATE_LOOPS fuzz loops."""
    hits = total = 0
    for seed in range(RATE_LOOPS):
        loop = FuzzLoop(FuzzConfig(variant, [get_scenario(scenario)], search, False,
                                   fixed_pct), seed)
        rep = BatchReport(0, [], [], [], [], [], {})
        for _ in range(execs // RATE_LOOPS):
            loop.step(rep)
            hits += any(ev.finding.kind == kind for ev in rep.findings)
            rep.findings.clear()
            total += 1
    return hits, total


def pct_rate(scenario: str, variant: str, kind: str, execs: int) -> tuple[int, int, int]:
    """Textbook PCT d=3 alone, k = median decisions of 200 random-walk runs: (hits, n, k)."""
    sc = get_scenario(scenario)
    decs = sorted(sum(c for _, c in execute(sc, variant, RandomWalk(s), check=False).schedule)
                  for s in range(10**6, 10**6 + 200))
    k = decs[len(decs) // 2]
    hits = sum(any(f.kind == kind for f in execute(sc, variant, PCT(s, 3, k),
                                                   check=False).findings)
               for s in range(execs))
    return hits, execs, k


def rate_cell(hits: int, n: int) -> dict:
    lo, hi = wilson(hits, n)
    return {"hits": hits, "executions": n, "rate": hits / n, "ci95": [lo, hi]}


def fmt_rate(c: dict) -> str:
    lo, hi = c["ci95"]
    return f"{100 * c['rate']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"


def cell(results: list) -> dict:
    hits = [r for r in results if r is not None]
    return {"found": len(hits), "seeds": len(results),
            "median_execs": statistics.median([h[0] for h in hits]) if hits else None,
            "median_seconds": statistics.median([h[1] for h in hits]) if hits else None,
            "max_seconds": max([h[1] for h in hits]) if hits else None}


def fmt(c: dict, clean: bool = False) -> str:
    if clean:
        return f"{c['found']}/{c['seeds']} found"
    if not c["found"]:
        return f"0/{c['seeds']}"
    return (f"{c['median_execs']:g} ex, {c['median_seconds']:.2f} s "
            f"({c['found']}/{c['seeds']})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budget", type=int, default=5000, help="executions per seed")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit per seed")
    ap.add_argument("--clean-budget", type=int, default=2000,
                    help="executions per seed on v6.1")
    ap.add_argument("--rate-execs", type=int, default=8000,
                    help="executions per strategy and bug for the hit-rate table")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    t0 = time.time()
    rows, data = [], []
    labels = [s[0] for s in STRATEGIES]
    for sc, var, kind in BUGS:
        row = [f"{sc} × {var} ({kind})"]
        for label, search, fixed in STRATEGIES:
            c = cell([first_finding(sc, var, kind, search, fixed, seed, args.budget,
                                    args.seconds) for seed in range(args.seeds)])
            data.append({"scenario": sc, "variant": var, "kind": kind, "strategy": label,
                         **c})
            row.append(fmt(c))
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    for sc in CLEAN:
        row = [f"{sc} × v6.1 (nothing)"]
        for label, search, fixed in STRATEGIES:
            c = cell([first_finding(sc, "v6.1", None, search, fixed, seed,
                                    args.clean_budget, args.seconds)
                      for seed in range(args.seeds)])
            data.append({"scenario": sc, "variant": "v6.1", "kind": None, "strategy": label,
                         "budget": args.clean_budget, **c})
            row.append(fmt(c, clean=True))
        rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    rate_rows, rate_data = [], []
    for label, search, fixed in STRATEGIES:
        row = [label + (" (loop k)" if fixed else "")]
        for sc, var, kind in RATE_BUGS:
            c = rate_cell(*loop_rate(sc, var, kind, search, fixed, args.rate_execs))
            rate_data.append({"scenario": sc, "variant": var, "kind": kind,
                              "strategy": row[0], **c})
            row.append(fmt_rate(c))
        rate_rows.append(row)
        print(" | ".join(row), file=sys.stderr, flush=True)
    row = ["PCT d=3 alone, k = median decisions"]
    for sc, var, kind in RATE_BUGS:
        hits, n, k = pct_rate(sc, var, kind, args.rate_execs)
        c = rate_cell(hits, n)
        rate_data.append({"scenario": sc, "variant": var, "kind": kind,
                          "strategy": row[0], "k": k, **c})
        row.append(fmt_rate(c) + f" (k={k})")
    rate_rows.append(row)
    head = ("| bug | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels) + "\n")
    body = "".join("| " + " | ".join(r) + " |\n" for r in rows)
    note = (f"\nMedian executions and seconds to the first finding of the bug's kind over "
            f"{args.seeds} seeds (found/seeds within {args.budget} executions or "
            f"{args.seconds:g} s); v6.1 rows: seeds with any finding within "
            f"{args.clean_budget} executions. One core, Python "
            f"{platform.python_version()}; total {time.time() - t0:.0f} s.\n")
    rate_head = ("\n| per-execution hit rate [95% CI] | "
                 + " | ".join(f"{sc} × {var}" for sc, var, _ in RATE_BUGS)
                 + " |\n|---|" + "---|" * len(RATE_BUGS) + "\n")
    rate_body = "".join("| " + " | ".join(r) + " |\n" for r in rate_rows)
    rate_note = (f"\nExecutions with a finding of the bug's kind: each strategy's fuzz loop, "
                 f"{RATE_LOOPS} seeds x {args.rate_execs // RATE_LOOPS} executions (the "
                 f"loop goes on after a finding; PCT d=3's k is the loop's typical decision "
                 f"count: the median of its first runs that ended fairly); the last row runs PCT d=3 "
                 f"alone {args.rate_execs} times with k fixed to the median decision count "
                 f"of 200 random-walk runs. Wilson 95% intervals.\n")
    text = head + body + note + rate_head + rate_body + rate_note
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "search.md"), "w") as f:
        f.write("# bench/search.py\n\n" + text)
    with open(os.path.join(args.out, "search.json"), "w") as f:
        json.dump({"seeds": args.seeds, "budget": args.budget,
                   "clean_budget": args.clean_budget, "cells": data,
                   "rate_execs": args.rate_execs, "rates": rate_data}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
