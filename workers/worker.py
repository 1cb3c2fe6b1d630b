"""A farm worker: one fuzz loop in a Ray actor, run in batches the coordinator asks for.

The actor is a plain class here (``FuzzWorker``) so it can be tested and benchmarked without
Ray; ``farm.py`` wraps it with ``ray.remote`` (restarts, retries, placement).

Seeds: worker ``i`` of a campaign seeded ``s`` runs ``worker_seed(s, i)`` (worker 0 runs ``s``
itself, so one worker that gets nothing from the hub repeats the in-process loop exactly).

Restarts: Ray re-creates a killed actor by running ``__init__`` again (its memory is gone)
and re-sends the call it was running (``max_task_retries``). A fresh actor that is asked for
batch ``seq > 0`` does not run it: it answers ``{"restarted": True}`` and the coordinator
re-sends that batch with the whole hub state (``full=True``); the loop is then reseeded from
``(seed, index, seq)`` so it does not repeat the executions its first life already did.
"""
from __future__ import annotations

import os
import random

from migfuzz.fuzzer.search.buckets import input_size
from migfuzz.fuzzer.search.loop import FindingEvent, FuzzConfig, FuzzLoop, input_hash


def worker_seed(seed: int, index: int, restart_at: int = 0) -> int:
    """A worker's loop seed: stable across processes (string seeding, no hash())."""
    if index == 0 and restart_at == 0:
        return seed
    return random.Random(f"migfuzz-worker:{seed}:{index}:{restart_at}").getrandbits(32)


def node_id() -> str:
    try:
        import ray
        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:   # noqa: BLE001 - outside Ray (bench, tests): no node
        pass
    return ""


class Summary:
    """What a worker still sends, finding by finding, of a *full* bug.

    A bug is full once the farm holds ``cap`` distinct inputs for it (the coordinator
    says so through the hub: ``sync["full"]``; cap = the store's crash rows per bug,
    100). Measured on the default campaign: a batch of 250 executions carries ~33
    findings of ~13 distinct inputs, nearly all of 3-5 bugs found long ago; at 1,000
    workers that was ~300,000 findings a second for one coordinator, each new input a
    bucket update (~15 us), and none of them a crash row the store would keep. So for a
    full bug the worker sends, per batch, a count, its last execution and the input hashes
    (``hits[sig] = [count, last, hashes]``, the bucket's hits and last seen), and whole only the
    findings that can still change the bucket: an input smaller (``buckets.input_size``)
    than any it sent for that bug (the bucket's smallest input), a title or a scenario it
    has not sent with that bug (alternative titles, scenarios), and every finding of an
    execution whose set of signatures it has not sent before (one input with two
    signatures joins their buckets, fuzzer.search.buckets). What it no longer sends: the
    other inputs of a full bug, which the bucket would only have counted (and the store
    not kept), except their input hashes: an input can give another signature later
    (a POTENTIAL_DEADLOCK completes when more lock-order edges are known, on any worker
    that runs a shared corpus entry), and the buckets then join the two, so the
    coordinator files each hash under its signature (24 characters a distinct input).
    """

    def __init__(self):
        self.full: set[str] = set()
        self.best: dict[str, tuple] = {}          # sig -> smallest input_size sent
        self.titles: set[tuple[str, str]] = set()
        self.scenarios: set[tuple[str, str]] = set()
        self.combos: set[frozenset] = set()

    def split(self, findings: list) -> tuple[list, dict]:
        """(findings to send whole, {sig: [count, last execution, input hashes]} for the
        rest)."""
        if not self.full:
            for ev in findings:
                self._saw(ev.finding.signature, ev)
            return findings, {}
        by_exec: dict[int, list] = {}
        for ev in findings:
            by_exec.setdefault(ev.execution, []).append(ev)
        keep, hits = [], {}
        sigs_of: dict[int, str] = {}
        for execution, evs in by_exec.items():
            sigs = [ev.finding.signature for ev in evs]
            for ev, sig in zip(evs, sigs):
                sigs_of[id(ev)] = sig
            combo = frozenset(sigs)
            if len(combo) > 1 and combo not in self.combos:
                self.combos.add(combo)
                keep += evs
                continue
            for ev, sig in zip(evs, sigs):
                if sig not in self.full or self._informative(sig, ev):
                    keep.append(ev)
                else:
                    h = hits.setdefault(sig, [0, 0, set()])
                    h[0] += 1
                    h[1] = max(h[1], ev.execution)
                    h[2].add(ev.input_hash)
        for h in hits.values():
            h[2] = sorted(h[2])
        kept = {id(ev) for ev in keep}
        keep = [ev for ev in findings if id(ev) in kept]      # in the loop's order
        for ev in keep:
            self._saw(sigs_of[id(ev)], ev)
        return keep, hits

    def _informative(self, sig: str, ev) -> bool:
        best = self.best.get(sig)
        return ((best is None or input_size(ev.input) < best)
                or (sig, ev.finding.title) not in self.titles
                or (sig, ev.input["scenario"]["name"]) not in self.scenarios)

    def _saw(self, sig: str, ev) -> None:
        size = input_size(ev.input)
        if sig not in self.best or size < self.best[sig]:
            self.best[sig] = size
        self.titles.add((sig, ev.finding.title))
        self.scenarios.add((sig, ev.input["scenario"]["name"]))


