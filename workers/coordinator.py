"""The campaign coordinator: everything a farm does with what its workers report, without
Ray (``farm.py`` does the calls), so it can be tested and benchmarked alone.

- Coverage: one global feature set. A worker's batch lists its new features in the order of
  its new corpus entries (``Entry.new_features`` of them each), so each entry's own features
  are known; an entry is *admitted* only if one of them is new to the whole farm (two
  workers that found the same path in the same second keep one entry).
- The hub (syzkaller's hub between managers): admitted entries, generated scenarios, new
  features and lock-order edges go into append-only logs; each worker gets, with its next
  batch, what was logged since its last one, minus what it sent itself. A restarted worker
  gets everything.
- Buckets: ``fuzzer.search.buckets.Buckets`` over every finding of every worker; the
  store gets each (input, signature) once (its own unique key makes that exact anyway).
- The store: admitted batches wait in ``pending`` until ``flush`` writes them through
  ``db.recorder.Recorder.record_many``, one transaction for all of them. The interval
  between flushes grows with the store's load (``flush_interval``): the more a transaction
  takes, the more batches the next one coalesces.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from migfuzz.fuzzer.search.buckets import Buckets
from migfuzz.fuzzer.search.coverage import Coverage
from migfuzz.fuzzer.search.loop import BatchReport, Entry, FuzzConfig

LOGS = ("entries", "scenarios", "features", "lock_edges", "full")
STORE_SHARE = 0.25        # the share of its time the coordinator may spend writing


@dataclass
class WorkerStats:
    index: int
    name: str
    base: int = 0                 # executions stored by earlier sessions under this name
    executions: int = 0           # executions done in this session (completed batches)
    batches: int = 0
    restarts: int = 0
    failed: bool = False
    pid: int = 0
    node: str = ""
    coverage: int = 0
    corpus: int = 0
    loop_seconds: float = 0.0     # time its loop spent executing (this life)
    cursor: dict = field(default_factory=lambda: dict.fromkeys(LOGS, 0))
    recent: list = field(default_factory=list)      # (monotonic time, executions) samples

    def rate(self, now: float, window: float = 5.0) -> float:
        pts = [p for p in self.recent if now - p[0] <= window] or self.recent[-1:]
        if len(pts) < 2:
            return 0.0
        (t0, e0), (t1, e1) = pts[0], pts[-1]
        return (e1 - e0) / max(t1 - t0, 1e-9)


class Coordinator:
    def __init__(self, config: FuzzConfig, nworkers: int, *, variant: str,
                 entries=(), scenarios=(), features_=(), bases: dict | None = None,
                 base_executions: int = 0, full_after: int = 100):
        self.config = config
        self.variant = variant
        self.coverage = Coverage()
        self.buckets = Buckets()
        self.scenarios: dict[str, dict] = {sc["name"]: sc for sc in config.scenarios}
        self.logs: dict[str, list] = {k: [] for k in LOGS}      # (origin worker, item)
        self._edges: set = set()
        self._crash_keys: set = set()     # (input hash, signature) sent to the store
        self._bucketed: set = set()       # (input hash, signature) the buckets have seen
        self._done = 0                    # executions absorbed in this session
        self.corpus: list = []            # admitted entries (Entry.to_json), this session
        self.pending: list = []           # (report, worker name, executions, entry feats)
        self.first_found: dict[str, int] = {}
        self.base_executions = base_executions
        self.absorbed = 0
        # a bug is *full* once the farm has bucketed full_after distinct inputs of it (the
        # store's crash rows per bug, 100): the hub tells the workers, which then send
        # its findings as counts (workers.worker.Summary)
        self.full_after = full_after
        self._inputs_of: dict[str, int] = {}      # signature -> distinct inputs bucketed
        # coalescing: a flush is due every flush_interval seconds; after each flush the
        # interval becomes the time it took / STORE_SHARE (at least min_flush_interval, at
        # most max_flush_interval), so the store is busy at most ~STORE_SHARE of the time
        # and one transaction carries more batches as load grows (its cost per batch
        # falls: bench/results/farm.md, 20 batches a transaction vs 1)
        self.min_flush_interval = 1.0
        self.max_flush_interval = 10.0
        self.flush_interval = self.min_flush_interval
        self.flush_seconds = 0.0          # time spent in flush (the store's share)
        self.flushes = 0
        bases = bases or {}
        self.workers = [WorkerStats(i, f"w{i}", base=int(bases.get(f"w{i}", 0)))
                        for i in range(nworkers)]
        # what an earlier session stored: every worker starts from it (origin -1)
        for sc in scenarios:
            if sc["name"] not in self.scenarios:
                self.scenarios[sc["name"]] = sc
                self.logs["scenarios"].append((-1, sc))
        for f in self.coverage.merge(features_):
            self.logs["features"].append((-1, f))
        for e in entries:
            self.logs["entries"].append((-1, e))
        self.corpus_size = len(self.logs["entries"])

    # ---------------------------------------------------------------- the hub
    def scenario_of(self, name: str) -> dict:
        return self.scenarios[name]

    def sync_for(self, index: int, full: bool = False) -> dict:
        """What worker ``index`` has not seen: the logs since its cursor (all if ``full``),
        without its own items. Moves its cursor to the end."""
        w = self.workers[index]
        out = {}
        for k in LOGS:
            log = self.logs[k]
            start = 0 if full else w.cursor[k]
            out[k] = [item for origin, item in log[start:] if origin != index or full]
            w.cursor[k] = len(log)
        return out

    # ---------------------------------------------------------------- absorbing
    def absorb(self, index: int, rep: BatchReport, now: float | None = None,
               hits: dict | None = None) -> list:
        """Take one batch report of worker ``index``; return the buckets that are new.
        ``hits``: findings of full bugs the worker counted instead of sending
        (``{signature: [count, last execution in the batch, input hashes]}``)."""
        w = self.workers[index]
        # finding times on one campaign-wide scale: executions absorbed before this batch
        # plus the finding's place in it
        start = self.total_executions() - (rep.stats.get("executions", rep.executions)
                                           - rep.executions)
        w.executions += rep.executions
        self._done += rep.executions
        w.batches += 1
        w.coverage = rep.stats.get("coverage", w.coverage)
        w.corpus = rep.stats.get("corpus", w.corpus)
        w.loop_seconds = rep.stats.get("seconds", w.loop_seconds)
        now = time.monotonic() if now is None else now
        w.recent.append((now, w.executions))
        if len(w.recent) > 64:
            del w.recent[:32]
        self.absorbed += 1
        new_scs = []
        for sc in rep.new_scenarios:
            if sc["name"] not in self.scenarios:
                self.scenarios[sc["name"]] = sc
                self.logs["scenarios"].append((index, sc))
                new_scs.append(sc)
        # admit entries whose own features are new to the farm
        admitted, efeats, feats = [], [], []
        pos = 0
        for e in rep.new_entries:
            mine = rep.new_features[pos:pos + e.new_features]
            pos += e.new_features
            new = self.coverage.merge(mine)
            if not new:
                continue
            if e.scenario not in self.scenarios:       # defensive: a scenario we never saw
                continue
            admitted.append(e)
            efeats.append(new)
            feats += new
            self.logs["entries"].append((index, e))
            self.corpus.append(e.to_json())
        # features not carried by an entry (none today) still count as coverage
        for f in self.coverage.merge(rep.new_features[pos:]):
            feats.append(f)
        for f in feats:
            self.logs["features"].append((index, f))
        self.corpus_size += len(admitted)
        edges = []
        for edge in rep.lock_edges:
            key = tuple(edge)
            if key not in self._edges:
                self._edges.add(key)
                edges.append(edge)
                self.logs["lock_edges"].append((index, edge))
        # group the batch's findings by (input, signature): a schedule that trips an
        # oracle is often run again and again (a LOST_WRITE in 14% of executions)
        keys = [(ev.input_hash, ev.finding.signature) for ev in rep.findings]
        groups: dict[tuple, list] = {}
        for ev, key in zip(rep.findings, keys):
            g = groups.get(key)
            if g is None:
                groups[key] = [ev, 1, start + ev.execution]
            else:
                g[1] += 1
                g[2] = start + ev.execution
        # the store keeps one crash per (input, signature): repeats (the same schedule found
        # again, a re-run batch) are counted in the bucket but not sent to it. An
        # execution with anything new goes whole (the recorder files its second signature
        # as a duplicate of its first)
        news = {g[0].execution for key, g in groups.items() if key not in self._crash_keys}
        store = [ev for ev in rep.findings if ev.execution in news] if news else []
        if news:
            self._crash_keys.update(key for ev, key in zip(rep.findings, keys)
                                    if ev.execution in news)
        fresh = []
        buckets = self.buckets
        for key, (ev, count, last) in groups.items():
            if key in self._bucketed:
                # Buckets.add of an (input, signature) it has seen changes only these
                b = buckets.buckets[buckets.find(key[1])]
                b.hits += count
            else:
                when = start + ev.execution
                b, is_new = buckets.add(ev.finding, ev.input, ev.input_hash, when)
                self._bucketed.add(key)
                n = self._inputs_of[key[1]] = self._inputs_of.get(key[1], 0) + 1
                if n == self.full_after:
                    self.logs["full"].append((-1, key[1]))
                b.hits += count - 1
                self.first_found.setdefault(ev.finding.kind, when)
                if is_new:
                    fresh.append(b)
            b.last_seen = max(b.last_seen, last)
        for sig, (count, last, *hashes) in (hits or {}).items():
            if sig not in buckets.parent:
                continue                        # never bucketed here: nothing to count
            for h in (hashes[0] if hashes else ()):
                # as Buckets.add files an input: a hash that gave another signature
                # before joins the two buckets (a flaky mapping is one bug)
                prev = buckets.by_input.setdefault(h, [])
                if sig not in prev:
                    if prev:
                        buckets._union(prev[0], sig)
                    prev.append(sig)
            b = buckets.buckets[buckets.find(sig)]
            b.hits += count
            b.last_seen = max(b.last_seen, start + last)
        # every batch is recorded, empty or not: its stats sample carries the worker's
        # executions, which a resumed campaign starts from
        out = BatchReport(rep.executions, admitted, new_scs, feats, store, edges, rep.stats)
        self.pending.append((out, w.name, w.base + w.executions, efeats))
        return fresh

    def flush(self, recorder) -> int:
        """Write what is pending in one transaction; returns the batches written."""
        if not self.pending:
            return 0
        items, self.pending = self.pending, []
        if recorder is not None:
            t0 = time.perf_counter()
            try:
                recorder.record_many(items, len(self.buckets))
            except BaseException:
                self.pending[:0] = items        # nothing was stored: keep it for a retry
                raise
            took = time.perf_counter() - t0
            self.flush_seconds += took
            self.flushes += 1
            self.flush_interval = min(self.max_flush_interval,
                                      max(self.min_flush_interval, took / STORE_SHARE))
        return len(items)

    # ---------------------------------------------------------------- status
    def total_executions(self) -> int:
        return self.base_executions + self._done

    def status(self, elapsed: float, now: float | None = None) -> dict:
        now = time.monotonic() if now is None else now
        done = sum(w.executions for w in self.workers)
        return {"executions": self.total_executions(), "session_executions": done,
                "rate": done / max(elapsed, 1e-9),
                "workers": [{"name": w.name, "executions": w.executions,
                             "rate": w.rate(now), "restarts": w.restarts,
                             "failed": w.failed, "node": w.node, "pid": w.pid,
                             "coverage": w.coverage, "corpus": w.corpus}
                            for w in self.workers],
                "coverage": len(self.coverage), "corpus": self.corpus_size,
                "buckets": len(self.buckets), "elapsed": elapsed}

    def stats(self, seconds: float) -> dict:
        return {"executions": self.total_executions(), "coverage": len(self.coverage),
                "coverage_kinds": self.coverage.kinds(), "corpus": self.corpus_size,
                "scenarios": len(self.scenarios), "lock_edges": len(self._edges),
                "seconds": round(seconds, 3),
                "workers": {w.name: {"executions": w.executions, "batches": w.batches,
                                     "restarts": w.restarts, "failed": w.failed,
                                     "node": w.node}
                            for w in self.workers}}


def entry_from(e) -> Entry:
    return e if isinstance(e, Entry) else Entry(**{k: e[k] for k in (
        "id", "scenario", "schedule", "new_features", "added_at", "arm")})
