"""A decorator strategy that records every choice of the strategy it wraps, so any
execution can be stored as an exact schedule and replayed (Shuttle's recording wrapper)."""
from __future__ import annotations

from typing import Sequence


class Recording:
    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.choices: list[int] = []

    def new_execution(self, actors: Sequence[str]) -> None:
        self.choices = []
        self.inner.new_execution(actors)

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        c = self.inner.next_actor(enabled, current, step)
        self.choices.append(c)
        return c

    def next_choice(self, n: int) -> int:
        return self.inner.next_choice(n)
