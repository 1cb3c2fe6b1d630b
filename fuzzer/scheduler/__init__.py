"""The scheduler: the controlled scheduler (controlled.py: actors, run, the trace) and the
scheduling strategies behind its ``Strategy`` protocol, one module each."""
from __future__ import annotations

from .conflict_delay import ConflictDelay
from .pct import PCT
from .pos import POS
from .random_walk import RandomWalk
from .replay import Replay
from .round_robin import RoundRobin

STRATEGIES = {
    "random": RandomWalk,
    "round-robin": RoundRobin,
    "pct": PCT,
    "pos": POS,
    "conflict": ConflictDelay,
}


def make_strategy(name: str, seed: int):
    """A fresh strategy by name; ValueError for an unknown one."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})") from None
    return cls(seed)


__all__ = ["ConflictDelay", "PCT", "POS", "RandomWalk", "Replay", "RoundRobin", "STRATEGIES", "make_strategy"]
