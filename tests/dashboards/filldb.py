"""Fill a store for the dashboard tests and bench by running the real engine.

``run_campaign`` is a short, real campaign: workers take turns running random-walk
executions of built-in scenarios (fuzzer.execute.execute), keep an input when it adds
coverage (branches and actor-pair features), store every finding as a crash
(db.store.crash_records) and write cumulative stats samples, all through the Store API's
write methods, with the real clock as timestamps.
"""
from __future__ import annotations

import time

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario
from migfuzz.db.store import Store, crash_records
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RandomWalk

SCENARIOS = ("dirty-page", "madvise-race", "dp-fault-race")


def features(r) -> set[str]:
    out = {f"b:{b}" for b in r.branches}
    out |= {f"p:{a}>{b}" for a, b in r.pairs}
    return out


def run_campaign(url: str, name: str, *, variant: str = "v5.16", workers: int = 2,
                 execs: int = 300, seed: int = 1, scenarios=SCENARIOS,
                 sample_every: int = 20, pause: float = 0.0) -> dict:
    """``execs`` executions per worker. Returns counts of what was stored."""
    scs = [get_scenario(s) for s in scenarios]
    store = Store.open(url)
    try:
        store.create_campaign(name, variant, config={"scenarios": list(scenarios),
                                                     "workers": workers, "execs": execs},
                              seed=seed, exist_ok=True)
        seen: set[str] = set()                      # the campaign's coverage union
        wstate = {f"w{i}": {"execs": 0, "cov": set(), "corpus": 0, "sigs": set(),
                            "crashes": 0, "corpus_batch": [], "crash_batch": []}
                  for i in range(workers)}
        stored = {"executions": 0, "corpus": 0, "crashes": 0}
        for n in range(execs):
            for wi, (w, st) in enumerate(wstate.items()):
                s = seed * 1_000_003 + wi * 100_003 + n
                sc = scs[(n + wi) % len(scs)]
                r = execute(sc, variant, RandomWalk(s), seed=s)
                now = time.time()
                st["execs"] += 1
                feats = features(r)
                new = sorted(feats - seen)
                st["cov"] |= feats
                inp = None
                if new or r.findings:
                    inp = inputs.make(sc, variant, r.schedule, strategy="random", seed=s)
                if new:
                    seen.update(new)
                    st["corpus"] += 1
                    st["corpus_batch"].append({"input": inp, "coverage": new, "worker": w,
                                               "found_at": now})
                if r.findings:
                    st["crash_batch"] += crash_records(inp, r, worker=w, found_at=now)
                    st["sigs"] |= {f.signature for f in r.findings}
                    st["crashes"] += len(r.findings)
                if st["execs"] % sample_every == 0 or n == execs - 1:
                    out = store.write_batch(
                        name, corpus=st["corpus_batch"], crashes=st["crash_batch"],
                        stats=[{"worker": w, "t": time.time(), "executions": st["execs"],
                                "coverage": len(st["cov"]), "corpus_size": st["corpus"],
                                "buckets": len(st["sigs"]), "crashes": st["crashes"]}])
                    stored["corpus"] += out["corpus"]["added"]
                    stored["crashes"] += out["crashes"]["added"]
                    st["corpus_batch"], st["crash_batch"] = [], []
            if pause:
                time.sleep(pause)
        stored["executions"] = sum(st["execs"] for st in wstate.values())
        store.set_campaign_status(name, "finished")
        return stored
    finally:
        store.close()


def run_farm_campaign(url: str, name: str, *, variant: str = "v5.16", workers: int = 2,
                      batches: int = 12, batch: int = 50, seed: int = 7,
                      scenarios=SCENARIOS) -> dict:
    """A campaign written the way the farm writes one, without Ray: ``workers`` real fuzz
    loops whose batch reports go through the farm's coordinator (workers.coordinator) and
    are stored by its recorder (db.recorder.Recorder.record_many), a flush per round."""
    from migfuzz.db.recorder import Recorder, campaign_config
    from migfuzz.fuzzer import ENGINE_VERSION
    from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop
    from migfuzz.workers.coordinator import Coordinator
    cfg = FuzzConfig(variant, [get_scenario(s) for s in scenarios], "portfolio", False)
    coord = Coordinator(cfg, workers, variant=variant)
    loops = [FuzzLoop(cfg, seed * 1000 + i) for i in range(workers)]
    store = Store.open(url)
    try:
        store.create_campaign(name, variant, campaign_config(cfg), seed, ENGINE_VERSION)
        rec = Recorder(store, name, coord.scenario_of, variant)
        for _ in range(batches):
            for i, loop in enumerate(loops):
                coord.sync_for(i)
                coord.absorb(i, loop.run_batch(batch))
            coord.flush(rec)
        store.set_campaign_status(name, "finished")
        return {"executions": sum(lp.executions for lp in loops)}
    finally:
        store.close()
