"""Coverage-guided schedule mutation: replay a corpus schedule with one or more mutations.

AFL-style greybox fuzzing of schedules, as in RFF (Wolff, Shi, Chen, Ranasinghe, Chin,
Roychoudhury, "Greybox Fuzzing for Concurrency Testing", ASPLOS 2024): keep the schedules that
reached new interleaving coverage, and mutate them. A schedule here is the actor chosen at
every decision point (``Result.schedule`` decoded). The mutations:

- ``preempt``: from step i run another actor for m steps (inserts a preemption, or changes
  which actor runs at a point);
- ``unpreempt``: merge one run into the run before it (removes a preemption);
- ``shift``: move a context switch a few steps earlier or later;
- ``splice``: the first part of this schedule, the rest of another one of the same scenario;
- ``truncate``: keep a prefix and let the tail run free.

Following a mutated guide is lenient: at decision s the guide's actor runs if it is enabled,
otherwise the tail policy decides, so every mutant is a valid execution (exact replay would
raise ``Diverged`` for most of them). The loop records what actually ran.
"""
from __future__ import annotations

import random
from typing import Sequence

from .replay import rle_decode, rle_encode

MUTATIONS = ("preempt", "unpreempt", "shift", "splice", "truncate")


def mutate_schedule(choices: list[int], nactors: int, rng: random.Random,
                    other: list[int] | None = None, op: str | None = None) -> list[int]:
    """One mutation of a decoded schedule (a new list)."""
    c = list(choices)
    if not c:
        return c
    op = op or rng.choice(MUTATIONS if other else MUTATIONS[:3] + MUTATIONS[4:])
    runs = rle_encode(c)
    if op == "preempt" or (op in ("unpreempt", "shift") and len(runs) < 2):
        i = rng.randrange(len(c))
        if nactors < 2:
            return c
        a = rng.randrange(nactors - 1)
        a = a if a < c[i] else a + 1
        # run lengths: half of the preemptions in the known bugs last 1-2 steps, the rest
        # up to a whole command (~8 steps); a geometric length covers both
        m = 1
        while m < 16 and rng.random() < 0.6:
            m += 1
        c[i:i + m] = [a] * len(c[i:i + m])
        return c
    if op == "unpreempt":
        j = rng.randrange(1, len(runs))
        runs[j][0] = runs[j - 1][0]
        return rle_decode(runs)
    if op == "shift":
        j = rng.randrange(1, len(runs))
        delta = rng.choice((-3, -2, -1, 1, 2, 3))
        if delta > 0:                      # the earlier run grows into the later one
            take = min(delta, runs[j][1] - 1)
            runs[j - 1][1] += take
            runs[j][1] -= take
        else:
            take = min(-delta, runs[j - 1][1] - 1)
            runs[j - 1][1] -= take
            runs[j][1] += take
        return rle_decode([r for r in runs if r[1] > 0])
    if op == "splice" and other:
        i = rng.randrange(min(len(c), len(other)) + 1)
        return c[:i] + list(other[i:])
    i = rng.randrange(len(c) + 1)          # truncate
    return c[:i]


class Guided:
    """Follow a guide (one actor per decision point) while it fits; then the tail policy.

    ``tail="stay"`` keeps the current actor while it is enabled, else the lowest enabled
    one: deterministic and preemption-free, which the minimizer needs; after ``spin`` (200)
    decisions of one actor in a row it passes to the next one, so a spinning actor cannot
    turn every shrink candidate into a HANG. ``tail="random"``
    is a seeded random walk (exploration)."""
    name = "guided"

    spin = 200

    def __init__(self, guide: Sequence[int], seed: int = 0, tail: str = "stay"):
        self.guide = list(guide)
        self.run_len = 0
        self.last = None
        self.seed = seed
        self.tail = tail
        self.rng = random.Random(seed)
        self.pos = 0
        self.followed = 0          # guide entries that ran as the guide said

    def new_execution(self, actors: Sequence[str]) -> None:
        self.rng = random.Random(self.seed)
        self.pos = 0
        self.followed = 0
        self.run_len = 0
        self.last = None

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < len(self.guide):
            want = self.guide[pos]
            if want in enabled:
                self.followed += 1
                return want
        if self.tail == "random":
            return enabled[int(self.rng.random() * len(enabled))]
        self.run_len = self.run_len + 1 if current == self.last else 0
        self.last = current
        if current in enabled:
            if self.run_len < self.spin:
                return current
            self.run_len = 0
            later = [e for e in enabled if e > current]
            return later[0] if later else enabled[0]
        return enabled[0]

    def next_choice(self, n: int) -> int:
        return int(self.rng.random() * n) if self.tail == "random" else 0


class CoverageGuided(Guided):
    """Mutate a parent schedule (1 to 4 stacked mutations, AFL's havoc in small), then
    follow it; the tail is a random walk. Without a parent it is a random walk."""
    name = "coverage-guided"

    def __init__(self, seed: int, parent: Sequence[int] | None = None,
                 other: Sequence[int] | None = None, nactors: int | None = None):
        super().__init__((), seed, tail="random")
        self.parent = list(parent or ())
        self.other = list(other) if other else None
        self.nactors = nactors

    def new_execution(self, actors: Sequence[str]) -> None:
        rng = random.Random(self.seed)
        g = self.parent
        if g:
            for _ in range(1 + min(3, int(-1 + 1 / max(rng.random(), 0.2)))):
                g = mutate_schedule(g, self.nactors or len(actors), rng, self.other)
        self.guide = g
        self.rng = rng
        self.pos = 0
        self.followed = 0
