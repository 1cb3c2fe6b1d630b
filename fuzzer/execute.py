"""Run one input (scenario, variant, strategy) to a result: findings, trace hash, the exact
schedule, coverage. The one entry point the CLI, the fuzzer and the workers use."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from . import oracles
from .findings import Finding, model_error
from .scenario import build, validate
from .scheduler.controlled import Diverged, run, trace_hash
from .scheduler.replay import Replay, rle_decode, rle_encode
from .kernel.variants import resolve_variant


@dataclass
class Result:
    scenario: str
    variant: str
    strategy: str
    seed: int | None
    findings: list[Finding]
    steps: int
    preemptions: int
    schedule: list[list[int]]            # run-length encoded choices at decision points
    actors: list[str]
    trace: list[tuple[int, str, object]] = field(repr=False, default_factory=list)
    branches: list[str] = field(repr=False, default_factory=list)
    pairs: list[tuple[str, str]] = field(repr=False, default_factory=list)
    lock_edges: list[tuple] = field(repr=False, default_factory=list)
    requested: int = 0
    migrated: int = 0
    kernel: object = field(repr=False, default=None)
    diverged: str | None = None          # lenient replay: where the schedule stopped fitting
    diverged_step: int | None = None     # ... and at which step (later findings are not its)

    def schedule_findings(self) -> list[Finding]:
        """The findings the schedule produced: on a lenient replay that diverged, the ones
        seen before the divergence (later ones are the continuation strategy's)."""
        if self.diverged_step is None:
            return self.findings
        return [f for f in self.findings if f.step < self.diverged_step]

    @cached_property
    def trace_hash(self) -> str:
        """sha256 of the trace. Computed on first use: it costs ~45 us, an eighth of an
        overlap-2 execution, and the fuzz loop needs it only for executions that found
        something."""
        return trace_hash(self.trace)

    def to_json(self, trace: bool = False) -> dict:
        out = {
            "scenario": self.scenario, "variant": self.variant, "strategy": self.strategy,
            "seed": self.seed, "findings": [f.to_json() for f in self.findings],
            "steps": self.steps, "preemptions": self.preemptions,
            "trace_hash": self.trace_hash, "actors": self.actors,
            "migrated": self.migrated, "requested": self.requested,
            "diverged": self.diverged, "diverged_step": self.diverged_step,
        }
        if trace:
            out["trace"] = [[self.actors[i], site] for i, site, _ in self.trace]
        return out


def execute(scenario: dict, variant, strategy, *, seed: int | None = None,
            check: bool = True) -> Result:
    """Run one execution. ``strategy`` is any object of the Strategy protocol; with a
    ``Replay`` strategy a schedule that does not fit raises ``Diverged``."""
    if check:
        validate(scenario)
    vname, sw = resolve_variant(variant)
    built = build(scenario, sw)
    k = built.kernel
    observe = getattr(strategy, "observe", None)
    if observe is not None:
        observe(built.actors)            # a directed strategy reads the actors' held locks
    st = run(k, built.actors, strategy, built.max_steps)
    diverged = diverged_step = None
    if isinstance(strategy, Replay):
        if strategy.unused() and strategy.diverged_at is None:
            err = Diverged(st.steps, f"the execution ended but the schedule has "
                                     f"{strategy.unused()} more step(s)")
            if strategy.strict:
                raise err
            strategy.diverged_at = err
        if strategy.diverged_at is not None:
            diverged, diverged_step = str(strategy.diverged_at), strategy.diverged_at.step
    if st.error is not None:
        k.findings.append(model_error(st.error, k.step))
    else:
        try:
            if st.deadlocked:
                oracles.deadlock(k, st.blocked)
            elif st.hung:
                oracles.hang(k, st.blocked, built.max_steps, k.step + 1)
            else:
                oracles.end_state(k)
        except Exception as e:           # an oracle that cannot read the state it checks
            k.findings.append(model_error(e, k.step))
    return Result(
        scenario=scenario["name"], variant=vname,
        strategy=getattr(strategy, "name", type(strategy).__name__), seed=seed,
        findings=k.findings, steps=st.steps, preemptions=st.preemptions,
        schedule=rle_encode(st.choices),
        actors=[a.name for a in built.actors], trace=st.trace,
        branches=list(k.branches), pairs=list(st.pairs), lock_edges=k.lock_edges,
        requested=built.requested, migrated=built.migrated, kernel=k, diverged=diverged,
        diverged_step=diverged_step)


def replay(scenario: dict, variant, schedule: list[list[int]], *, strict: bool = True,
           **kw) -> Result:
    """Replay a stored schedule exactly. Strict: raise Diverged where it no longer fits;
    lenient: carry on and report the divergence in ``Result.diverged``."""
    return execute(scenario, variant, Replay(rle_decode(schedule), strict=strict), **kw)


class Nondeterministic(Exception):
    """An execution and the exact replay of its schedule gave different traces or findings:
    something outside the scenario, the variant and the schedule steered the run (global
    state left by an earlier execution, iteration over an unordered set, the clock...)."""


def check_deterministic(scenario: dict, variant, r: Result) -> None:
    """Replay ``r``'s schedule on a freshly built kernel and require the same trace and the
    same findings, as AWS Shuttle's determinism checker does; raise Nondeterministic with
    the first step where the two traces part."""
    again = replay(scenario, variant, r.schedule, strict=False)
    sigs = sorted(f.signature for f in r.findings)
    if again.trace_hash == r.trace_hash and sorted(f.signature for f in again.findings) == sigs:
        return
    step = next((i for i, (x, y) in enumerate(zip(r.trace, again.trace)) if x != y),
                min(len(r.trace), len(again.trace)))
    raise Nondeterministic(
        f"nondeterministic execution of {scenario.get('name', '?')} on {r.variant}: trace "
        f"{r.trace_hash}, its replay {again.trace_hash}; they part at step {step}")
