"""Round robin: run the current actor until it blocks or ends, then the next one by index.

A deterministic schedule with no preemptions: each actor's program runs as if alone
whenever the others let it, which is how the kernel selftests run. Useful as a baseline and
for the scenarios without concurrency.
"""
from __future__ import annotations

from typing import Sequence


class RoundRobin:
    name = "round-robin"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def new_execution(self, actors: Sequence[str]) -> None:
        pass

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        if current in enabled:
            return current
        for idx in enabled:
            if current is None or idx > current:
                return idx
        return enabled[0]

    def next_choice(self, n: int) -> int:
        return 0
