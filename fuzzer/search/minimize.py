"""Minimization in the manner of Hypothesis's shrinker.

Deterministic passes over the scenario and the schedule, each candidate accepted only if the
execution still gives the same signature *and* the input got smaller in the shortlex order
below; the passes repeat until none makes progress or the execution budget is spent.

Passes, in order (cheap and big steps first, as Hypothesis orders its shrink passes):
  1. drop an actor (its schedule entries go; later actors are renumbered);
  2. drop a command of an actor's program;
  3. drop a layout entry, shrink a vma, shrink a command's range, drop an injected fault,
     lower a repeat count;
  4. schedule: remove a preemption (drop a run, or merge it into the one before), swap two
     runs, cut the schedule short (the rest runs without preemptions), lower the actor
     chosen by a run.

A candidate runs under ``Guided(tail="stay")``: the schedule is followed where it fits and
the rest runs preemption-free, so a shrunk scenario does not need a schedule that fits it
exactly. The accepted input's schedule is the exact one that ran (replayable).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from ..execute import execute
from ..scenario import MAX_NAME, ScenarioError, validate
from ..scheduler.coverage_guided import Guided
from ..scheduler.replay import rle_decode, rle_encode
from .mutate import _clip


def size_key(sc: dict, result) -> tuple:
    cmds = sum(len(a["program"]) for a in sc["actors"])
    pages = sum(v["npages"] for m in sc["mms"] for v in m["vmas"])
    span = sum(c.get("npages", 0) + c.get("repeat", 1) + len(c.get("fail_alloc", ()))
               + len(c.get("fail_isolate", ())) for a in sc["actors"] for c in a["program"])
    layout = len(sc.get("layout", ()))
    choices = rle_decode(result.schedule)
    return (len(sc["actors"]), cmds, pages, layout, span, result.preemptions,
            len(result.schedule), len(choices), choices)


MIN_SUFFIX = "-min"


def minimized_name(name: str) -> str:
    """The name of a scenario's minimized form: ``<name>-min``, once (minimizing a minimized
    input again does not stack suffixes), cut so the result still fits MAX_NAME (a
    253-256-character name would otherwise become an input nobody can load)."""
    if name.endswith(MIN_SUFFIX):
        return name
    return name[:MAX_NAME - len(MIN_SUFFIX)] + MIN_SUFFIX


@dataclass
class Shrunk:
    scenario: dict
    schedule: list            # run-length encoded, exact
    result: object            # the Result of the final input
    executions: int           # executions spent
    accepted: int             # accepted shrink steps
    before: tuple             # size_key of the input as given
    after: tuple
    complete: bool = True     # False: the passes were cut short by the time budget

    def summary(self) -> dict:
        sc = self.scenario
        return {"actors": len(sc["actors"]),
                "pages": sum(v["npages"] for m in sc["mms"] for v in m["vmas"]),
                "commands": sum(len(a["program"]) for a in sc["actors"]),
                "preemptions": self.result.preemptions, "steps": self.result.steps,
                "executions": self.executions, "accepted": self.accepted,
                "complete": self.complete}


class Minimizer:
    def __init__(self, variant, signature: str, budget: int = 2000,
                 seconds: float | None = None):
        self.variant = variant
        self.signature = signature
        self.budget = budget
        self.executions = 0
        # a wall-clock bound besides the execution budget: a HANG input runs to the step
        # limit (~60 ms an execution), so 2000 executions of one could take two minutes
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.out_of_time = False

    def _spent(self) -> bool:
        if self.executions >= self.budget:
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.out_of_time = True
            return True
        return False

    def _run(self, sc: dict, guide: list[int], first: bool = False):
        if not first and self._spent():
            return None
        try:
            validate(sc)
            self.executions += 1
            r = execute(sc, self.variant, Guided(guide), check=False)
        except ScenarioError:
            return None
        if any(f.signature == self.signature for f in r.findings):
            return r
        return None

    def shrink(self, scenario: dict, schedule: list) -> Shrunk:
        sc = copy.deepcopy(scenario)
        guide = rle_decode(schedule)
        r = self._run(sc, guide, first=True)
        if r is None:
            raise ValueError(f"the input does not reproduce {self.signature}")
        best = size_key(sc, r)
        before, accepted = best, 0
        guide = rle_decode(r.schedule)
        progress = True
        while progress and not self._spent():
            progress = False
            for cand_sc, cand_guide in self._candidates(sc, guide):
                if self._spent():
                    break
                cr = self._run(cand_sc, cand_guide)
                if cr is None:
                    continue
                key = size_key(cand_sc, cr)
                if key < best:
                    sc, guide, r, best = cand_sc, rle_decode(cr.schedule), cr, key
                    accepted += 1
                    progress = True
                    break          # restart the passes on the smaller input
        return Shrunk(sc, rle_encode(guide), r, self.executions, accepted, before, best,
                      complete=not self.out_of_time)

    # ---- candidate generators (deterministic order) -----------------------------------

    def _candidates(self, sc: dict, guide: list[int]):
        yield from self._drop_actors(sc, guide)
        yield from self._drop_commands(sc, guide)
        yield from self._shrink_layout(sc, guide)
        yield from self._shrink_schedule(sc, guide)

    def _drop_actors(self, sc, guide):
        for i in reversed(range(len(sc["actors"]))):
            if len(sc["actors"]) <= 1:
                return
            c = copy.deepcopy(sc)
            del c["actors"][i]
            yield c, [a - (a > i) for a in guide if a != i]

    def _drop_commands(self, sc, guide):
        for i, a in enumerate(sc["actors"]):
            for q in reversed(range(len(a["program"]))):
                if len(a["program"]) <= 1:
                    break
                c = copy.deepcopy(sc)
                del c["actors"][i]["program"][q]
                yield c, guide

    def _shrink_layout(self, sc, guide):
        for j in reversed(range(len(sc.get("layout", ())))):
            c = copy.deepcopy(sc)
            del c["layout"][j]
            yield c, guide
        for j, m in enumerate(sc["mms"]):
            for q, v in enumerate(m["vmas"]):
                if v["npages"] > 1:
                    c = copy.deepcopy(sc)
                    c["mms"][j]["vmas"][q]["npages"] -= 1
                    if len(m["vmas"]) == 1:
                        _clip(c)
                    yield c, guide
        for i, a in enumerate(sc["actors"]):
            for q, cmd in enumerate(a["program"]):
                for key in ("fail_alloc", "fail_isolate"):
                    for x in range(len(cmd.get(key, ()))):
                        c = copy.deepcopy(sc)
                        cc = c["actors"][i]["program"][q]
                        del cc[key][x]
                        if not cc[key]:
                            del cc[key]
                        yield c, guide
                if cmd.get("repeat", 1) > 1:
                    c = copy.deepcopy(sc)
                    c["actors"][i]["program"][q]["repeat"] -= 1
                    yield c, guide
                if cmd.get("npages", 1) > 1:
                    for start_shift in (0, 1):
                        c = copy.deepcopy(sc)
                        cc = c["actors"][i]["program"][q]
                        cc["npages"] -= 1
                        cc["start"] += start_shift
                        yield c, guide

    def _shrink_schedule(self, sc, guide):
        runs = rle_encode(guide)
        for j in range(1, len(runs)):           # remove a preemption: drop a run ...
            yield sc, rle_decode(runs[:j] + runs[j + 1:])
        for j in range(1, len(runs)):           # ... or give its steps to the run before
            c = [list(r) for r in runs]
            c[j][0] = c[j - 1][0]
            yield sc, rle_decode(c)
        for j in range(1, len(runs) - 1):       # move a run's steps later
            c = [list(r) for r in runs]
            c[j], c[j + 1] = c[j + 1], c[j]
            yield sc, rle_decode(c)
        n = len(guide)
        cut = n // 2
        while cut >= 1:                          # cut the schedule short
            yield sc, guide[:n - cut]
            cut //= 2
        for j in range(len(runs)):               # lower a run's actor
            for lower in range(runs[j][0]):
                c = [list(r) for r in runs]
                c[j][0] = lower
                yield sc, rle_decode(c)


def minimize(scenario: dict, variant, schedule: list, signature: str,
             budget: int = 2000, seconds: float | None = None) -> Shrunk:
    return Minimizer(variant, signature, budget, seconds).shrink(scenario, schedule)
