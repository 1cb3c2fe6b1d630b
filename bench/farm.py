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
     2 writer processes directly (one transaction per batch, as workers would);
  5. end to end: the recorded batch reports of --e2e-streams real loops (different seeds)
     replayed as --e2e-workers simulated workers through one real coordinator (sync,
     absorb, coalesced flushes) into one real store (PostgreSQL, then SQLite), as fast as
     it goes; reports/s ÷ what one worker sends = workers served end to end. Each
     simulated worker replays its stream from its own point, its crash inputs made its own
     (a worker's schedules are its own; coverage is shared, as workers rediscover it).
     ``--e2e-only`` runs this part alone (and ``--e2e-json FILE`` writes it there), so the
     code before a change can be measured the same way.
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
        cpu0 = time.process_time()
        while left > 0:
            n = min(b, left)
            t0 = time.perf_counter()
            rep = ray.get(a.run_batch.remote(seq, n))["report"]
            wall = time.perf_counter() - t0
            extra.append(wall - (rep.stats["seconds"] - loop_s))
            loop_s = rep.stats["seconds"]
            seq, left = seq + 1, left - n
        driver_cpu = (time.process_time() - cpu0) / max(1, len(extra))
        per_call = statistics.median(extra)
        batch_s = loop_s / max(1, sum(1 for _ in extra)) if b else 0.0
        out.append({"batch": b, "calls": len(extra),
                    "loop_ms_per_batch": round(batch_s * 1000, 3),
                    "overhead_ms_per_call": round(per_call * 1000, 3),
                    # the driver's own CPU per call (submit, wait, get, unpickle): what
                    # one driver process can sustain is 1 / this
                    "driver_cpu_ms_per_call": round(driver_cpu * 1000, 3),
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
    c0 = time.process_time()
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
    cpu = time.process_time() - c0
    counts = store.counts() if store else {}
    if store:
        store.close()
    # reports per CPU-second: the wall clock of a shared machine measures the neighbours
    return {"workers": nworkers, "reports": nreports, "seconds": round(t, 3),
            "cpu_seconds": round(cpu, 3), "reports_per_s_wall": round(nreports / t, 1),
            "reports_per_s": round(nreports / cpu, 1), "transactions": writes,
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


def _pg_backend_cpu(store) -> dict[int, float] | None:
    """CPU seconds used so far by each PostgreSQL backend serving this database (from
    /proc: the server is on this machine); None for SQLite or a remote server."""
    if store.dialect != "postgresql":
        return None
    from sqlalchemy import text
    with store.engine.connect() as c:
        pids = [p for (p,) in c.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        out[pid] = (int(f[11]) + int(f[12])) / tick
    return out


def record_streams(cfg, k: int, execs: int) -> list[list]:
    """k real loops of execs executions each, seeds of farm workers 0..k-1."""
    from migfuzz.workers.worker import worker_seed
    return [in_process(cfg, execs, seed=worker_seed(SEED, i))[1] for i in range(k)]


def _salted(rep, g: int):
    """Report ``rep`` as simulated worker group ``g`` would send it: each finding's input
    gets a schedule of its own (one more decision, [0, g + 2]) and its hash a suffix, so
    groups do not share crash inputs; everything else is shared. Built before timing."""
    from dataclasses import replace
    if not rep.findings:
        return rep
    f = []
    for ev in rep.findings:
        inp = dict(ev.input)
        inp["schedule"] = list(inp["schedule"]) + [[0, g + 2]]
        f.append(replace(ev, input=inp, input_hash=f"{ev.input_hash[:16]}{g:08x}"))
    return replace(rep, findings=f)


def end_to_end(cfg, streams: list[list], nworkers: int, rounds: int, store_url: str,
               per_worker_reports: float) -> dict:
    """Replay ``rounds`` reports of each of ``nworkers`` simulated workers (round-robin,
    as their batches would interleave) through one Coordinator and one store; the
    coordinator flushes when its flush interval (adaptive where the code has it) is due.
    Only public APIs that exist before and after the store changes are used."""
    from migfuzz.db.recorder import Recorder, campaign_config
    from migfuzz.db.store import Store
    k = len(streams)
    groups = -(-nworkers // k)
    variants = [[[_salted(r, g) for g in range(groups)] for r in st] for st in streams]
    rss0 = _rss()
    coord = Coordinator(cfg, nworkers, variant=cfg.variant)
    for st in streams:
        for r in st:
            for sc in r.new_scenarios:
                coord.scenarios.setdefault(sc["name"], sc)
    store = Store.open(store_url, check_inputs=False)
    name = f"e2e-{nworkers}"
    store.create_campaign(name, cfg.variant, campaign_config(cfg), SEED)
    rec = Recorder(store, name, coord.scenario_of, cfg.variant)
    sent = {"corpus": 0, "crashes": 0, "stats": 0}
    write = store.write_batch
    store_s = [0.0, 0]

    def counted(campaign, *, corpus=(), crashes=(), stats=()):
        corpus, crashes, stats = list(corpus), list(crashes), list(stats)
        sent["corpus"] += len(corpus)
        sent["crashes"] += len(crashes)
        sent["stats"] += len(stats)
        t = time.perf_counter()
        try:
            return write(campaign, corpus=corpus, crashes=crashes, stats=stats)
        finally:
            store_s[0] += time.perf_counter() - t
            store_s[1] += 1
    store.write_batch = counted
    offsets = [(i * 7919) % len(streams[i % k]) for i in range(nworkers)]
    flush_s = [0.0]
    # the workers' own share, where the code has one (workers.worker.Summary): run here
    # for each simulated worker, its time counted apart (it is the worker's CPU)
    from migfuzz.workers import worker as wmod
    from dataclasses import replace
    summaries = ([wmod.Summary() for _ in range(nworkers)] if hasattr(wmod, "Summary")
                 else None)
    worker_s, worker_cpu = [0.0], [0.0]

    def flush():
        t = time.perf_counter()
        coord.flush(rec)
        flush_s[0] += time.perf_counter() - t
    import pickle
    wire = {"report": [0, 0], "sync": [0, 0]}       # pickled bytes, samples
    pg0 = _pg_backend_cpu(store)
    cpu0 = time.process_time()
    t0 = last = time.perf_counter()
    n = 0
    for j in range(rounds):
        for i in range(nworkers):
            s = i % k
            st = variants[s]
            sync = coord.sync_for(i)
            r = st[(offsets[i] + j) % len(st)][i // k]
            if summaries is None:
                coord.absorb(i, r)
            else:
                tw, cw = time.perf_counter(), time.process_time()
                sm = summaries[i]
                sm.full.update(sync.get("full", ()))
                kept, hits = sm.split(r.findings)
                r = replace(r, findings=kept)
                worker_s[0] += time.perf_counter() - tw
                worker_cpu[0] += time.process_time() - cw
                coord.absorb(i, r, hits=hits)
            n += 1
            if n % 97 == 0:           # what goes over the network, sampled (not timed)
                tw, cw = time.perf_counter(), time.process_time()
                wire["report"][0] += len(pickle.dumps(
                    {"report": r, "hits": hits if summaries is not None else None}))
                wire["report"][1] += 1
                wire["sync"][0] += len(pickle.dumps(sync))
                wire["sync"][1] += 1
                worker_s[0] += time.perf_counter() - tw
                worker_cpu[0] += time.process_time() - cw
            if n & 63 == 0:
                now = time.perf_counter()
                if now - last >= getattr(coord, "flush_interval", 1.0):
                    flush()
                    last = time.perf_counter()
    flush()
    t = time.perf_counter() - t0 - worker_s[0]
    cpu = time.process_time() - cpu0 - worker_cpu[0]
    pg1 = _pg_backend_cpu(store)
    pg_cpu = (sum(v - (pg0 or {}).get(p, 0.0) for p, v in pg1.items())
              if pg1 is not None else None)
    counts = store.counts()
    rss1 = _rss()
    store.close()
    sim_s = n / per_worker_reports                # simulated worker-seconds
    records = sent["corpus"] + sent["crashes"] + sent["stats"]
    rps = n / t
    # on a shared machine the wall clock measures the neighbours too: capacity is taken
    # from CPU time, per process: the coordinator's (absorb, hub, the store's client
    # side; SQLite's writes are all here) and the PostgreSQL backend's, each one core
    cap_coord = n / cpu
    cap_pg = n / pg_cpu if pg_cpu else None
    cap = min(cap_coord, cap_pg) if cap_pg else cap_coord
    return {"workers": nworkers, "streams": k, "reports": n, "seconds": round(t, 3),
            "reports_per_s_wall": round(rps, 1),
            "coordinator_cpu_s": round(cpu, 3),
            "pg_backend_cpu_s": round(pg_cpu, 3) if pg_cpu is not None else None,
            "reports_per_coordinator_cpu_s": round(cap_coord, 1),
            "reports_per_pg_cpu_s": round(cap_pg, 1) if cap_pg else None,
            "reports_per_s": round(cap, 1),
            "workers_served": int(cap / per_worker_reports),
            "workers_served_wall": int(rps / per_worker_reports),
            "transactions": store_s[1], "store_seconds": round(store_s[0], 3),
            "flush_seconds": round(flush_s[0], 3),
            "store_share": round(flush_s[0] / t, 3),
            "sent": sent, "records_per_worker_s": round(records / sim_s, 2),
            "crash_records_per_worker_s": round(sent["crashes"] / sim_s, 2),
            "worker_side_s": round(worker_s[0], 3),
            "worker_side_cpu_s": round(worker_cpu[0], 3),
            "stored": {k_: counts.get(k_, 0) for k_ in ("corpus_entries", "crashes", "stats",
                                                        "bugs", "scenarios")},
            "last_flush_interval": round(getattr(coord, "flush_interval", 1.0), 3),
            # the coordinator's memory after the run (its hub logs, coverage, buckets,
            # per-worker state, the store's client), per simulated worker
            "coordinator_rss_mb": round((rss1 - rss0) / 2 ** 20, 1),
            "bytes_per_report": int(wire["report"][0] / max(1, wire["report"][1])),
            "bytes_per_sync": int(wire["sync"][0] / max(1, wire["sync"][1]))}


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def e2e_all(args, cfg, r_in: float) -> dict:
    """The end-to-end part: PostgreSQL and SQLite, one record of the streams."""
    per_worker_reports = r_in / BATCH
    t = time.perf_counter()
    streams = record_streams(cfg, args.e2e_streams, args.execs)
    rec_s = time.perf_counter() - t
    out = {"streams": args.e2e_streams, "execs_per_stream": args.execs,
           "recording_s": round(rec_s, 1), "in_process_rate": round(r_in, 1),
           "reports_per_worker_per_s": round(per_worker_reports, 2), "runs": {}}
    server, stop = args.pg or os.environ.get("MIGFUZZ_TEST_PG_URL"), None
    if not args.no_pg:
        if not server:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from pgserver import start_throwaway_pg
            server, stop = start_throwaway_pg(55499)
    try:
        for backend in ([] if args.no_pg else ["postgresql"]) + ["sqlite"]:
            with tempfile.TemporaryDirectory() as d:
                if backend == "postgresql":
                    url = _pg_db(server)
                else:
                    url = f"sqlite:///{d}/e2e.db"
                r = end_to_end(cfg, streams, args.e2e_workers, args.e2e_rounds, url,
                               per_worker_reports)
                out["runs"][backend] = r
                print(f"end to end, {backend}: {r['reports_per_s']:.0f} reports per "
                      f"CPU-second (coordinator {r['reports_per_coordinator_cpu_s']:.0f}, "
                      f"PostgreSQL {r['reports_per_pg_cpu_s']}), "
                      f"{r['workers_served']} workers served "
                      f"({r['workers_served_wall']} by the wall clock), store "
                      f"{r['store_share']:.0%} of the time, "
                      f"{r['records_per_worker_s']} records/worker-s", flush=True)
    finally:
        if callable(stop):
            stop()
    return out


def _pg_db(server: str) -> str:
    """A fresh database on the server (the bench owns it)."""
    import uuid
    from sqlalchemy import create_engine, text
    name = "e2e_" + uuid.uuid4().hex[:10]
    eng = create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    base, _, query = server.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return base + ("?" + query if query else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--execs", type=int, default=10_000, help="executions per loop")
    ap.add_argument("--pg", help="PostgreSQL server URL (default $MIGFUZZ_TEST_PG_URL, "
                                 "else a throwaway one started here)")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--reps", type=int, default=3, help="runs per rate (the best is kept)")
    ap.add_argument("--e2e-workers", type=int, default=1000,
                    help="simulated workers of the end-to-end part (default 1000)")
    ap.add_argument("--e2e-rounds", type=int, default=40,
                    help="reports per simulated worker (default 40)")
    ap.add_argument("--e2e-streams", type=int, default=4,
                    help="real loops recorded for it (default 4)")
    ap.add_argument("--e2e-only", action="store_true",
                    help="only the end-to-end part (prints JSON; see --e2e-json)")
    ap.add_argument("--e2e-json", help="with --e2e-only: write its result here")
    ap.add_argument("--e2e-before", help="an --e2e-only result of the code before the "
                    "store changes, shown beside this run's")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite farm.md from farm.json (no measuring)")
    args = ap.parse_args()
    if args.render_only:
        out = ROOT / "bench/results"
        (out / "farm.md").write_text(render(json.loads((out / "farm.json").read_text())))
        return 0
    if args.e2e_only:
        cfg = config()
        c0 = time.process_time()
        in_process(cfg, args.execs)
        out = e2e_all(args, cfg, args.execs / (time.process_time() - c0))
        text = json.dumps(out, indent=1)
        if args.e2e_json:
            Path(args.e2e_json).write_text(text + "\n")
        print(text)
        return 0
    cfg = config()
    res: dict = {"meta": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "execs_per_loop": args.execs, "batch": BATCH,
                          "reps": args.reps, "load_at_start": os.getloadavg()[0]}}

    reports = []

    cpu_rates = []

    def local():
        c0 = time.process_time()
        t, reps = in_process(cfg, args.execs)
        cpu_rates.append(args.execs / (time.process_time() - c0))
        if not reports:
            reports.extend(reps)
        return {"executions": args.execs, "seconds": round(t, 3),
                "rate": round(args.execs / t, 1)}
    res["in_process"], tries = best_of(args.reps, local)
    res["in_process"]["tries_s"] = tries
    res["in_process"]["cpu_rate"] = round(max(cpu_rates), 1)
    local_s = res["in_process"]["seconds"]
    r_in = args.execs / local_s
    # what one worker sends is taken at the faster of the wall-clock and the CPU-time
    # rate: on a loaded machine the wall clock makes workers look slow (and more of them
    # served); a faster worker sends more
    r_eff = max(r_in, max(cpu_rates))
    res["in_process"]["rate_for_capacity"] = round(r_eff, 1)
    print(f"in-process: {r_in:.0f} exec/s ({max(cpu_rates):.0f} per CPU-second)", flush=True)
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
    per_worker_reports = r_eff / BATCH           # reports a worker sends per second
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
    per_batch_s = BATCH / r_eff
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

    # end to end: the per-worker report rate is the in-process loop's, the faster of its
    # wall-clock best and its CPU-time rate (a faster worker sends more: fewer served)
    res["end_to_end"] = e2e_all(args, cfg, r_eff)
    if args.e2e_before:
        before = json.loads(Path(args.e2e_before).read_text())
        # the same per-worker report rate for both, so workers served compare
        per = res["end_to_end"]["reports_per_worker_per_s"]
        for r in before["runs"].values():
            r["workers_served"] = int(r["reports_per_s"] / per)
            sim_s = r["reports"] / per
            r["records_per_worker_s"] = round(sum(r["sent"].values()) / sim_s, 2)
            r["crash_records_per_worker_s"] = round(r["sent"]["crashes"] / sim_s, 2)
        res["end_to_end_before"] = before

    res["meta"]["load_at_end"] = os.getloadavg()[0]
    res["capacity"] = {str(k): v for k, v in capacity(
        res["end_to_end"], ray_ms=driver_ms_per_call(res)).items()}
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
         f"(shown apart)."
         + (f" The machine's load average was {m['load_at_start']:.1f} at the start of "
            f"this run and {m['load_at_end']:.1f} at its end (other jobs share its 2 "
            f"cores): wall-clock rates here are lower than on a quiet machine, the "
            f"end-to-end capacity below is taken from CPU time for that reason."
            if "load_at_start" in m else ""), "",
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
          "The driver's CPU per call (submitting, waiting, receiving and unpickling the "
          "report, in the driver process) bounds the calls one driver makes a second.", "",
          "| batch | calls | loop time per batch | Ray per call | Ray's share | driver CPU "
          "per call |",
          "|---|---|---|---|---|---|"]
    for o in res["call_overhead"]:
        L.append(f"| {o['batch']} | {o['calls']} | {o['loop_ms_per_batch']} ms | "
                 f"{o['overhead_ms_per_call']} ms | {o['overhead_share']:.1%} | "
                 f"{o.get('driver_cpu_ms_per_call', '-')} ms |")
    c = res["coordinator"]
    a, s = c["absorb_only"], c["absorb_and_sqlite"]
    L += ["", "## One coordinator", "",
          f"Real batch reports fed round-robin from {a['workers']} simulated workers (each "
          f"report also builds that worker's hub delta). These reports are sent as the loop "
          f"made them (not summarized by workers: see the end-to-end section). A worker "
          f"sends {c['reports_per_worker_per_s']} reports/s (its executions/s ÷ "
          f"{m['batch']}, at the faster of the loop's wall-clock and CPU-time rate)"
          + ("; reports/s here are per CPU-second of the coordinator"
             if "cpu_seconds" in a else "") + ".", "",
          "| coordinator work | reports | seconds | reports/s | workers served |",
          "|---|---|---|---|---|",
          f"| absorb (coverage, admission, buckets, hub) | {a['reports']:,} | "
          f"{a.get('cpu_seconds', a['seconds'])} "
          f"| {a['reports_per_s']:,.0f} | **{c['workers_served_absorb']:,}** |",
          f"| absorb + SQLite writes (one transaction a second) | {s['reports']:,} | "
          f"{s.get('cpu_seconds', s['seconds'])} | {s['reports_per_s']:,.0f} | "
          f"{c['workers_served_with_sqlite']:,} |",
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
    L += render_e2e(res)
    L.append("")
    return "\n".join(L)


def render_e2e(res: dict) -> list[str]:
    e = res.get("end_to_end")
    if not e:
        return []
    b = res.get("end_to_end_before")
    runs = list(e["runs"].items())
    w = next(iter(e["runs"].values()))["workers"]
    L = ["", "## End to end: one coordinator and one store", "",
         f"The batch reports of {e['streams']} real loops ({e['execs_per_stream']:,} "
         f"executions each, different seeds, recorded in {e['recording_s']} s) replayed "
         f"as **{w:,} simulated workers** through the real coordinator (hub sync, absorb, "
         f"the workers' own summarizing where the code has it, coalesced flushes) into a "
         f"real store, as fast as it goes. Each simulated worker replays its stream from "
         f"its own point, its crash inputs made its own (a worker's schedules are its "
         f"own); coverage is shared, as workers rediscover it. A worker sends "
         f"{e['reports_per_worker_per_s']} reports/s (an in-process loop's "
         f"{e['in_process_rate']:,.0f} executions/s ÷ {res['meta']['batch']}). This "
         f"machine is shared (2 cores, other jobs running), so capacity is taken from CPU "
         f"time: reports per CPU-second of the coordinator process (absorb, hub, the "
         f"store's client side; SQLite's writes all happen there) and of the PostgreSQL "
         f"backend (from /proc), each a core of its own; the smaller of the two, ÷ "
         f"reports per worker-second, is the workers served. The wall clock is shown too.",
         "",
         "| code | store | reports | coordinator CPU s | PostgreSQL CPU s | reports per "
         "CPU-second | **workers served end to end** | by the wall clock | records sent "
         "per worker-second | of which crashes | transactions |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(label, name, r):
        pg = r.get("pg_backend_cpu_s")
        return (f"| {label} | {name} | {r['reports']:,} | {r['coordinator_cpu_s']} | "
                f"{pg if pg is not None else '-'} | {r['reports_per_s']:,.0f} | "
                f"**{r['workers_served']:,}** | {r.get('workers_served_wall', '-')} | "
                f"{r['records_per_worker_s']} | {r['crash_records_per_worker_s']} | "
                f"{r['transactions']} |")
    if b:
        for name, r in b["runs"].items():
            L.append(row("before", name, r))
    for name, r in runs:
        L.append(row("after", name, r))
    L += ["", "What crossed from the coordinator to the store (records), and what it kept:", "",
          "| code | store | corpus entries | crashes | stats rows | stored: corpus | "
          "crashes | bugs | scenarios |", "|---|---|---|---|---|---|---|---|---|"]
    for label, src in (("before", b), ("after", e)):
        if not src:
            continue
        for name, r in src["runs"].items():
            st = r["stored"]
            L.append(f"| {label} | {name} | {r['sent']['corpus']:,} | "
                     f"{r['sent']['crashes']:,} | {r['sent']['stats']:,} | "
                     f"{st.get('corpus_entries', 0):,} | {st.get('crashes', 0):,} | "
                     f"{st.get('bugs', 0)} | {st.get('scenarios', '-')} |")
    r = e["runs"].get("postgresql") or runs[0][1]
    L += ["", f"Per worker, measured in the run above ({runs[0][0]}): "
              f"{r['bytes_per_report']:,} bytes a report and {r['bytes_per_sync']:,} bytes "
              f"a hub sync (pickled, sampled), the coordinator's memory grew "
              f"{r['coordinator_rss_mb']} MB for {w:,} workers, the workers' summarizing "
              f"cost {r['worker_side_cpu_s']} CPU-s over {r['reports']:,} reports "
              f"({1000 * r['worker_side_cpu_s'] / r['reports']:.2f} ms a report, on the "
              f"workers). They give the capacity on paper below (docs/farm.md quotes it)."]
    L += ["", "## Capacity on paper", "",
          "Each column is a measured per-worker figure from the PostgreSQL run above times "
          "the number of workers (batches of 250): coordinator load in cores of one "
          "coordinator process; the driver's Ray calls (one per report, at the driver CPU "
          f"per call measured at batch 1: {driver_ms_per_call(res)} ms; not part of the "
          "end-to-end figure above, it is Ray's cost; `--batch 1000` makes a quarter of the "
          "calls); the store's load in records/s and in cores of the PostgreSQL backend; "
          "the coordinator's memory; and what crosses the network between the workers "
          "and the coordinator (reports up, hub syncs down).", "",
          "| workers | coordinator (cores) | Ray calls in the driver (cores) | store "
          "records/s | PostgreSQL (cores) | coordinator memory | network |",
          "|---|---|---|---|---|---|---|"]
    ray_ms = driver_ms_per_call(res)
    for n, c in capacity(e, ray_ms=ray_ms).items():
        ray = f"{c['ray_cores']:.2f}" if c.get("ray_cores") is not None else "-"
        L.append(f"| {n:,} | {c['coordinator_cores']:.2f} | {ray} | "
                 f"{c['records_per_s']:,.0f} | "
                 f"{c['pg_cores']:.3f} | {c['memory_mb']:,.0f} MB | "
                 f"{c['network_mb_s']:,.1f} MB/s |")
    return L


def driver_ms_per_call(res: dict) -> float | None:
    """The driver's CPU per Ray call, from the batch-1 row of the per-call measurement:
    the driver's CPU also holds Ray's own threads, which use it while the driver waits
    (~9 ms a second of waiting here: 19 ms "a call" at batch 1,000, a call every 2 s), so
    only where calls come fastest is it the calls' cost."""
    rows = [o for o in res.get("call_overhead", []) if "driver_cpu_ms_per_call" in o]
    return min(rows, key=lambda o: o["batch"])["driver_cpu_ms_per_call"] if rows else None


def capacity(e: dict, sizes=(100, 1000, 10_000), ray_ms: float | None = None) -> dict:
    """The capacity table from the end-to-end run's per-worker figures (``ray_ms``: the
    driver's CPU per Ray call at this batch size)."""
    r = e["runs"].get("postgresql") or next(iter(e["runs"].values()))
    per = e["reports_per_worker_per_s"]
    out = {}
    for n in sizes:
        out[n] = {
            "coordinator_cores": n * per / r["reports_per_coordinator_cpu_s"],
            "records_per_s": n * r["records_per_worker_s"],
            "pg_cores": (n * per / r["reports_per_pg_cpu_s"]
                         if r.get("reports_per_pg_cpu_s") else 0.0),
            "memory_mb": n * r["coordinator_rss_mb"] / r["workers"],
            "network_mb_s": n * per * (r["bytes_per_report"] + r["bytes_per_sync"]) / 1e6,
            "ray_cores": n * per * ray_ms / 1000 if ray_ms else None}
    return out


if __name__ == "__main__":
    sys.exit(main())
