"""Deadlock-directed random walk: turn a potential deadlock into a real one.

DeadlockFuzzer (Joshi, Park, Sen, Naik, "A Randomized Dynamic Program Analysis Technique
for Detecting Real Deadlocks", PLDI 2009) works in two phases: a lock-order analysis finds
potential cycles (here: fuzzer/search/lockgraph.py, lockdep/DEPT style, POTENTIAL_DEADLOCK),
then a random scheduler *pauses* a thread that is at a cycle's point -- holding the lock an
edge starts from, not yet holding the one it goes to -- so that the other threads of the
cycle can reach their points too. When every actor that can run is paused, the pause is
released: each then goes for a lock another one holds, which is the deadlock (or the cycle
was not real: a gate lock, or an order the code never allows, and the run ends normally).

A paused actor is not disabled for good: it is only passed over while some other actor can
run, so the run always goes on (no livelock), and a pause is dropped after ``patience``
decisions (DeadlockFuzzer's timeout), since a cycle that needs more is unlikely to be real.

Strategies see only which actors are enabled; this one also reads each actor's held page
locks, through ``observe`` (called by ``fuzzer.execute`` before the first step).
"""
from __future__ import annotations

import random
from typing import Sequence


class DeadlockDirected:
    name = "deadlock"

    def __init__(self, seed: int, edges: Sequence[tuple[str, str]], patience: int = 200):
        """``edges``: the cycle as (held page ident, acquired page ident) pairs."""
        self.seed = seed
        self.edges = [(h, a) for h, a in edges]
        self.patience = patience
        self.rng = random.Random(seed)
        self.actors: Sequence = ()
        self.paused_for: dict[int, int] = {}

    def observe(self, actors: Sequence) -> None:
        self.actors = actors

    def new_execution(self, actors: Sequence[str]) -> None:
        self.rng = random.Random(self.seed)
        self.paused_for = {}

    def _at_cycle_point(self, index: int) -> bool:
        held = {p.ident for p in self.actors[index].held}
        return any(h in held and a not in held for h, a in self.edges)

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        free = []
        for i in enabled:
            if self.actors and self._at_cycle_point(i):
                waited = self.paused_for.get(i, 0)
                if waited < self.patience:
                    self.paused_for[i] = waited + 1
                    continue
            free.append(i)
        pool = free or enabled               # everyone paused: release them all
        return pool[int(self.rng.random() * len(pool))]

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n)
