"""Run the preemption-bounded exhaustive search over one scenario to the end.

``prove`` says either "found X after n executions" or "no finding within k preemptions,
all n schedules run" (``complete``); with a budget it may also stop short and say so.
Distinct trace hashes are counted: with no reduction every schedule is a distinct trace,
so the count shows how much a DPOR-style reduction could save.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..execute import execute
from ..scheduler.exhaustive import Exhaustive


@dataclass
class Proof:
    scenario: str
    variant: str
    bound: int
    executions: int
    complete: bool                 # every schedule within the bound ran
    traces: int                    # distinct trace hashes
    findings: list = field(default_factory=list)    # (execution, Finding, schedule)

    @property
    def clean(self) -> bool:
        return self.complete and not self.findings

    def verdict(self) -> str:
        if self.findings:
            n, f, _ = self.findings[0]
            return f"{f.kind} found after {n} execution(s) within {self.bound} preemption(s)"
        if self.complete:
            return (f"no finding within {self.bound} preemption(s): all {self.executions} "
                    f"schedules run")
        return f"stopped after {self.executions} executions, search incomplete"


def prove(scenario: dict, variant, bound: int, budget: int = 200_000,
          stop_at_first: bool = True) -> Proof:
    ex = Exhaustive(0, bound)
    hashes: dict[str, None] = {}
    p = Proof(scenario["name"], str(variant), bound, 0, False, 0)
    while p.executions < budget:
        r = execute(scenario, variant, ex, check=False)
        p.executions += 1
        hashes[r.trace_hash] = None
        if r.findings:
            for f in r.findings:
                p.findings.append((p.executions, f, r.schedule))
            if stop_at_first:
                break
        if not ex.advance():
            p.complete = True
            break
    p.traces = len(hashes)
    return p
