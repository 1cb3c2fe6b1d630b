"""How fast the store ingests corpus entries and crashes, on SQLite and PostgreSQL.

    .venv/bin/python bench/store.py [--pg URL] [--records N] [--no-pg]

Records are realistic: inputs of real executions of the built-in scenarios (each made
unique by its schedule), five coverage keys per corpus entry, crashes over 30 signatures.
Every batch is one transaction through the public Store API, validation and hashing
included, from one writer process. PostgreSQL comes from --pg, else $MIGFUZZ_TEST_PG_URL,
else a throwaway cluster started here (tests/pgserver.py, as the tests do).

Writes bench/results/store.md and bench/results/store.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migfuzz.corpus import input as inputs  # noqa: E402
from migfuzz.corpus.builtin import get_scenario, scenario_names  # noqa: E402
from migfuzz.db.store import Store  # noqa: E402
from migfuzz.fuzzer.execute import execute  # noqa: E402
from migfuzz.fuzzer.scheduler import make_strategy  # noqa: E402

# What one worker sends, by assumption (see the report): an engine worker runs about
# 2,800 executions/s (bench/results/engine.md); it flushes one batch a second; a batch
# carries the inputs that added coverage plus the crashes it keeps (the fuzzer keeps a few
# inputs per bucket, not every failing execution).
WORKER_RECORDS_STEADY = 20      # records/s once the corpus has settled
WORKER_RECORDS_PEAK = 300       # records/s in the first minute (~10% of executions new)
WORKER_BATCHES = 1              # batches (transactions) per second


def pool(n: int) -> list[tuple[dict, list[str]]]:
    base = []
    for name in scenario_names():
        sc = get_scenario(name)
        for seed in range(4):
            r = execute(sc, "v5.16", make_strategy("random", seed), seed=seed)
            base.append((sc, r.schedule, r.branches))
    out = []
    for i in range(n):
        sc, sched, branches = base[i % len(base)]
        na = len(sc["actors"])
        inp = inputs.make(sc, ["v5.15", "v5.16", "v6.1"][i % 3],
                          sched + [[i % na, 1 + i % 1000], [(i + 1) % na, 1 + i // 1000]],
                          strategy="random", seed=i)  # unique; within max_steps
        out.append((inp, (branches[:4] + [f"pair:{i}"])[:5]))
    return out


def run_backend(url: str, records: int, label: str, check_inputs: bool = True) -> dict:
    st = Store.open(url, check_inputs=check_inputs)
    st.create_campaign("bench", "v5.16")
    p = pool(records)
    entries = [{"input": inp, "coverage": cov, "worker": f"w{i % 8}", "found_at": 1e9 + i}
               for i, (inp, cov) in enumerate(p)]
    crashes = [{"input": inp, "signature": f"LOST_WRITE-{i % 30:012x}", "kind": "LOST_WRITE",
                "title": f"LOST_WRITE: bug {i % 30}", "trace_hash": f"{i:016x}",
                "steps": 50 + i % 100, "worker": f"w{i % 8}", "found_at": 1e9 + i}
               for i, (inp, _) in enumerate(p)]
    out = {"backend": label if check_inputs else f"{label} (check_inputs=False)"}

    def timed(key, fn, batches, nrec):
        t = time.perf_counter()
        for b in batches:
            fn(b)
        dt = time.perf_counter() - t
        out[key] = {"records": nrec, "batches": len(batches), "seconds": round(dt, 3),
                    "records_per_s": round(nrec / dt), "batches_per_s": round(len(batches) / dt)}

    half = records // 2
    big = 500
    timed("corpus_batches_of_500",
          lambda b: st.add_corpus_entries("bench", b),
          [entries[i:i + big] for i in range(0, half, big)], half)
    timed("crashes_batches_of_500",
          lambda b: st.add_crashes("bench", b),
          [crashes[i:i + big] for i in range(0, half, big)], half)
    small = 20                               # what one worker sends per second, typically
    mixed = [(entries[i:i + small // 2], crashes[i:i + small // 2])
             for i in range(half, records, small // 2)]
    timed("mixed_batches_of_20",
          lambda b: st.write_batch("bench", corpus=b[0], crashes=b[1]),
          mixed, sum(len(a) + len(c) for a, c in mixed))
    again = [entries[i:i + big] for i in range(0, half, big)]
    timed("retried_corpus_batches_of_500",
          lambda b: st.add_corpus_entries("bench", b), again, half)
    t = time.perf_counter()
    state = st.load_campaign_state("bench")
    out["resume_load_s"] = round(time.perf_counter() - t, 3)
    out["resume_corpus"] = len(state.corpus)
    out["rows"] = st.counts()
    st.close()
    rate = min(out["corpus_batches_of_500"]["records_per_s"],
               out["crashes_batches_of_500"]["records_per_s"])
    small_rate = out["mixed_batches_of_20"]
    out["workers_served"] = {
        "steady": min(rate // WORKER_RECORDS_STEADY,
                      small_rate["batches_per_s"] // WORKER_BATCHES),
        "peak": min(rate // WORKER_RECORDS_PEAK,
                    small_rate["records_per_s"] // WORKER_RECORDS_PEAK),
    }
    return out


def start_pg():
    """A throwaway PostgreSQL on a Unix socket: (url, stop) or (None, why not)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("pgserver", ROOT / "tests/pgserver.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return mod.start_throwaway_pg(55433)
    except RuntimeError as e:
        return None, str(e)


def new_pg_db(server_url: str) -> str:
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(server_url)
    q = dict(u.query)
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(dbname="postgres", user=u.username or "postgres", password=u.password,
                         host=q.get("host", u.host), port=q.get("port", u.port),
                         autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=20_000,
                    help="records per backend (half corpus entries, half crashes)")
    ap.add_argument("--pg", help="PostgreSQL server URL (default $MIGFUZZ_TEST_PG_URL, "
                    "else a throwaway cluster)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as d:
        r = run_backend(f"sqlite:///{d}/bench.db", args.records, "sqlite")
        results.append(r)
        print(json.dumps(r))
        r = run_backend(f"sqlite:///{d}/bench2.db", args.records, "sqlite", False)
        results.append(r)
        print(json.dumps(r))
    stop = None
    if not args.no_pg:
        server = args.pg or os.environ.get("MIGFUZZ_TEST_PG_URL")
        if not server:
            server, stop = start_pg()
            if server is None:
                print(f"PostgreSQL skipped: {stop}", file=sys.stderr)
                stop = None
        if server:
            try:
                r = run_backend(new_pg_db(server), args.records, "postgresql")
                results.append(r)
                print(json.dumps(r))
            finally:
                if callable(stop):
                    stop()
    write_report(results)
    return 0


def write_report(results: list[dict]) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "assumption": {
                "worker_records_per_s_steady": WORKER_RECORDS_STEADY,
                "worker_records_per_s_peak": WORKER_RECORDS_PEAK,
                "worker_batches_per_s": WORKER_BATCHES}}
    (out / "store.json").write_text(json.dumps({"meta": meta, "results": results},
                                               indent=1) + "\n")
    lines = ["# Store ingest (bench/store.py)", "",
             f"One writer process, Python {meta['python']}, {meta['cpus']} CPUs. Every batch "
             "is one transaction through the Store API (validation, hashing, idempotent "
             "inserts, bug upserts included).", "",
             "| backend | workload | records | batches | records/s | batches/s |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for k in ("corpus_batches_of_500", "crashes_batches_of_500", "mixed_batches_of_20",
                  "retried_corpus_batches_of_500"):
            m = r[k]
            lines.append(f"| {r['backend']} | {k.replace('_', ' ')} | {m['records']:,} | "
                         f"{m['batches']:,} | {m['records_per_s']:,} | "
                         f"{m['batches_per_s']:,} |")
    lines += ["", "| backend | resume: load the campaign state | workers served (steady) | "
              "workers served (peak) |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['backend']} | {r['resume_load_s']} s for {r['resume_corpus']:,} "
                     f"entries | {r['workers_served']['steady']:,} | "
                     f"{r['workers_served']['peak']:,} |")
    lines += ["", "Assumption: a worker runs about 2,800 executions/s (bench/results/engine.md) "
              f"and sends one batch a second with about {WORKER_RECORDS_STEADY} records once "
              f"its corpus has settled, up to {WORKER_RECORDS_PEAK} in the first minute. "
              "Workers served = the smaller of (records/s ÷ records per worker) and "
              "(small batches/s ÷ 1 batch per worker per second). One writer process was "
              "measured; SQLite serializes writers anyway, PostgreSQL can take several at "
              "once, so its figure is a floor.", ""]
    (out / "store.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
