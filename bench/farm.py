"""bench/farm.py: what the farm costs and how far one coordinator and one store go.

    .venv/bin/python bench/farm.py [--execs N] [--no-pg] [--pg URL]

In one run (a local Ray instance on 127.0.0.2, started and stopped here):
  1. executions/s of the in-process loop, of 1 worker and of 2 workers on Ray (the same
     campaign config as `migfuzz fuzz`; each loop runs --execs executions; actor start-up
     excluded, measured separately), and the scaling efficiency;
  2. Ray's per-call cost: one worker replays exactly the in-process executions (a loop is
     deterministic per seed whatever its batch sizes) in batches of 10 ... 1000; the extra
     time per call, and its share of a batch at each size;
  3. the coordinator's capacity: real batch reports (from 1.) fed round-robin from 500
     simulated workers, absorbed with and without the store (SQLite, one coalesced
     transaction a second), in reports/s, hence workers served;
  4. PostgreSQL: the same admitted batches written by the coordinator (coalesced) and by
     2 writer processes directly (one transaction per batch, as workers would).
Writes bench/results/farm.md and farm.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from migfuzz.corpus.builtin import scenario_names            # noqa: E402
from migfuzz.fuzzer.search.loop import FuzzConfig, FuzzLoop   # noqa: E402
from migfuzz.commands.engine import load_scenario     # noqa: E402
from migfuzz.workers.coordinator import Coordinator           # noqa: E402
from migfuzz.workers.farm import Farm, FarmOptions            # noqa: E402
from migfuzz.workers.runtime import ray_session               # noqa: E402
from migfuzz.workers.worker import FuzzWorker                 # noqa: E402

BATCH = 250
SEED = 1


def config() -> FuzzConfig:
    names = scenario_names("concurrency") + scenario_names("known-bug")
    return FuzzConfig("v5.16", [load_scenario(n) for n in names], "portfolio", True)


def in_process(cfg, execs: int, seed: int = SEED, batch: int = BATCH):
    loop = FuzzLoop(cfg, seed)
    reports = []
    t0 = time.perf_counter()
    while loop.executions < execs:
        reports.append(loop.run_batch(min(batch, execs - loop.executions)))
    return time.perf_counter() - t0, reports


def wait_idle(ray, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ray.available_resources().get("CPU", 0) >= ray.cluster_resources().get("CPU", 0):
            return
        time.sleep(0.1)


def farm_rate(ray, cfg, workers: int, per_worker: int) -> dict:
    coord = Coordinator(cfg, workers, variant=cfg.variant)
    t0 = time.perf_counter()
    farm = Farm(ray, cfg, SEED, FarmOptions(workers=workers, batch=BATCH, minimize=False),
                coord)
    farm.run(execs=workers * 10)                 # start the actors, build their loops
    startup = time.perf_counter() - t0
    before = coord.total_executions()
    busy0 = sum(w.loop_seconds for w in coord.workers)
    farm.run(execs=workers * per_worker)
    done = coord.total_executions() - before
    busy = sum(w.loop_seconds for w in coord.workers) - busy0
    farm.shutdown()
    wait_idle(ray)
    return {"workers": workers, "executions": done, "seconds": round(farm.seconds, 3),
            "rate": round(done / farm.seconds, 1), "startup_s": round(startup, 2),
            # the share of the wall time each worker's loop was executing: the rest is
            # Ray's round trips and waiting for the coordinator
            "busy_share": round(busy / (workers * farm.seconds), 3),
            "per_worker": {w.name: w.executions for w in coord.workers}}


def best_of(n: int, fn):
    """The fastest of n runs: this machine is shared, so slow runs are other load."""
    runs = [fn() for _ in range(n)]
    return min(runs, key=lambda r: r["seconds"]), [r["seconds"] for r in runs]


def call_overhead(ray, cfg, execs: int, sizes=(1, 10, 50, 250, 1000)) -> list:
    """Ray's cost per call: the wall time of each call less the time the loop spent
    executing inside it (the report's own clock); the median over the calls (this machine
    is shared: a mean would measure the neighbours). Its share of a batch of each size."""
    import statistics
    out = []
    remote = ray.remote(FuzzWorker).options(num_cpus=1, max_restarts=3, max_task_retries=3)
    for b in sizes:
        a = remote.remote(cfg, SEED, 0)
        ray.get(a.run_batch.remote(0, 0, None, True))     # start it, build the loop
        seq, left, loop_s, extra = 1, min(execs, max(200 * b, 2000)), 0.0, []
        while left > 0:
            n = min(b, left)
            t0 = time.perf_counter()
            rep = ray.get(a.run_batch.remote(seq, n))["report"]
            wall = time.perf_counter() - t0
            extra.append(wall - (rep.stats["seconds"] - loop_s))
            loop_s = rep.stats["seconds"]
            seq, left = seq + 1, left - n
        per_call = statistics.median(extra)
        batch_s = loop_s / max(1, sum(1 for _ in extra)) if b else 0.0
        out.append({"batch": b, "calls": len(extra),
                    "loop_ms_per_batch": round(batch_s * 1000, 3),
                    "overhead_ms_per_call": round(per_call * 1000, 3),
                    "overhead_share": round(per_call / (per_call + batch_s), 4)})
        ray.kill(a, no_restart=True)
    wait_idle(ray)
    return out


def coordinator_capacity(cfg, reports: list, nworkers: int = 500, nreports: int = 20000,
                         store_url: str | None = None) -> dict:
    """Absorb ``nreports`` real batch reports round-robin from ``nworkers`` simulated
    workers (each call also builds that worker's hub delta)."""
    from migfuzz.db.recorder import Recorder
    from migfuzz.db.store import Store
    coord = Coordinator(cfg, nworkers, variant=cfg.variant)
    for r in reports:                                 # generated scenarios they refer to
        for sc in r.new_scenarios:
            coord.scenarios.setdefault(sc["name"], sc)
    store = rec = None
    if store_url:
        from migfuzz.db.recorder import campaign_config
        store = Store.open(store_url, check_inputs=False)
        store.create_campaign("bench", cfg.variant, campaign_config(cfg), SEED)
        rec = Recorder(store, "bench", coord.scenario_of, cfg.variant)
    writes = 0
    t0 = last = time.perf_counter()
    for k in range(nreports):
        i = k % nworkers
        coord.sync_for(i)
        coord.absorb(i, reports[k % len(reports)])
        if rec is not None and time.perf_counter() - last >= 1.0:
            coord.flush(rec)
            writes += 1
            last = time.perf_counter()
    if rec is not None:
        coord.flush(rec)
        writes += 1
    t = time.perf_counter() - t0
    counts = store.counts() if store else {}
    if store:
        store.close()
    return {"workers": nworkers, "reports": nreports, "seconds": round(t, 3),
            "reports_per_s": round(nreports / t, 1), "transactions": writes,
            "stored": {k: counts.get(k, 0) for k in ("corpus_entries", "crashes")}
            if counts else {}}


def admitted_items(cfg, reports: list, nworkers: int = 2):
    """The pending items a coordinator would write for these reports (real content)."""
    coord = Coordinator(cfg, nworkers, variant=cfg.variant)
    for k, r in enumerate(reports):
        for sc in r.new_scenarios:
            coord.scenarios.setdefault(sc["name"], sc)
        coord.absorb(k % nworkers, r)
    return coord.pending, coord.scenarios


def _write(args) -> tuple[int, float]:
    url, name, items, scenarios, variant, per_tx = args
    from migfuzz.db.recorder import Recorder
    from migfuzz.db.store import Store
    with Store.open(url, check_inputs=False, upgrade=False) as st:
        rec = Recorder(st, name, scenarios.__getitem__, variant)
        t0 = time.perf_counter()
        for j in range(0, len(items), per_tx):
            rec.record_many(items[j:j + per_tx], 0)
        return len(items), time.perf_counter() - t0


def _records(items) -> int:
    """Corpus entries and crashes (stats rows: one per worker per write, counted apart)."""
    return sum(len(r.new_entries) + len(r.findings) for r, *_ in items)


def store_modes(url: str, cfg, items, scenarios, rounds: int = 8) -> list:
    """Coordinator-coalesced vs direct writers on one database: the admitted batches
    written ``rounds`` times, each time into a fresh campaign (so every row is new; the
    bug rows are shared, as they are between workers)."""
    from migfuzz.db.recorder import campaign_config
    from migfuzz.db.store import Store
    out = []
    ctx = multiprocessing.get_context("fork")
    modes = (("coordinator, 20 batches a transaction", 1, 20),
             ("coordinator, 1 batch a transaction", 1, 1),
             ("2 workers writing directly, 1 batch a transaction", 2, 1))
    with Store.open(url, check_inputs=False) as st:
        for k in range(len(modes)):
            for r in range(rounds):
                st.create_campaign(f"bench-{k}-{r}", cfg.variant, campaign_config(cfg), SEED)
    nrec = _records(items) * rounds
    for k, (mode, procs, per_tx) in enumerate(modes):
        t0 = time.perf_counter()
        for r in range(rounds):
            name = f"bench-{k}-{r}"
            if procs == 1:
                _write((url, name, items, scenarios, cfg.variant, per_tx))
            else:
                # each writer its own worker's batches (its stats rows are its own)
                parts = [[it for it in items if it[1] == f"w{p}"] for p in range(procs)]
                with ctx.Pool(procs) as pool:
                    pool.map(_write, [(url, name, part, scenarios, cfg.variant, per_tx)
                                      for part in parts])
        t = time.perf_counter() - t0
        out.append({"mode": mode, "batches": len(items) * rounds, "records": nrec,
                    "seconds": round(t, 3), "records_per_s": round(nrec / t, 1),
                    "batches_per_s": round(len(items) * rounds / t, 1)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--execs", type=int, default=10_000, help="executions per loop")
    ap.add_argument("--pg", help="PostgreSQL server URL (default $MIGFUZZ_TEST_PG_URL, "
                                 "else a throwaway one started here)")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--reps", type=int, default=3, help="runs per rate (the best is kept)")
    args = ap.parse_args()
    cfg = config()
    res: dict = {"meta": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "execs_per_loop": args.execs, "batch": BATCH,
                          "reps": args.reps}}

    reports = []

    def local():
        t, reps = in_process(cfg, args.execs)
        if not reports:
            reports.extend(reps)
        return {"executions": args.execs, "seconds": round(t, 3),
                "rate": round(args.execs / t, 1)}
    res["in_process"], tries = best_of(args.reps, local)
    res["in_process"]["tries_s"] = tries
    local_s = res["in_process"]["seconds"]
    r_in = args.execs / local_s
    print(f"in-process: {r_in:.0f} exec/s", flush=True)
    # a second seed's reports for the coordinator bench (different inputs and entries)
    second = in_process(cfg, args.execs // 2, seed=SEED + 1)[1]
    reports += second

    with ray_session(num_cpus=(os.cpu_count() or 1) + 1) as ray:
        import ray as _ray
        res["ray_version"] = _ray.__version__
        f1, tries = best_of(args.reps, lambda: farm_rate(ray, cfg, 1, args.execs))
        f1["tries_s"] = tries
        print(f"1 worker: {f1['rate']:.0f} exec/s", flush=True)
        f2, tries = best_of(args.reps, lambda: farm_rate(ray, cfg, 2, args.execs))
        f2["tries_s"] = tries
        print(f"2 workers: {f2['rate']:.0f} exec/s", flush=True)
        res["farm"] = [f1, f2]
        res["scaling"] = {"one_worker_vs_in_process": round(f1["rate"] / r_in, 3),
                          "two_workers_vs_in_process": round(f2["rate"] / r_in, 3),
                          "efficiency_2": round(f2["rate"] / (2 * r_in), 3)}
        res["call_overhead"] = call_overhead(ray, cfg, args.execs)
        print("per-call overhead:", [(o["batch"], o["overhead_ms_per_call"])
                                     for o in res["call_overhead"]], flush=True)

    # coordinator capacity from real reports
    per_worker_reports = r_in / BATCH            # reports a worker sends per second
    cap = coordinator_capacity(cfg, reports)
    with tempfile.TemporaryDirectory() as d:
        cap_db = coordinator_capacity(cfg, reports, store_url=f"sqlite:///{d}/cap.db")
    res["coordinator"] = {
        "reports_per_worker_per_s": round(per_worker_reports, 2),
        "absorb_only": cap, "absorb_and_sqlite": cap_db,
        "workers_served_absorb": int(cap["reports_per_s"] / per_worker_reports),
        "workers_served_with_sqlite": int(cap_db["reports_per_s"] / per_worker_reports)}
    print(f"coordinator: {cap['reports_per_s']:.0f} reports/s absorbed "
          f"({cap_db['reports_per_s']:.0f}/s with SQLite writes): "
          f"{res['coordinator']['workers_served_absorb']} workers "
          f"({res['coordinator']['workers_served_with_sqlite']} with the store)", flush=True)

    # what the store receives per worker per second, from the real 2-worker-sized stream
    main_reports = reports[:len(reports) - len(second)]
    items, scenarios = admitted_items(cfg, main_reports)
    third = len(items) // 3
    early, late = items[:third], items[-third:]
    per_batch_s = BATCH / r_in
    rate_early = _records(early) / (len(early) * per_batch_s)
    rate_late = _records(late) / (len(late) * per_batch_s)
    rec_rate = rate_late + 1.0                   # + one stats row per worker a second
    store_json = json.loads((ROOT / "bench/results/store.json").read_text())
    res["store"] = {"records_per_worker_per_s": round(rec_rate, 1),
                    "records_per_worker_per_s_first_third": round(rate_early, 1),
                    "note": f"corpus entries and unique crashes in the last third of a "
                            f"{args.execs:,}-execution loop, plus a stats row a second; "
                            f"the first third sends {rate_early:.0f}/s (coverage and new "
                            f"crashes come early), and the rate keeps falling as a "
                            f"campaign settles"}
    served = {}
    for r in store_json["results"]:
        # the coordinator writes one large transaction a second: the batches-of-500 rates
        big = [r[k]["records_per_s"] for k in ("corpus_batches_of_500",
                                               "crashes_batches_of_500") if k in r]
        if big:
            rate = sum(big) / len(big)
            served[r["backend"]] = {"records_per_s": round(rate),
                                    "workers_served": int(rate / max(rec_rate, 1e-9))}
    res["store"]["served_by_backend"] = served

    if not args.no_pg:
        server = args.pg or os.environ.get("MIGFUZZ_TEST_PG_URL")
        stop = None
        import importlib.util
        spec = importlib.util.spec_from_file_location("bench_store", ROOT / "bench/store.py")
        bs = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bs)
        if not server:
            server, stop = bs.start_pg()
        if server:
            try:
                url = bs.new_pg_db(server)
                res["postgresql_writes"] = store_modes(url, cfg, items, scenarios)
            finally:
                if callable(stop):
                    stop()
        else:
            res["postgresql_writes"] = {"skipped": stop}
        for m in res.get("postgresql_writes", []):
            print(f"postgresql, {m['mode']}: {m['records_per_s']:.0f} records/s", flush=True)

    out = ROOT / "bench/results"
    (out / "farm.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "farm.md").write_text(render(res))
    print(f"wrote {out / 'farm.md'}")
    return 0


def render(res: dict) -> str:
    m = res["meta"]
    L = ["# Farm (bench/farm.py)", "",
         f"Python {m['python']}, Ray {res.get('ray_version', '?')}, {m['cpus']} CPUs; the "
         f"`migfuzz fuzz` default campaign (built-in concurrency and known-bug scenarios, "
         f"generated ones too, v5.16); {m['execs_per_loop']:,} executions per loop, batches "
         f"of {m['batch']}. A local Ray instance on 127.0.0.2; actor start-up excluded "
         f"(shown apart).", "",
         "| run | executions | seconds (best of runs) | executions/s | vs in-process | "
         "loops busy | start-up |",
         "|---|---|---|---|---|---|---|",
         f"| in-process loop | {res['in_process']['executions']:,} | "
         f"{res['in_process']['seconds']} ({', '.join(map(str, res['in_process']['tries_s']))})"
         f" | {res['in_process']['rate']:,.0f} | 1.00x | - | - |"]
    r_in = res["in_process"]["rate"]
    for f in res["farm"]:
        L.append(f"| {f['workers']} worker(s) on Ray | {f['executions']:,} | {f['seconds']} "
                 f"({', '.join(map(str, f['tries_s']))}) | {f['rate']:,.0f} | "
                 f"{f['rate'] / r_in:.2f}x | {f['busy_share']:.0%} | {f['startup_s']} s |")
    sc = res["scaling"]
    L += ["", f"Scaling: 2 workers reach **{sc['two_workers_vs_in_process']:.2f}x** the "
              f"in-process rate (target 1.7x), an efficiency of {sc['efficiency_2']:.0%} "
              f"per worker on this {m['cpus']}-core machine (the coordinator, Ray's "
              f"raylet and GCS share the cores). \"Loops busy\": the share of the wall time "
              f"the workers' loops were executing (the rest: Ray round trips, waiting). The "
              f"machine is shared with other work, so each rate is the best of "
              f"{m.get('reps', 3)} runs (all run times shown). Farm loops also take the "
              f"other workers' scenarios and entries, so their mix of executions differs "
              f"from the in-process loop's.", "",
          "## Ray's per-call cost", "",
          "One actor (max_restarts and max_task_retries set, as the farm's) runs batches of "
          "each size; Ray's cost per call is the call's wall time less the time its loop "
          "executed (the report's own clock): the call, the pickled report, the result. "
          "Median over the calls.", "",
          "| batch | calls | loop time per batch | Ray per call | Ray's share |",
          "|---|---|---|---|---|"]
    for o in res["call_overhead"]:
        L.append(f"| {o['batch']} | {o['calls']} | {o['loop_ms_per_batch']} ms | "
                 f"{o['overhead_ms_per_call']} ms | {o['overhead_share']:.1%} |")
    c = res["coordinator"]
    a, s = c["absorb_only"], c["absorb_and_sqlite"]
    L += ["", "## One coordinator", "",
          f"Real batch reports fed round-robin from {a['workers']} simulated workers (each "
          f"report also builds that worker's hub delta). A worker sends "
          f"{c['reports_per_worker_per_s']} reports/s (its executions/s ÷ {m['batch']}).", "",
          "| coordinator work | reports | seconds | reports/s | workers served |",
          "|---|---|---|---|---|",
          f"| absorb (coverage, admission, buckets, hub) | {a['reports']:,} | {a['seconds']} "
          f"| {a['reports_per_s']:,.0f} | **{c['workers_served_absorb']:,}** |",
          f"| absorb + SQLite writes (one transaction a second) | {s['reports']:,} | "
          f"{s['seconds']} | {s['reports_per_s']:,.0f} | {c['workers_served_with_sqlite']:,} |",
          "", "## One store", "",
          f"What a worker sends the store, after the coordinator's admission and crash "
          f"de-duplication: {res['store']['records_per_worker_per_s']} records per worker-"
          f"second ({res['store']['note']}). Store ingest rates: bench/results/store.md "
          f"(batches of 500 records, one writer; the coordinator writes its batches "
          f"coalesced, once a second; bench/store.py uses check_inputs=True except where "
          f"marked, the farm's recorder check_inputs=False).", "",
          "| backend | records/s | workers served |", "|---|---|---|"]
    for b, v in res["store"]["served_by_backend"].items():
        L.append(f"| {b} | {v['records_per_s']:,} | {v['workers_served']:,} |")
    pg = res.get("postgresql_writes")
    if isinstance(pg, list):
        L += ["", "## PostgreSQL: coordinator writes or direct worker writes", "",
              "The admitted batches of one loop (real content) written 8 times, each time into "
              "a fresh campaign, to one PostgreSQL (fsync off, Unix socket).", "",
              "| writer | batches | records | seconds | records/s | batches/s |",
              "|---|---|---|---|---|---|"]
        for p in pg:
            L.append(f"| {p['mode']} | {p['batches']} | {p['records']:,} | {p['seconds']} | "
                     f"{p['records_per_s']:,.0f} | {p['batches_per_s']:,.0f} |")
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
