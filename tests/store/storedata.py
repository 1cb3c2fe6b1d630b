"""Deterministic synthetic records for the store tests (also used by store_writer.py)."""
from __future__ import annotations

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario

SCENARIO = get_scenario("migrate-multiple")
VARIANTS = ["v5.15", "v5.16", "v6.1"]
KINDS = ["LOST_WRITE", "USE_AFTER_FREE", "DEADLOCK", "LOCK_LEAK"]


def make_input(i: int) -> dict:
    """Input number i: a distinct schedule (so a distinct content hash) for every i."""
    n = len(SCENARIO["actors"])
    # distinct for every i, and short: a schedule longer than the scenario's step limit
    # (20,000) is refused as input
    return inputs.make(SCENARIO, VARIANTS[i % 3],
                       [[i % n, 1 + (i // n) % 1000], [(i + 1) % n, 1 + i // (n * 1000)]],
                       strategy="random", seed=i)


def entry(i: int, worker: str = "w0") -> dict:
    return {"input": make_input(i), "coverage": [f"site:{i % 97}", f"pair:{i % 89}"],
            "parent": None, "worker": worker, "found_at": 1000.0 + i}


def signature(s: int) -> str:
    return f"{KINDS[s % len(KINDS)]}-{s:012x}"


def crash(i: int, s: int, worker: str = "w0") -> dict:
    return {"input": make_input(i), "signature": signature(s), "kind": KINDS[s % len(KINDS)],
            "title": f"{KINDS[s % len(KINDS)]}: bug {s} seen as #{i % 3}",
            "trace_hash": f"{i:016x}", "steps": 10 + (i * 7) % 50, "worker": worker,
            "found_at": 1000.0 + i}
