"""Random walk: at every step, a uniformly random enabled actor.

The naive baseline that the SCTBench study (Thomson, Donaldson, Betts, PPoPP 2014) found to
beat preemption bounding on most benchmarks; Fray (2025) reached the same conclusion on the
JVM. Seeded, so an execution is determined by its seed.
"""
from __future__ import annotations

import random
from typing import Sequence


class RandomWalk:
    name = "random"

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)

    def new_execution(self, actors: Sequence[str]) -> None:
        self.rng = random.Random(self.seed)

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        if len(enabled) == 1:
            return enabled[0]
        return enabled[int(self.rng.random() * len(enabled))]

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n)
