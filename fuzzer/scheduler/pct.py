"""PCT: probabilistic concurrency testing with priorities and d-1 change points.

Burckhardt, Kothari, Musuvathi, Nagarakatte, "A Randomized Scheduler with Probabilistic
Guarantees of Finding Bugs", ASPLOS 2010. Every actor gets a distinct random priority >= d;
the highest-priority enabled actor always runs; at d-1 change points, drawn uniformly from
the first ``steps`` steps, the actor about to run drops to priority d-1-i (below every
initial priority). A bug of depth d is found with probability at least 1/(n * k^(d-1)) per
execution for n actors and k steps. SCTBench (Thomson et al., PPoPP 2014) found d=3 the best
single setting; our known bugs need one or two ordering constraints, so d=2..3 fits.

The scheduler asks a strategy only at decision points (two or more actors enabled), so ``k``
here counts decision points, not steps. ``steps`` should be close to the real number: change
points drawn after the end are wasted (the built-in concurrency scenarios make 10 to 150
decisions; the fuzz loop passes the number it measured for the scenario).

Strict priorities are unfair: an actor that spins (a fault retrying while a migration entry
is in place yields without blocking) would starve the actor it waits for until the step
bound, and every such run would be reported as a HANG of the model rather than of the
kernel. As Coyote's prioritization strategy does, after ``fair_after`` decisions (default
8k, at least 500: ten times the longest built-in run) the schedule turns into a random walk.
"""
from __future__ import annotations

import random
from typing import Sequence

# decisions after which a prioritizing strategy turns into a random walk, at the least: ten
# times the longest built-in run; a run that reaches it was starved, not explored
FAIR_AFTER = 500


class PCT:
    name = "pct"

    def __init__(self, seed: int, depth: int = 3, steps: int = 64,
                 fair_after: int | None = None):
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.seed = seed
        self.depth = depth
        self.steps = max(1, steps)
        self.fair_after = fair_after if fair_after is not None else max(FAIR_AFTER, 8 * self.steps)
        self.rng = random.Random(seed)
        self.prio: list[int] = []
        self.change: dict[int, int] = {}

    def new_execution(self, actors: Sequence[str]) -> None:
        self.rng = rng = random.Random(self.seed)
        d, n = self.depth, len(actors)
        order = list(range(n))
        rng.shuffle(order)
        self.prio = [0] * n
        for rank, idx in enumerate(order):
            self.prio[idx] = d + rank               # distinct, all >= d
        points = rng.sample(range(1, self.steps + 1), min(d - 1, self.steps))
        # change point i (1-based) lowers the running actor to priority d - i
        self.change = {s: d - 1 - i for i, s in enumerate(sorted(points))}
        self.decision = 0

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        prio = self.prio
        best = max(enabled, key=prio.__getitem__)
        self.decision += 1
        if self.decision > self.fair_after:
            return enabled[int(self.rng.random() * len(enabled))]
        low = self.change.get(self.decision)
        if low is not None:
            prio[best] = low
            best = max(enabled, key=prio.__getitem__)
        return best

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n)
