"""POS: partial order sampling.

Yuan, Yang, Gu, "Partial Order Aware Concurrency Sampling", CAV 2018. Every event (here: the
next operation of an actor) gets an independent uniform random priority; the enabled event
with the highest priority runs. When an event runs, the actor's next event draws a fresh
priority (the scheduler asks only at decision points, so the redraw happens for the actor
that ran the step before, ``current``). Compared with a random walk this samples partial orders far more evenly: a random
walk almost never lets one actor run a long stretch while another waits, and POS does with
probability 1/2 per pair of events.

The paper also re-draws the priorities of the events that *race* with the executed one.
That refinement was tried here (the scheduler showing each enabled actor's pending object)
and measured worse on this model: median executions to the dp-fault-race use-after-free
went from 4.5 to 99.5 (v5.15) and 7 to 78.5 (v5.16), madvise-race from 61.5 to 85 (10
seeds each). Re-drawing the racing waiter's priority breaks exactly the long solo runs
these bugs need, so the basic POS stays.

Like PCT, POS can starve a waiter behind a spinning actor with a high priority; after
``fair_after`` decisions (500: ten times the longest built-in run) it is a random walk.
"""
from __future__ import annotations

import random
from typing import Sequence

from .pct import FAIR_AFTER


class POS:
    name = "pos"

    def __init__(self, seed: int, fair_after: int = FAIR_AFTER):
        self.seed = seed
        self.fair_after = fair_after
        self.decision = 0
        self.rng = random.Random(seed)
        self.prio: list[float] = []

    def new_execution(self, actors: Sequence[str]) -> None:
        self.rng = random.Random(self.seed)
        self.prio = [self.rng.random() for _ in actors]
        self.decision = 0

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        self.decision += 1
        if self.decision > self.fair_after:
            return enabled[int(self.rng.random() * len(enabled))]
        prio = self.prio
        if current is not None:
            prio[current] = self.rng.random()        # its next event gets a fresh priority
        return max(enabled, key=prio.__getitem__)

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n)
