"""One in-process campaign: a fuzz loop, its buckets, and minimized reproducers.

This is what ``migfuzz fuzz --workers 0`` runs; the farm will run the loops in Ray actors and
do the bucketing and minimization in the coordinator with the same classes. Results are
plain data (``CampaignResult``), so a store can persist them without knowing the search.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .buckets import Buckets
from .loop import BatchReport, FuzzConfig, FuzzLoop
from .minimize import minimize, minimized_name

BATCH = 250          # executions per batch: ~0.1 s, often enough for a progress line
# Minimization after a campaign is bounded by time as well as executions: the known bugs
# shrink in under a second, but a HANG input runs to the step limit (~60 ms), and a campaign
# with dozens of HANG buckets once minimized for 5 minutes after a 60-second run. Each
# bucket gets at most MINIMIZE_SECONDS, all of them MINIMIZE_TOTAL_SECONDS; a bucket cut
# short keeps what it reached and is stored as "not minimized (budget)".
MINIMIZE_SECONDS = 10.0
MINIMIZE_TOTAL_SECONDS = 60.0


@dataclass
class CampaignResult:
    config: dict
    seed: int
    executions: int
    seconds: float
    stats: dict
    buckets: list                  # Bucket, in order of discovery
    corpus: list = field(default_factory=list)      # Entry.to_json()
    minimize_executions: int = 0

    def to_json(self) -> dict:
        return {"config": self.config, "seed": self.seed, "executions": self.executions,
                "seconds": round(self.seconds, 3), "stats": self.stats,
                "buckets": [b.to_json() for b in self.buckets],
                "corpus_size": len(self.corpus),
                "minimize_executions": self.minimize_executions}


def minimize_input(inp: dict, signature: str, budget: int,
                   seconds: float | None = MINIMIZE_SECONDS) -> dict:
    """Shrink one bucket's input into the form a bucket keeps in ``minimized`` (scenario,
    exact schedule, sizes, trace hash, findings, ``complete``), plus the executions spent.
    The in-process campaign calls it per bucket; the farm runs it as a Ray task."""
    try:
        sh = minimize(inp["scenario"], inp["variant"], inp["schedule"], signature, budget,
                      seconds)
    except ValueError:
        return {"minimized": {"error": f"the stored input no longer gives {signature}"},
                "executions": 0}
    sc = dict(sh.scenario)
    sc["name"] = minimized_name(inp["scenario"]["name"])
    return {"minimized": {"scenario": sc, "schedule": sh.schedule, **sh.summary(),
                          "trace_hash": sh.result.trace_hash,
                          "findings": [{"kind": f.kind, "title": f.title,
                                        "signature": f.signature}
                                       for f in sh.result.findings]},
            "executions": sh.executions}


class Campaign:
    def __init__(self, config: FuzzConfig, seed: int):
        self.loop = FuzzLoop(config, seed)
        self.buckets = Buckets()
        self.config = config
        self.seed = seed
        self.corpus: list = []
        self.first_found: dict[str, int] = {}    # kind -> execution number
        self._start = 0            # executions the loop had when run() began (--resume)

    def absorb(self, rep: BatchReport) -> list:
        """Bucket a batch's findings; returns the buckets that are new."""
        new = []
        self.corpus += [e.to_json() for e in rep.new_entries]
        for ev in rep.findings:
            b, is_new = self.buckets.add(ev.finding, ev.input, ev.input_hash, ev.execution)
            self.first_found.setdefault(ev.finding.kind, ev.execution)
            if is_new:
                new.append(b)
        return new

    def run(self, execs: int | None = None, duration: float | None = None,
            progress: Callable[[dict], None] | None = None,
            stop: Callable[["Campaign"], bool] | None = None,
            on_batch: Callable[[BatchReport], None] | None = None) -> None:
        """Run until ``execs`` executions in all (counting any done before), ``duration``
        seconds, or ``stop``; ``on_batch`` sees every batch report (the store's hook)."""
        t0 = time.monotonic()
        self._start = self.loop.executions          # a resumed loop starts past 0
        while True:
            done = self.loop.executions
            if execs is not None and done >= execs:
                break
            if duration is not None and time.monotonic() - t0 >= duration:
                break
            n = BATCH if execs is None else min(BATCH, execs - done)
            rep = self.loop.run_batch(n)
            self.absorb(rep)
            if on_batch:
                on_batch(rep)
            if progress:
                progress(self.status(time.monotonic() - t0))
            if stop and stop(self):
                break

    def status(self, elapsed: float) -> dict:
        """Progress, the farm coordinator's keys: ``executions`` counts the whole campaign,
        ``session_executions`` and ``rate`` this run only (after ``--resume`` the two
        differ)."""
        s = self.loop.stats()
        done = s["executions"] - self._start
        return {"executions": s["executions"], "session_executions": done,
                "rate": done / max(elapsed, 1e-9), "workers": [],
                "coverage": s["coverage"], "corpus": s["corpus"],
                "buckets": len(self.buckets), "elapsed": elapsed}

    def minimize_all(self, budget: int = 2000, seconds: float = MINIMIZE_TOTAL_SECONDS,
                     progress: Callable[[int, int, object], None] | None = None) -> int:
        """Shrink each bucket's smallest input, within ``budget`` executions and
        MINIMIZE_SECONDS each and ``seconds`` in all; returns the executions spent.
        ``progress(i, n, bucket)`` is called before each bucket."""
        spent = 0
        todo = [b for b in self.buckets
                # a lock-order cycle is evidence from several runs, not one input
                if b.kind != "POTENTIAL_DEADLOCK" and b.input is not None]
        end = time.monotonic() + seconds
        for i, b in enumerate(todo):
            if progress:
                progress(i, len(todo), b)
            left = end - time.monotonic()
            if left <= 0:
                b.minimized = {"error": "not minimized (time budget)"}
                continue
            out = minimize_input(b.input, b.signatures[0], budget,
                                 min(MINIMIZE_SECONDS, left))
            b.minimized = out["minimized"]
            spent += out["executions"]
        return spent

    def result(self, seconds: float, minimize_executions: int = 0) -> CampaignResult:
        cfg = {"variant": self.loop.variant, "search": self.config.search,
               "generate": self.config.generate,
               "scenarios": [sc["name"] for sc in self.config.scenarios]}
        return CampaignResult(cfg, self.seed, self.loop.executions, seconds,
                              self.loop.stats(), list(self.buckets), self.corpus,
                              minimize_executions)
