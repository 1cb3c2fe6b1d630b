"""A store writer in its own process, for the concurrency and SIGKILL tests.

    store_writer.py concurrent URL CAMPAIGN WORKER GO_FILE SEED
        open the store (racing the other writer through the first migration), wait for
        GO_FILE, then write the shared crashes (shuffled by SEED, small batches, every batch
        sent twice as a retrying worker would) and this worker's own crashes; print a JSON
        summary of what the store said was new.
    store_writer.py batches URL CAMPAIGN WORKER FIRST LAST
        write batches FIRST..LAST (corpus entries + crashes + a stats sample, one
        transaction each) and print "stored N" after each commit.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time

import storedata as D

from migfuzz.db.store import Store

SHARED = 240           # crashes both writers report
OWN = 60               # crashes only one writer reports
NSIG = 12
BATCH_ENTRIES, BATCH_CRASHES = 40, 8


def shared_crashes(worker: str) -> list[dict]:
    return [D.crash(i, i % NSIG, worker) for i in range(SHARED)]


def own_crashes(worker: str, k: int) -> list[dict]:
    base = 100_000 * (k + 1)
    return [D.crash(base + i, (i * 5) % NSIG, worker) for i in range(OWN)]


def batch(b: int, worker: str) -> dict:
    e0 = b * BATCH_ENTRIES
    c0 = 1_000_000 + b * BATCH_CRASHES
    return {"corpus": [D.entry(e0 + i, worker) for i in range(BATCH_ENTRIES)],
            "crashes": [D.crash(c0 + i, (c0 + i) % 7, worker) for i in range(BATCH_CRASHES)],
            "stats": [{"worker": worker, "t": 1000.0 + b, "executions": 100 * (b + 1),
                       "coverage": b, "corpus_size": e0 + BATCH_ENTRIES, "buckets": 7,
                       "crashes": c0}]}


def concurrent(url, campaign, worker, go, seed) -> None:
    st = Store.open(url)
    st.create_campaign(campaign, "v5.16", {"test": "concurrent"}, exist_ok=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    rng = random.Random(int(seed))
    k = int(worker[-1])
    recs = shared_crashes(worker) + own_crashes(worker, k)
    rng.shuffle(recs)
    added, new, new_bugs = 0, [], []
    i = 0
    while i < len(recs):
        n = rng.randint(1, 12)
        chunk = recs[i:i + n]
        for _ in range(2):                      # a retried batch adds nothing
            r = st.add_crashes(campaign, chunk)
            added += r["added"]
            new += r["new"]
            new_bugs += r["new_bugs"]
        i += n
    print(json.dumps({"added": added, "new": new, "new_bugs": new_bugs}))


def batches(url, campaign, worker, first, last) -> None:
    st = Store.open(url)
    st.create_campaign(campaign, "v5.16", {"test": "kill"}, exist_ok=True)
    for b in range(int(first), int(last) + 1):
        st.write_batch(campaign, **batch(b, worker))
        print(f"stored {b}", flush=True)


if __name__ == "__main__":
    {"concurrent": concurrent, "batches": batches}[sys.argv[1]](*sys.argv[2:])
