"""Exact replay of a recorded schedule.

The schedule is the list of actors chosen at every step (run-length encoded when stored).
If the recorded actor is not enabled at some step, or the schedule ends while actors still
run, the replay raises ``Diverged`` naming the step: a stale schedule never silently turns
into a different execution (a weakness users reported in Shuttle's replay).
"""
from __future__ import annotations

from typing import Sequence

from ..sched import Diverged


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

    def __init__(self, choices: Sequence[int], actor_names: Sequence[str] | None = None):
        self.choices = list(choices)
        self.actor_names = list(actor_names) if actor_names else None
        self.pos = 0

    def new_execution(self, actors: Sequence[str]) -> None:
        self.pos = 0
        self.names = list(actors)

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        if self.pos >= len(self.choices):
            raise Diverged(step, f"the schedule ended after {len(self.choices)} steps but "
                                 f"{len(enabled)} actor(s) can still run")
        want = self.choices[self.pos]
        self.pos += 1
        if want not in enabled:
            name = self.names[want] if 0 <= want < len(self.names) else f"#{want}"
            ready = ", ".join(self.names[i] for i in enabled)
            raise Diverged(step, f"the schedule runs {name}, but only {ready} can run")
        return want

    def next_choice(self, n: int) -> int:
        return 0

    def unused(self) -> int:
        return len(self.choices) - self.pos
