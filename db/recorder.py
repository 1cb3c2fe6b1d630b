"""The bridge between the search and the store: what a fuzz batch found becomes corpus
entries, crashes and stats samples written in one transaction, and a stored campaign
becomes the state a resumed fuzz loop starts from. Used by the in-process ``migfuzz fuzz``
and by the farm's coordinator alike."""
from __future__ import annotations

import time

from migfuzz.corpus import input as inputs
from migfuzz.fuzzer import ENGINE_VERSION
from migfuzz.fuzzer.search.loop import BatchReport, Entry, FuzzConfig

from .errors import StoreError
from .store import Store


def campaign_config(cfg: FuzzConfig) -> dict:
    """What a resumed campaign needs to rebuild its loop (the scenarios in full: a user's
    scenario file may be gone by then)."""
    return {"variant": cfg.variant, "search": cfg.search, "generate": cfg.generate,
            "fixed_pct": cfg.fixed_pct, "max_generated": cfg.max_generated,
            "scenarios": cfg.scenarios}


def config_from(stored: dict) -> FuzzConfig:
    try:
        cfg = FuzzConfig(stored["variant"], stored["scenarios"], stored["search"],
                         stored["generate"], stored.get("fixed_pct", False))
        cfg.max_generated = int(stored.get("max_generated", cfg.max_generated))
        return cfg
    except (KeyError, TypeError):
        raise StoreError("this campaign was not started by 'migfuzz fuzz' (its config "
                         "has no scenarios); it cannot be resumed") from None