class FuzzWorker:
    def __init__(self, config: FuzzConfig, seed: int, index: int):
        self.config = config
        self.seed = seed
        self.index = index
        self.loop: FuzzLoop | None = None
        self.seq = 0              # batches done in this life
        self.lives_seed = seed
        self.summary = Summary()

    def info(self) -> dict:
        return {"index": self.index, "pid": os.getpid(), "node": node_id(), "seq": self.seq}

    def run_batch(self, seq: int, n: int, sync: dict | None = None,
                  full: bool = False) -> dict:
        """Merge ``sync`` (hub entries, scenarios, features, lock edges found elsewhere),
        then run ``n`` executions. ``seq`` numbers this worker's batches from 0."""
        if self.loop is None:
            if seq > 0 and not full:
                # a restarted actor: its loop and its share of the hub are gone
                return {"restarted": True, "seq": seq, **self.info()}
            self.lives_seed = worker_seed(self.seed, self.index, seq)
            self.loop = FuzzLoop(self.config, self.lives_seed)
        loop = self.loop
        merged = []
        if sync:
            pot = loop.merge(entries=sync.get("entries", ()),
                             scenarios=sync.get("scenarios", ()),
                             features_=sync.get("features", ()),
                             lock_edges=sync.get("lock_edges", ()))
            merged = [self._merged_event(f) for f in pot]
            self.summary.full.update(sync.get("full", ()))
        rep = loop.run_batch(n)
        if merged:
            rep.findings[:0] = [ev for ev in merged if ev is not None]
        rep.findings, hits = self.summary.split(rep.findings)
        self.seq = seq + 1
        return {"report": rep, "hits": hits, "seq": seq, "loop_seed": self.lives_seed,
                **self.info()}

    def _merged_event(self, f) -> FindingEvent | None:
        """A POTENTIAL_DEADLOCK completed by edges from other workers: its input is the
        cycle's scenario with the schedule of an edge this worker made itself, if any (as
        in one loop, that input alone does not reproduce the cycle; the edges do)."""
        loop = self.loop
        scope = f.detail.get("scope")
        s = loop.pool.get(scope)
        if s is None:
            return None
        sched = next((e["origin"]["schedule"] for e in f.detail.get("edges", ())
                      if isinstance(e.get("origin"), dict) and "schedule" in e["origin"]),
                     [])
        inp = {"scenario": s.sc, "variant": loop.variant, "schedule": sched,
               "strategy": "merged", "seed": None, "preemptions": max(0, len(sched) - 1),
               "steps": 0, "trace_hash": ""}
        return FindingEvent(f, inp, input_hash(s.sc, loop.variant, sched), loop.executions)
