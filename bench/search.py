"""Search benchmark: executions and seconds to the first finding of each known bug.

For each known bug of the engine's ground truth, each strategy (random walk, PCT d=3 with k
= the scenario's measured decision count, POS, and the default portfolio) runs as a fuzz
loop on that scenario alone (no scenario generation) for SEEDS seeds, until the first finding
of the bug's kind or the budget. The same strategies run on v6.1, where nothing should be
found. Prints a Markdown table and writes bench/results/search.md and search.json.

    python bench/search.py [--seeds 10] [--budget 5000] [--clean-budget 2000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from corpus.builtin import get_scenario  # noqa: E402
from fuzzer.search.loop import BatchReport, FuzzConfig, FuzzLoop  # noqa: E402

BUGS = [  # (scenario, variant, kind) from the engine's ground-truth table
    ("cross-mm-opposite", "blocking-lock", "DEADLOCK"),
    ("dirty-page", "v5.15", "LOST_WRITE"),
    ("dirty-page", "v5.16", "LOST_WRITE"),
    ("madvise-race", "v5.15", "LOST_WRITE"),
    ("madvise-race", "v5.16", "LOST_WRITE"),
    ("dp-fault-race", "v5.15", "USE_AFTER_FREE"),
    ("dp-fault-race", "v5.16", "USE_AFTER_FREE"),
]
CLEAN = ["cross-mm-opposite", "dirty-page", "madvise-race", "dp-fault-race"]
STRATEGIES = [  # (label, search, fixed_pct)
    ("random", "random", False),
    ("PCT d=3", "pct", True),
    ("POS", "pos", False),
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
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=5000, help="executions per seed")
    ap.add_argument("--seconds", type=float, default=60.0, help="time limit per seed")
    ap.add_argument("--clean-budget", type=int, default=2000,
                    help="executions per seed on v6.1")
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
    head = ("| bug | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels) + "\n")
    body = "".join("| " + " | ".join(r) + " |\n" for r in rows)
    note = (f"\nMedian executions and seconds to the first finding of the bug's kind over "
            f"{args.seeds} seeds (found/seeds within {args.budget} executions or "
            f"{args.seconds:g} s); v6.1 rows: seeds with any finding within "
            f"{args.clean_budget} executions. One core, Python "
            f"{platform.python_version()}; total {time.time() - t0:.0f} s.\n")
    text = head + body + note
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "search.md"), "w") as f:
        f.write("# bench/search.py\n\n" + text)
    with open(os.path.join(args.out, "search.json"), "w") as f:
        json.dump({"seeds": args.seeds, "budget": args.budget,
                   "clean_budget": args.clean_budget, "cells": data}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
