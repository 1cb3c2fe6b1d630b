"""Engine speed: steps/s and executions/s per core on overlap-2, against a bare generator
scheduler loop measured in the same run (two generators, a seeded random pick, one dict
update per step). Target: the engine reaches at least 1/5 of the bare loop's steps/s.

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

from corpus.builtin import get_scenario  # noqa: E402
from fuzzer.execute import execute  # noqa: E402
from fuzzer.strategies import RandomWalk  # noqa: E402


def bare_loop(steps: int) -> float:
    """The floor for any generator-based controlled scheduler in CPython."""
    def actor(state, key):
        while True:
            state[key] = state.get(key, 0) + 1
            yield

    state: dict = {}
    gens = [actor(state, "a"), actor(state, "b")]
    for g in gens:
        next(g)
    rng = random.Random(1)
    t = time.perf_counter()
    for _ in range(steps):
        next(gens[int(rng.random() * 2)])
    return steps / (time.perf_counter() - t)


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
    for variant in ("v5.15", "v5.16", "v6.1"):
        sps, eps, n = engine("overlap-2", variant, args.seconds)
        rows.append({"scenario": "overlap-2", "variant": variant, "steps_per_s": round(sps),
                     "execs_per_s": round(eps), "execs": n,
                     "ratio_to_bare": round(sps / bare, 3)})
    out = {"python": platform.python_version(), "machine": platform.machine(),
           "bare_loop_steps_per_s": round(bare), "rows": rows, "target_ratio": 0.2}
    lines = [f"Bare generator loop: {bare:,.0f} steps/s (Python {out['python']}, one core)", "",
             "| scenario | variant | steps/s | executions/s | ratio to bare loop |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['variant']} | {r['steps_per_s']:,} | "
                     f"{r['execs_per_s']:,} | {r['ratio_to_bare']:.2f} |")
    text = "\n".join(lines)
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "engine.json").write_text(json.dumps(out, indent=1) + "\n")
    Path(args.out, "engine.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
