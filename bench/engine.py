"""Engine speed: steps/s and executions/s per core on overlap-2, against a bare generator
scheduler loop measured in the same run (two generators, a seeded random pick, one dict
update per step). Target: the engine reaches at least 1/5 of the bare loop's steps/s.

Between the two it measures a ladder of floors, so the gap can be charged to its causes:
the bare loop with the pick made through the Strategy protocol (RandomWalk.next_actor),
then the controlled scheduler itself (fuzzer.scheduler.controlled.run, which keeps the
trace, the schedule, the preemption count and the interleaving pairs) over two actors that
do no modelled work, then the engine's run alone (no scenario build, no end-state oracles).

Writes bench/results/engine.json and engine.md (quoted by the README).
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migfuzz.corpus.builtin import get_scenario  # noqa: E402
from migfuzz.fuzzer.execute import execute  # noqa: E402
from migfuzz.fuzzer.scenario import build  # noqa: E402
from migfuzz.fuzzer.scheduler.controlled import Actor, run  # noqa: E402
from migfuzz.fuzzer.kernel.state import Kernel  # noqa: E402
from migfuzz.fuzzer.scheduler import RandomWalk  # noqa: E402
from migfuzz.fuzzer.kernel.variants import resolve_variant  # noqa: E402


def _two_counting_generators() -> list:
    def actor(state, key):
        while True:
            state[key] = state.get(key, 0) + 1
            yield

    state: dict = {}
    gens = [actor(state, "a"), actor(state, "b")]
    for g in gens:
        next(g)
    return gens


def bare_loop(steps: int) -> float:
    """The floor for any generator-based controlled scheduler in CPython."""
    gens = _two_counting_generators()
    rng = random.Random(1)
    t = time.perf_counter()
    for _ in range(steps):
        next(gens[int(rng.random() * 2)])
    return steps / (time.perf_counter() - t)


def protocol_loop(steps: int) -> float:
    """The bare loop, but the pick goes through the Strategy protocol as in the engine."""
    gens = _two_counting_generators()
    strategy = RandomWalk(1)
    strategy.new_execution(["a", "b"])
    pick = strategy.next_actor
    enabled = [0, 1]
    t = time.perf_counter()
    for step in range(steps):
        next(gens[pick(enabled, None, step)])
    return steps / (time.perf_counter() - t)


def scheduler_floor(seconds: float, steps_per_exec: int = 108) -> float:
    """migfuzz.fuzzer.scheduler.controlled.run over two actors that only yield a
    scheduling point per step (on one shared object, so pair coverage is kept as in the
    engine): everything the
    controlled scheduler costs, no modelled kernel work. 108 steps: overlap-2's mean."""
    _, sw = resolve_variant("v5.16")

    def actor(n):
        for _ in range(n):
            yield ("floor:op", "obj")

    steps = 0
    seed = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        k = Kernel(sw, 2)
        actors = []
        for i in range(2):
            a = Actor(i, "a%d" % i, i, k)
            a.gen = actor(steps_per_exec // 2)
            actors.append(a)
        steps += run(k, actors, RandomWalk(seed), 10_000).steps
        seed += 1
    return steps / (time.perf_counter() - t)


def engine_run_only(scenario: str, variant: str, seconds: float) -> float:
    """Steps/s of fuzzer.scheduler.controlled.run on the real scenario, the build and
    oracles not timed."""
    sc = get_scenario(scenario)
    _, sw = resolve_variant(variant)
    steps = 0
    spent = 0.0
    seed = 0
    while spent < seconds:
        b = build(sc, sw)
        t = time.perf_counter()
        steps += run(b.kernel, b.actors, RandomWalk(seed), b.max_steps).steps
        spent += time.perf_counter() - t
        seed += 1
    return steps / spent


def engine(scenario: str, variant: str, seconds: float) -> tuple[float, float, int]:
    sc = get_scenario(scenario)
    execs = steps = 0
    t = time.perf_counter()
    seed = 0
    while time.perf_counter() - t < seconds:
        r = execute(sc, variant, RandomWalk(seed), check=False)
        steps += r.steps
        execs += 1
        seed += 1
    el = time.perf_counter() - t
    return steps / el, execs / el, execs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    rows = []
    bare = max(bare_loop(2_000_000) for _ in range(3))
    proto = max(protocol_loop(1_000_000) for _ in range(3))
    floor = scheduler_floor(args.seconds)
    run_only = engine_run_only("overlap-2", "v5.16", args.seconds)
    ladder = [("bare generator loop (the reference)", bare),
              ("+ the pick through the Strategy protocol", proto),
              ("controlled scheduler, actors with no modelled work", floor),
              ("engine on overlap-2 v5.16, run only (no build, no oracles)", run_only)]
    for variant in ("v5.15", "v5.16", "v6.1"):
        sps, eps, n = engine("overlap-2", variant, args.seconds)
        rows.append({"scenario": "overlap-2", "variant": variant, "steps_per_s": round(sps),
                     "execs_per_s": round(eps), "execs": n,
                     "ratio_to_bare": round(sps / bare, 3)})
    out = {"python": platform.python_version(), "machine": platform.machine(),
           "bare_loop_steps_per_s": round(bare), "rows": rows, "target_ratio": 0.2,
           "ladder": [{"what": w, "steps_per_s": round(v), "ratio_to_bare": round(v / bare, 3)}
                      for w, v in ladder]}
    lines = [f"Bare generator loop: {bare:,.0f} steps/s (Python {out['python']}, one core)", "",
             "| scenario | variant | steps/s | executions/s | ratio to bare loop |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['variant']} | {r['steps_per_s']:,} | "
                     f"{r['execs_per_s']:,} | {r['ratio_to_bare']:.2f} |")
    lines += ["", "Where the steps go (same run):", "",
              "| loop | steps/s | ratio to bare loop | µs per step |", "|---|---|---|---|"]
    for w, v in ladder:
        lines.append(f"| {w} | {v:,.0f} | {v / bare:.2f} | {1e6 / v:.2f} |")
    text = "\n".join(lines)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "engine.json").write_text(json.dumps(out, indent=1) + "\n")
    Path(args.out, "engine.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
