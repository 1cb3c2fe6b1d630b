"""Bounded exhaustive search: preemption-bounded depth-first search over schedules.

Musuvathi and Qadeer, "Iterative Context Bounding for Systematic Testing of Multithreaded
Programs", PLDI 2007 (CHESS): most concurrency bugs need few preemptions (CHESS found 27
bugs, most with at most two), and the number of schedules with at most c preemptions grows
polynomially in the length of the run, not exponentially. A switch away from an actor that
could go on costs one preemption; a switch because the current actor blocked or ended is
free, as is the first choice.

Spin loops: an actor that retries without blocking (a fault waiting for a migration entry
to go) would spin forever once the preemption budget is spent, and every such schedule would
end as a HANG of the model. CHESS makes a yielding thread's switch free (fair scheduling);
here, after ``spin`` consecutive decisions of one actor while others could run (200: the
longest built-in run makes ~150 decisions in all), the next enabled actor runs, at no
preemption cost. It is one forced choice, so completeness within the bound is kept for every
schedule without such a spin.

One instance drives a whole search: run an execution, call ``advance()``, repeat until it
returns False; at that point every schedule within ``bound`` preemptions has been run
exactly once (the engine is deterministic, so a schedule prefix always leads to the same
choice points; a mismatch raises ``NondeterminismError``).
"""
from __future__ import annotations

from typing import Sequence


class NondeterminismError(RuntimeError):
    """The same schedule prefix reached a different set of enabled actors."""


class Exhaustive:
    name = "exhaustive"

    def __init__(self, seed: int = 0, bound: int = 2, spin: int = 200):
        self.seed = seed
        self.bound = bound
        self.spin = spin
        self.run_len = 0
        # one frame per step: [enabled, options, index of the current option, preemptions
        # before this step]
        self.stack: list[list] = []
        self.depth = 0
        self.preemptions = 0
        self.executions = 0

    def new_execution(self, actors: Sequence[str]) -> None:
        self.depth = 0
        self.preemptions = 0
        self.run_len = 0
        self.executions += 1

    def next_actor(self, enabled: Sequence[int], current: int | None, step: int) -> int:
        d = self.depth
        if d < len(self.stack):
            frame = self.stack[d]
            if frame[0] != tuple(enabled):
                raise NondeterminismError(
                    f"step {step}: enabled {list(enabled)}, before {list(frame[0])}")
        else:
            if current in enabled and self.run_len >= self.spin:
                later = [e for e in enabled if e > current]
                opts = [later[0] if later else min(e for e in enabled if e != current)]
            elif current in enabled and len(enabled) > 1:
                opts = [current]
                if self.preemptions < self.bound:
                    opts += [e for e in enabled if e != current]
            else:
                opts = list(enabled)
            frame = [tuple(enabled), opts, 0, self.preemptions]
            self.stack.append(frame)
        choice = frame[1][frame[2]]
        if choice == current:
            self.run_len += 1
        else:
            if current in enabled and self.run_len < self.spin:
                self.preemptions += 1
            self.run_len = 0
        self.depth = d + 1
        return choice

    def next_choice(self, n: int) -> int:
        return 0

    def advance(self) -> bool:
        """Move to the next unexplored schedule; False when every one has been run."""
        del self.stack[self.depth:]         # frames past the end of the last execution
        while self.stack:
            frame = self.stack[-1]
            if frame[2] + 1 < len(frame[1]):
                frame[2] += 1
                return True
            self.stack.pop()
        return False