class Recorder:
    """Writes one worker's (or one coordinator's) batches of one campaign."""

    def __init__(self, store: Store, campaign: str, scenario_of, variant: str):
        self.store = store
        self.campaign = campaign
        self.scenario_of = scenario_of          # scenario name -> scenario dict
        self.variant = variant
        self.crashes = 0
        self.last_write: dict = {}
        # crash rows stored per signature in this campaign (read from the store at the
        # first write, so a resumed campaign starts from what it stored): see _thin
        self.stored: dict[str, int] | None = None
        self.sent = self.held_back = 0          # crash records sent / not sent (thinned)

    def entry_input(self, e: Entry) -> dict:
        return inputs.make(self.scenario_of(e.scenario), self.variant, e.schedule,
                           strategy=e.arm)

    def record(self, rep: BatchReport, worker: str, executions: int, buckets: int,
               entry_features: list | None = None) -> dict:
        """Store a batch: its new corpus entries (the batch's new coverage goes with its
        first entry, or each entry's own with ``entry_features``), one crash per finding,
        and a stats sample. One transaction."""
        return self.record_many([(rep, worker, executions, entry_features)], buckets)

    def record_many(self, items, buckets: int) -> dict:
        """Store several batches (``(report, worker, executions so far, entry_features or
        None)``, from one or many workers) in ONE transaction: the farm's coordinator
        coalesces what arrived since its last write. Stats: one sample per worker (its
        last). Writing the same batches again adds nothing (the store is idempotent)."""
        corpus, crashes, pairs, found = [], [], [], []
        if self.stored is None:
            self.stored = self.store.crash_counts(self.campaign)
        last: dict[str, tuple] = {}
        for rep, worker, executions, efeats in items:
            for n, e in enumerate(rep.new_entries):
                cov = (efeats[n] if efeats is not None
                       else sorted(rep.new_features) if n == 0 else [])
                corpus.append({"input": self.entry_input(e), "worker": worker,
                               "coverage": sorted(cov)})
            primary: dict[int, str] = {}      # execution -> its first finding's signature
            for ev in rep.findings:
                sig = ev.finding.signature
                first = primary.setdefault(ev.execution, sig)
                if first != sig:
                    pairs.append((sig, first))
                found.append((sig, ev, worker))
            last[worker] = (rep, executions)
        self.crashes += len(found)
        for sig, ev, worker in self._thin(found):
            i, f = ev.input, ev.finding
            inp = inputs.make(i["scenario"], self.variant, i["schedule"],
                              strategy=i.get("strategy", ""), seed=i.get("seed"))
            crashes.append({"input": inp, "signature": sig, "kind": f.kind, "title": f.title,
                            "trace_hash": i.get("trace_hash", ""),
                            "steps": i.get("steps", 0), "worker": worker})
        stats = []
        t = time.time()
        for worker, (rep, executions) in last.items():
            st = rep.stats
            stats.append({"worker": worker, "t": t, "executions": executions,
                          "coverage": st.get("coverage", 0),
                          "corpus_size": st.get("corpus", 0),
                          "buckets": buckets, "crashes": self.crashes})
        self.last_write = self.store.write_batch(self.campaign, corpus=corpus,
                                                 crashes=crashes, stats=stats)
        # one input that trips two oracles is one bug: a bug first seen as the second
        # finding of an execution is filed as a duplicate of the first (syzkaller keeps
        # such titles as alternative titles of one bug; ClusterFuzz users asked that flaky
        # testcases not flip between crash types)
        for h, sig in self.last_write["crashes"]["new"]:
            self.stored[sig] = self.stored.get(sig, 0) + 1
        fresh = set(self.last_write["crashes"]["new_bugs"])
        for sig, first in pairs:
            if sig in fresh:
                self.store.update_bug(sig, status="duplicate", duplicate_of=first)
                fresh.discard(sig)
        return self.last_write


    def _thin(self, found: list[tuple]) -> list[tuple]:
        """The findings (``(signature, FindingEvent, worker)``) worth a crash record.

        The store keeps at most ``max_crashes_per_bug`` crash rows per bug and campaign
        (syzkaller's 100 crash logs); past it, a crash only moves the bug's last seen and
        may give it a smaller reproducer. Measured (bench/farm.py, the default campaign):
        89% of what a worker sent the store late in a loop were crashes (118 of 132
        records in the last third of 10,000 executions), of 5 signatures, all far past the
        cap. So per signature and write: the crashes that still fit under the cap (the
        first by input hash, the order the store keeps them in), then, if there were
        more, one: the fewest-steps crash of the rest (ties: lowest input hash), which
        moves last seen to this write (every record of a write has the write's time) and
        offers the same smallest reproducer all of them would. The store's own cap stays
        the exact rule; this only spares it records it would not keep."""
        cap = self.store.max_crashes_per_bug
        by_sig: dict[str, list[tuple]] = {}
        for t in found:
            by_sig.setdefault(t[0], []).append(t)
        out: list[tuple] = []
        for sig in sorted(by_sig):
            group = by_sig[sig]
            room = max(0, cap - self.stored.get(sig, 0))
            if len(group) <= room:
                out += group
                continue
            group.sort(key=lambda t: t[1].input_hash)
            out += group[:room]
            out.append(min(group[room:], key=lambda t: (t[1].input.get("steps", 0),
                                                        t[1].input_hash)))
        self.sent += len(out)
        self.held_back += len(found) - len(out)
        return out


def resume_state(store: Store, name: str):
    """(config, executions so far, entries, generated scenarios, coverage) of a stored
    campaign, for a fuzz loop to merge before it goes on."""
    state = store.load_campaign_state(name)
    camp = state.campaign
    if camp.engine_version != ENGINE_VERSION:
        raise StoreError(f"campaign {name!r} was run by engine version "
                         f"{camp.engine_version}, this is {ENGINE_VERSION}: its schedules "
                         f"may not fit; start a new campaign")
    cfg = config_from(camp.config)
    given = {sc["name"] for sc in cfg.scenarios}
    entries, generated = [], {}
    for row in state.corpus:
        inp = row["input"]
        sc = inp["scenario"]
        if sc["name"] not in given:
            generated.setdefault(sc["name"], sc)
        entries.append(Entry(row["hash"], sc["name"], inp["schedule"],
                             len(row.get("coverage") or []), 0, inp.get("strategy", "")))
    return cfg, state, entries, list(generated.values())
