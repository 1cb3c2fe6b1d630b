"""Exact replay of a recorded schedule.

The schedule is the list of actors chosen at every decision point (a step where two or more
actors can run), run-length encoded when stored.
If the recorded actor is not enabled at some step, or the schedule ends while actors still
run, the strict replay raises ``Diverged`` naming the step: a stale schedule never silently
turns into a different execution (a weakness users reported in Shuttle's replay). The
lenient replay (``strict=False``) instead notes the first divergence and carries on, as
Shuttle users asked for when a stored schedule outlives a code change; ``diverged_at`` then
says where. After that point the schedule says nothing, so the rest of the run is a named
strategy's (``CONTINUE_WITH``: a random walk seeded with 0, deterministic): a fair one,
because the old "keep the current actor" rule let an actor spinning on a lock run until the
step limit and reported a HANG the schedule never produced. Callers report findings made
after the divergence as the continuation's, never as the schedule's.
"""
from __future__ import annotations

from typing import Sequence

from .controlled import Diverged
from .random_walk import RandomWalk

CONTINUE_WITH = "random walk (seed 0)"    # what runs after a lenient replay diverges


def rle_encode(choices: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for c in choices:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return out


def rle_decode(runs: Sequence[Sequence[int]]) -> list[int]:
    out: list[int] = []
    for actor, count in runs:
        out.extend([actor] * count)
    return out


class Replay:
    name = "replay"

    def __init__(self, choices: Sequence[int], strict: bool = True):
        self.choices = list(choices)
        self.strict = strict
        self.pos = 0
        self.names: list[str] = []
        self.diverged_at: Diverged | None = None
        self.after = RandomWalk(0)         # the continuation past a divergence

    def new_execution(self, actors: Sequence[str]) -> None:
        self.pos = 0
        self.names = list(actors)
        self.diverged_at = None
        self.after.new_execution(actors)

    def _diverge(self, step: int, message: str, enabled: Sequence[int],
                 current: int | None) -> int:
        err = Diverged(step, message)
        if self.strict:
            raise err
        self.diverged_at = err
        return self.after.next_actor(enabled, current, step)

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        if self.diverged_at is not None:
            return self.after.next_actor(enabled, current, step)
        if self.pos >= len(self.choices):
            return self._diverge(step, f"the schedule ended after {len(self.choices)} steps "
                                       f"but {len(enabled)} actor(s) can still run",
                                 enabled, current)
        want = self.choices[self.pos]
        self.pos += 1
        if want not in enabled:
            name = self.names[want] if 0 <= want < len(self.names) else f"#{want}"
            ready = ", ".join(self.names[i] for i in enabled)
            return self._diverge(step, f"the schedule runs {name}, but only {ready} can run",
                                 enabled, current)
        return want

    def next_choice(self, n: int) -> int:
        return 0

    def unused(self) -> int:
        return len(self.choices) - self.pos
