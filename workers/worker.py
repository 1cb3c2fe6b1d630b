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


class FuzzWorker:
    def __init__(self, config: FuzzConfig, seed: int, index: int):
        self.config = config
        self.seed = seed
        self.index = index
        self.loop: FuzzLoop | None = None
        self.seq = 0              # batches done in this life
        self.lives_seed = seed

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
        rep = loop.run_batch(n)
        if merged:
            rep.findings[:0] = [ev for ev in merged if ev is not None]
        self.seq = seq + 1
        return {"report": rep, "seq": seq, "loop_seed": self.lives_seed, **self.info()}

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
