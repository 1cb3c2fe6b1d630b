"""Where a PostgreSQL write's time goes: 6,000 records (3,000 corpus entries and 3,000
crashes of real scenarios, 31-decision schedules) in batches of 500 through the Store API,
check_inputs=False as the farm's recorder, no crash cap: the client's CPU (this process)
and the server's (the backend serving this database, from /proc), besides the wall clock.

    .venv/bin/python bench/store_split.py
    # the code before a change, from a staged copy of it (a migfuzz/ directory on PYTHONPATH):
    PYTHONPATH=/tmp/old-stage .venv/bin/python bench/store_split.py

Starts a throwaway PostgreSQL (tests/pgserver.py) and prints one line.
"""
import sys, time, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pgserver import start_throwaway_pg
from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.corpus import input as inputs
from migfuzz.db.store import Store
names = scenario_names()[:6]
recs = []
for i in range(3000):
    sc = get_scenario(names[i % 6]); na = len(sc["actors"])
    inp = inputs.make(sc, "v5.16", [[j % na, 1] for j in range(30)] + [[i % na, 2 + i]], strategy="random", seed=i)
    recs.append({"input": inp, "signature": f"LOST_WRITE-{i%5:012x}", "kind": "LOST_WRITE", "title": "t", "trace_hash": "x", "steps": 50, "worker": "w0"})
url, stop = start_throwaway_pg(55601 + os.getpid() % 100)
try:
    st = Store.open(url, check_inputs=False, max_crashes_per_bug=10**9)
    st.create_campaign("c", "v5.16")
    corpus = [{"input": r["input"], "coverage": ["b:x"]} for r in recs]
    from sqlalchemy import text
    def pgcpu():
        with st.engine.connect() as c:
            pids=[p for (p,) in c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))]
        tot=0
        for pid in pids:
            f=open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split(); tot+=(int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK")
        return tot
    g0 = pgcpu()
    t = time.perf_counter(); c0 = time.process_time()
    for k in range(0, 3000, 500):
        st.write_batch("c", corpus=corpus[k:k+500], crashes=recs[k:k+500])
    wall = time.perf_counter() - t; cpu = time.process_time() - c0
    print(f"6000 records: wall {wall:.2f}s client CPU {cpu:.2f}s server CPU {pgcpu()-g0:.2f}s -> {6000/wall:.0f} records/s")
finally:
    stop()
