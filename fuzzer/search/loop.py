"""The fuzz loop: pick a scenario and a strategy, execute, keep what adds coverage, report
findings. One ``FuzzLoop`` is one worker: the in-process ``migfuzz fuzz`` runs one, a farm
runs one per Ray actor and merges what ``run_batch`` returns (``merge``).

Determinism: every choice comes from one ``random.Random(seed)`` drawn in execution order,
so (config, seed, number of executions) fixes the results whatever the batch sizes;
merging entries from other workers changes them, as it must.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
import statistics
import time
from dataclasses import dataclass, field

from ..execute import check_deterministic, execute
from ..scenario import ScenarioError
from ..scheduler.deadlock_directed import DeadlockDirected
from ..scheduler.pct import FAIR_AFTER
from ..scheduler.replay import rle_decode
from ..kernel.variants import resolve_variant
from . import portfolio
from .coverage import Coverage, features
from .lockgraph import LockGraph
from .mutate import generate, mutate

RECENT = 500            # executions during which a new entry or scenario counts as "recent"
NEW_SCENARIO_RATE = 0.08   # share of executions spent trying a new generated scenario
BASE_SHARE_COMPLEMENT = 0.4   # share of picks that go to generated scenarios, once any exist
MAX_GENERATED = 64      # generated scenarios kept (the ones that added coverage first)
# DeadlockFuzzer's second phase: a potential deadlock that no run has confirmed yet takes
# the next executions, up to this many, before it is left as unconfirmed (directed runs
# deadlocked cross-mm-opposite and the three-way cross-mm-ring in 1000 of 1000 executions
# each, random walks in 55% and 39%: a real cycle is confirmed at once, a false one costs
# 20 executions)
DIRECTED_BUDGET = 20
DEC_SAMPLES = 64        # runs per scenario whose decision counts give its typical count


def input_hash(scenario: dict, variant: str, schedule: list) -> str:
    """The same hash as corpus.input.content_hash (scenario, canonical variant, schedule)."""
    core = {"scenario": scenario, "variant": variant, "schedule": schedule}
    text = json.dumps(core, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class FuzzConfig:
    variant: str = "v5.16"
    scenarios: list = field(default_factory=list)     # scenario dicts (validated)
    search: str = "portfolio"                          # see portfolio.SEARCHES
    generate: bool = True                              # mutate and generate scenarios
    fixed_pct: bool = False                            # PCT d=3, k=decisions only
    check_determinism: bool = False                    # replay every execution (2x cost)
    max_generated: int = MAX_GENERATED                 # generated scenarios the pool keeps


@dataclass
class Entry:
    """A corpus entry: a schedule of a scenario that added coverage."""
    id: str
    scenario: str                 # scenario name
    schedule: list
    new_features: int
    added_at: int                 # execution number
    arm: str
    picks: int = 0

    def to_json(self) -> dict:
        return {"id": self.id, "scenario": self.scenario, "schedule": self.schedule,
                "new_features": self.new_features, "added_at": self.added_at,
                "arm": self.arm}


@dataclass
class FindingEvent:
    finding: object               # fuzzer.findings.Finding
    input: dict                   # scenario, variant, schedule, strategy, seed, preemptions
    input_hash: str
    execution: int


@dataclass
class BatchReport:
    executions: int
    new_entries: list             # Entry
    new_scenarios: list           # generated scenario dicts that joined the pool
    new_features: list            # str
    findings: list                # FindingEvent
    lock_edges: list              # new lock-graph edges (LockGraph.export rows)
    stats: dict


class _Scn:
    __slots__ = ("sc", "name", "decisions", "entries", "execs", "last_gain", "generated",
                 "dec_samples", "typical")

    def __init__(self, sc: dict, generated: bool):
        self.sc = sc
        self.name = sc["name"]
        self.decisions = 0           # the most decisions any run made (fixed PCT's k)
        self.dec_samples: list[int] = []   # decisions of the first runs that ended fairly
        self.typical = 0             # their median: the portfolio's PCT scales k by it
        self.entries: list[Entry] = []
        self.execs = 0
        self.last_gain = 0
        self.generated = generated


class FuzzLoop:
    def __init__(self, config: FuzzConfig, seed: int):
        if not config.scenarios:
            raise ValueError("a fuzz loop needs at least one scenario")
        if config.search not in portfolio.SEARCHES:
            raise ValueError(f"unknown search {config.search!r} "
                             f"(known: {', '.join(portfolio.SEARCHES)})")
        self.config = config
        self.variant, _ = resolve_variant(config.variant)
        self.seed = seed
        self.rng = random.Random(seed)
        self.coverage = Coverage()
        self.lockgraph = LockGraph()
        self.pool: dict[str, _Scn] = {}
        for sc in config.scenarios:
            self.pool[sc["name"]] = _Scn(copy.deepcopy(sc), False)
        self.base = list(self.pool)
        self.executions = 0
        self.arms: dict[str, int] = {}
        self.corpus_size = 0
        self.refused = 0        # generated scenarios with new coverage the full pool refused
        self.seconds = 0.0
        # potential deadlocks to confirm: cycle sites -> {"scope", "edges", "tries", "confirmed"}
        self.deadlocks: dict[tuple, dict] = {}

    # ---- one execution -----------------------------------------------------------------

    def _pick_scenario(self) -> _Scn:
        gen = [n for n in self.pool if self.pool[n].generated]
        # the given scenarios keep 60% of the executions however many generated ones join
        # (with 40 generated scenarios and equal weights, madvise-race got 5% of a 4000-
        # execution campaign, ~200 runs, too few for a 0.5%-per-run bug)
        names = gen if gen and self.rng.random() < BASE_SHARE_COMPLEMENT else self.base
        now = self.executions
        weights = [3.0 if self.pool[n].last_gain and now - self.pool[n].last_gain < RECENT
                   else 1.0 for n in names]
        return self.pool[self.rng.choices(names, weights)[0]]

    def _pick_entry(self, s: _Scn) -> Entry:
        now = self.executions
        weights = [(1 + e.new_features) * (4.0 if now - e.added_at < RECENT else 1.0)
                   / (1 + e.picks / 8) for e in s.entries]
        e = self.rng.choices(s.entries, weights)[0]
        e.picks += 1
        return e

    def _new_scenario(self) -> _Scn | None:
        rng = self.rng
        if rng.random() < 0.25:
            sc = generate(rng)
        else:
            parent = self.pool[rng.choice(list(self.pool))].sc
            sc, _ = mutate(parent, rng)
        if sc["name"] in self.pool:
            return self.pool[sc["name"]]
        return _Scn(sc, True)

    def step(self, report: BatchReport) -> None:
        rng = self.rng
        cfg = self.config
        s = None
        target = self._deadlock_to_confirm()
        if target is not None:
            s = self.pool[target["scope"]]
            arm = "deadlock"
            seed = rng.getrandbits(32)
            strat = DeadlockDirected(seed, target["edges"])
            target["tries"] += 1
        else:
            if cfg.generate and rng.random() < NEW_SCENARIO_RATE:
                s = self._new_scenario()
            if s is None:
                s = self._pick_scenario()
            arm = portfolio.pick_arm(cfg.search, rng, bool(s.entries))
            seed = rng.getrandbits(32)
            parent = other = None
            if arm == "guided":
                parent = rle_decode(self._pick_entry(s).schedule)
                if len(s.entries) > 1 and rng.random() < 0.2:
                    other = rle_decode(self._pick_entry(s).schedule)
            # k for textbook PCT: the typical run's decisions, not the most any run made (a
            # run starved to the fairness bound makes ~500 and would put the change points
            # after the end of every normal run)
            strat = portfolio.make(arm, seed, rng, s.typical or s.decisions or 16,
                                   cfg.fixed_pct, parent, other, len(s.sc["actors"]),
                                   s.typical or 16)
        n = self.executions
        self.executions += 1
        self.arms[arm] = self.arms.get(arm, 0) + 1
        try:
            r = execute(s.sc, self.variant, strat, seed=seed, check=False)
        except ScenarioError:
            return                       # a generated scenario the builder rejects
        if cfg.check_determinism:
            check_deterministic(s.sc, self.variant, r)
        s.execs += 1
        ndec = sum(c for _, c in r.schedule)
        s.decisions = max(s.decisions, ndec)
        if ndec < FAIR_AFTER and len(s.dec_samples) < DEC_SAMPLES:
            # a run that reached the fairness bound measures the starvation, not the code
            s.dec_samples.append(ndec)
            s.typical = statistics.median_low(s.dec_samples)
        feats = features(r)
        if s.name not in self.pool and not self._admit(s, feats, report):
            # a generated scenario the full pool cannot take: its run neither joins the
            # corpus nor claims coverage (an entry must name a scenario every reader of
            # the corpus can resolve, and coverage no entry holds would hide the same
            # features from a scenario that can be admitted later); findings still count
            feats = []
        new = self.coverage.add(feats)
        inp = None
        if new:
            report.new_features.extend(new)
            s.last_gain = n
            assert s.name in self.pool, f"corpus entry for {s.name!r}, not in the pool"
            e = Entry(f"{self.seed}:{n}", s.name, r.schedule, len(new), n, arm)
            s.entries.append(e)
            self.corpus_size += 1
            report.new_entries.append(e)
        if r.findings or r.lock_edges:
            inp = {"scenario": s.sc, "variant": self.variant, "schedule": r.schedule,
                   "strategy": arm, "seed": seed, "preemptions": r.preemptions,
                   "steps": r.steps, "trace_hash": r.trace_hash}
            h = input_hash(s.sc, self.variant, r.schedule)
            for f in r.findings:
                report.findings.append(FindingEvent(f, inp, h, n))
        if r.lock_edges:
            before = self.lockgraph.edges
            origin = {"scenario": s.name, "schedule": r.schedule, "execution": n}
            pot = self.lockgraph.add(s.name, r.lock_edges, origin,
                                     deadlocked=any(f.kind == "DEADLOCK" for f in r.findings))
            if self.lockgraph.edges != before:
                report.lock_edges.extend(self.lockgraph.export()[before:])
            for f in pot:
                report.findings.append(FindingEvent(f, inp, h, n))
            self._want_confirmed(pot)
        if target is not None and any(f.kind == "DEADLOCK" for f in r.findings):
            target["confirmed"] = True

    def _admit(self, s: _Scn, feats: list[str], report: BatchReport) -> bool:
        """Take a generated scenario into the pool if its run added coverage and the pool
        has room for another generated scenario (the first ``max_generated`` that gained
        coverage are kept)."""
        cov = self.coverage
        if not any(f not in cov for f in feats):
            return False
        if sum(1 for x in self.pool.values() if x.generated) >= self.config.max_generated:
            self.refused += 1
            return False
        self.pool[s.name] = s
        report.new_scenarios.append(s.sc)
        return True

    # ---- DeadlockFuzzer's second phase -------------------------------------------------

    def _want_confirmed(self, findings) -> None:
        """Queue each new POTENTIAL_DEADLOCK of a scenario in the pool for directed runs
        (the default portfolio only: the single strategies are baselines)."""
        if self.config.search != "portfolio":
            return
        for f in findings:
            scope = f.detail.get("scope")
            if f.kind == "POTENTIAL_DEADLOCK" and scope in self.pool:
                self.deadlocks.setdefault(f.sites, {
                    "scope": scope, "tries": 0, "confirmed": False,
                    "edges": [(e["held"], e["acquired"]) for e in f.detail["edges"]]})

    def _deadlock_to_confirm(self) -> dict | None:
        for t in self.deadlocks.values():
            if not t["confirmed"] and t["tries"] < DIRECTED_BUDGET:
                return t
        return None

    def run_batch(self, n: int) -> BatchReport:
        """Run ``n`` executions; return what is new (for a coordinator to merge)."""
        t0 = time.perf_counter()
        report = BatchReport(0, [], [], [], [], [], {})
        start = self.executions
        for _ in range(n):
            self.step(report)
        self.seconds += time.perf_counter() - t0
        report.executions = self.executions - start
        report.stats = self.stats()
        return report

    def stats(self) -> dict:
        return {"executions": self.executions, "coverage": len(self.coverage),
                "coverage_kinds": self.coverage.kinds(), "corpus": self.corpus_size,
                "scenarios": len(self.pool), "scenarios_refused": self.refused,
                "arms": dict(sorted(self.arms.items())),
                "lock_edges": self.lockgraph.edges, "seconds": round(self.seconds, 3)}

    # ---- sharing with other workers -------------------------------------------------

    def merge(self, entries=(), scenarios=(), features_=(), lock_edges=()) -> list:
        """Take corpus entries, generated scenarios, coverage and lock-graph edges found by
        other workers. Returns POTENTIAL_DEADLOCK findings the merged edges complete."""
        for sc in scenarios:
            if sc["name"] not in self.pool:
                self.pool[sc["name"]] = _Scn(copy.deepcopy(sc), True)
        for e in entries:
            e = e if isinstance(e, Entry) else Entry(**{k: e[k] for k in (
                "id", "scenario", "schedule", "new_features", "added_at", "arm")})
            s = self.pool.get(e.scenario)
            if s is not None and all(x.id != e.id for x in s.entries):
                s.entries.append(Entry(e.id, e.scenario, e.schedule, e.new_features,
                                       self.executions, e.arm))
                self.corpus_size += 1
        self.coverage.merge(features_)
        found = self.lockgraph.merge(lock_edges)
        self._want_confirmed(found)
        return found
