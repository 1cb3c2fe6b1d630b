"""The controlled scheduler.

Actors are generators that yield before each shared operation: a ``(site, obj)`` tuple for a
plain scheduling point, or a ``Wait`` when they cannot go on. The scheduler runs one step of
one enabled actor at a time and asks a strategy which, through the small protocol below (as
AWS Shuttle's Scheduler: start an execution, pick the next task, give a random number).
"""
from __future__ import annotations

import hashlib
from typing import Protocol, Sequence

from ..kernel.state import Kernel, Wait


class Strategy(Protocol):
    def new_execution(self, actors: Sequence[str]) -> None:
        """Called once before the first step of an execution."""

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        """Pick one of ``enabled`` (two or more actor indices, ascending) to run step
        ``step``. ``current`` ran the previous step (None at the start). Steps where only
        one actor can run are not asked about."""

    def next_choice(self, n: int) -> int:
        """A number in [0, n) for a nondeterministic choice that is not a schedule."""


class Diverged(Exception):
    """A recorded schedule no longer fits the code (raised by the replay strategy)."""

    def __init__(self, step: int, message: str):
        super().__init__(f"schedule diverged at step {step}: {message}")
        self.step = step


class Actor:
    __slots__ = ("index", "name", "cpu", "gen", "wait", "pending", "held", "done", "pins",
                 "kernel", "counter")

    def __init__(self, index: int, name: str, cpu: int, kernel: Kernel):
        self.index = index
        self.name = name
        self.cpu = cpu
        self.gen = None
        self.wait: Wait | None = None
        self.pending: tuple = ("start", None)
        self.held: list = []            # page locks held, in acquisition order
        self.done = False
        self.pins: list = []            # pages this actor pinned with GUP
        self.kernel = kernel
        self.counter = 0

    def lock_order(self, page, site: str) -> None:
        """Record 'held A while acquiring B' for the lock-order (lockdep/DEPT) graph."""
        for h in self.held:
            self.kernel.lock_edges.append((h.ident, h.lock_site, page.ident, site))

    def next_value(self) -> int:
        self.counter += 1
        return (self.index + 1) * 1000 + self.counter


class RunStats:
    __slots__ = ("steps", "preemptions", "trace", "pairs", "deadlocked", "hung", "blocked",
                 "choices", "error")

    def __init__(self):
        self.steps = 0
        self.preemptions = 0
        self.trace: list[tuple[int, str, object]] = []   # (actor, site, object) per step
        self.pairs: dict[tuple[str, str], None] = {}
        self.deadlocked = False
        self.hung = False
        self.blocked: list[tuple[Actor, Wait]] = []
        self.choices: list[int] = []       # the actor picked at each decision point
        self.error: Exception | None = None   # what a step of the model raised, if any


def trace_hash(trace: list[tuple[int, str, object]]) -> str:
    """The identity of an interleaving: equal for equal traces on any machine and any
    PYTHONHASHSEED (objects print by their deterministic reprs)."""
    text = "\n".join(["%d %s %r" % step for step in trace])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run(kernel: Kernel, actors: list[Actor], strategy: Strategy, max_steps: int) -> RunStats:
    """Run the actors to completion (or deadlock, or the step bound) under ``strategy``.

    The strategy is asked only at decision points (two or more actors enabled); the
    choices it makes there are the schedule (``RunStats.choices``).
    """
    st = RunStats()
    trace = st.trace
    pairs = st.pairs
    choices = st.choices
    last_touch: dict = {}
    strategy.new_execution([a.name for a in actors])
    next_actor = strategy.next_actor
    live = list(actors)
    live_idx = tuple(a.index for a in live)    # what most decisions pass (no one waits)
    waiting = 0                 # live actors with a Wait (most steps have none)
    step = 0
    prev: Actor | None = None
    prev_idx = None
    preemptions = 0
    while live:
        if waiting:
            enabled = [a for a in live if a.wait is None or a.wait.ready()]
            if not enabled:
                st.blocked = [(a, a.wait) for a in live]
                # an actor that retries a failed trylock is running, not asleep: with no
                # one able to change what it waits for it spins forever (a livelock, the
                # kernel's soft lockup), reported as a hang rather than a deadlock
                if any(kernel.spinning(a.name) for a in live):
                    st.hung = True
                else:
                    st.deadlocked = True
                break
            enabled_idx = tuple(a.index for a in enabled)
        else:
            enabled = live
            enabled_idx = live_idx
        if step >= max_steps:
            st.hung = True
            st.blocked = [(a, a.wait) for a in live]
            break
        if len(enabled) == 1:
            a = enabled[0]
        else:
            idx = next_actor(enabled_idx, prev_idx, step)
            choices.append(idx)
            a = actors[idx]
            if prev is not None and a is not prev and prev in enabled:
                preemptions += 1
        wait = a.wait
        if wait is not None:
            site, obj = wait.site, wait.obj
            a.wait = None
            waiting -= 1
        else:
            site, obj = a.pending
        trace.append((a.index, site, obj))
        if obj is not None:
            last = last_touch.get(obj)
            if last is not None and last[0] != a.index:
                pairs[(last[1], site)] = None
            last_touch[obj] = (a.index, site)
        if a is not prev:
            kernel.cur = a
            kernel.who = a.name
            kernel.switched = step
            prev = a
            prev_idx = a.index
        kernel.step = step
        step += 1
        try:
            y = a.gen.send(None)
        except StopIteration:
            a.done = True
            live.remove(a)
            live_idx = tuple(a.index for a in live)
            continue
        except Exception as e:           # a broken model step: a finding, not a crash
            st.error = e
            break
        if y.__class__ is Wait:
            a.wait = y
            waiting += 1
        else:
            a.pending = y
    kernel.cur = None
    kernel.who = "end"
    st.steps = step
    st.preemptions = preemptions
    return st
