"""PCT: probabilistic concurrency testing with priorities and d-1 change points.

Burckhardt, Kothari, Musuvathi, Nagarakatte, "A Randomized Scheduler with Probabilistic
Guarantees of Finding Bugs", ASPLOS 2010. Every actor gets a distinct random priority >= d;
the highest-priority enabled actor always runs; at d-1 change points, drawn uniformly from
the first ``steps`` steps, the actor about to run drops to priority d-1-i (below every
initial priority). A bug of depth d is found with probability at least 1/(n * k^(d-1)) per
execution for n actors and k steps. SCTBench (Thomson et al., PPoPP 2014) found d=3 the best
single setting; our known bugs need one or two ordering constraints, so d=2..3 fits.

``steps`` should be close to the real execution length: change points drawn after the end
are wasted (the built-in concurrency scenarios run 22 to 220 steps; see bench/search.py).
"""
from __future__ import annotations

import random
from typing import Sequence


class PCT:
    name = "pct"

    def __init__(self, seed: int, depth: int = 3, steps: int = 64):
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.seed = seed
        self.depth = depth
        self.steps = max(1, steps)
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

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        prio = self.prio
        best = max(enabled, key=prio.__getitem__)
        low = self.change.get(step)
        if low is not None:
            prio[best] = low
            best = max(enabled, key=prio.__getitem__)
        return best

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n)
