"""Buckets: findings grouped by signature, syzkaller/ClusterFuzz style.

A bucket has a title, alternative titles (every other title seen with its signatures),
first and last seen (execution numbers, so they are deterministic; a wall clock can be
added by the caller), a hit count, and the smallest input that reproduced it.

Flaky inputs must not split a bucket (ClusterFuzz users asked for exactly that): when one
input (by content hash) has given signature S1 and later gives S2, S2 joins S1's bucket
(union-find), like syzkaller merging two crashes whose titles intersect. Findings that
merely co-occur in one execution stay separate buckets: one input may trip two bugs.
"""
from __future__ import annotations

from dataclasses import dataclass, field


def input_size(inp: dict) -> tuple:
    """Smaller is better: actors, pages, preemptions, decisions (a total order)."""
    sc = inp["scenario"]
    pages = sum(v["npages"] for m in sc["mms"] for v in m["vmas"])
    sched = inp.get("schedule", [])
    switches = max(0, len(sched) - 1)
    return (len(sc["actors"]), pages, inp.get("preemptions", switches),
            sum(n for _, n in sched))


@dataclass
class Bucket:
    signature: str
    kind: str
    title: str
    signatures: list[str]
    alt_titles: list[str] = field(default_factory=list)
    first_seen: int = 0
    last_seen: int = 0
    hits: int = 0
    input: dict | None = None          # the smallest reproducing input seen
    input_hash: str = ""
    scenarios: list[str] = field(default_factory=list)
    minimized: dict | None = None      # set by the minimizer
    repro_path: str = ""

    def to_json(self) -> dict:
        return {"signature": self.signature, "kind": self.kind, "title": self.title,
                "signatures": self.signatures, "alt_titles": self.alt_titles,
                "first_seen": self.first_seen, "last_seen": self.last_seen,
                "hits": self.hits, "input_hash": self.input_hash,
                "scenarios": self.scenarios, "minimized": self.minimized,
                "repro_path": self.repro_path}


class Buckets:
    def __init__(self):
        self.parent: dict[str, str] = {}      # signature -> representative signature
        self.buckets: dict[str, Bucket] = {}  # representative -> bucket
        self.by_input: dict[str, list[str]] = {}   # input hash -> signatures it gave

    def find(self, sig: str) -> str:
        while self.parent.get(sig, sig) != sig:
            sig = self.parent[sig]
        return sig

    def add(self, finding, inp: dict, inp_hash: str, when: int) -> tuple[Bucket, bool]:
        """Record one finding of input ``inp``; returns (its bucket, whether it is new)."""
        sig = finding.signature
        new = sig not in self.parent
        if new:
            self.parent[sig] = sig
            self.buckets[sig] = Bucket(sig, finding.kind, finding.title, [sig],
                                       first_seen=when, last_seen=when)
        prev = self.by_input.setdefault(inp_hash, [])
        if prev and sig not in prev:
            # the same input gave another signature before: a flaky mapping, one bug
            self._union(prev[0], sig)
            new = False
        if sig not in prev:
            prev.append(sig)
        b = self.buckets[self.find(sig)]
        b.hits += 1
        b.last_seen = max(b.last_seen, when)
        if finding.title != b.title and finding.title not in b.alt_titles:
            b.alt_titles.append(finding.title)
        if inp["scenario"]["name"] not in b.scenarios:
            b.scenarios.append(inp["scenario"]["name"])
        if b.input is None or input_size(inp) < input_size(b.input):
            b.input, b.input_hash = inp, inp_hash
        return b, new

    def _union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        # keep the older bucket as the representative
        keep, gone = (ra, rb) if self.buckets[ra].first_seen <= self.buckets[rb].first_seen \
            else (rb, ra)
        self.parent[gone] = keep
        kb, gb = self.buckets[keep], self.buckets.pop(gone)
        kb.signatures += [s for s in gb.signatures if s not in kb.signatures]
        for t in [gb.title] + gb.alt_titles:
            if t != kb.title and t not in kb.alt_titles:
                kb.alt_titles.append(t)
        kb.hits += gb.hits
        kb.first_seen = min(kb.first_seen, gb.first_seen)
        kb.last_seen = max(kb.last_seen, gb.last_seen)
        kb.scenarios += [s for s in gb.scenarios if s not in kb.scenarios]
        if gb.input is not None and (kb.input is None or
                                     input_size(gb.input) < input_size(kb.input)):
            kb.input, kb.input_hash = gb.input, gb.input_hash

    def __len__(self) -> int:
        return len(self.buckets)

    def __iter__(self):
        return iter(sorted(self.buckets.values(), key=lambda b: (b.first_seen, b.signature)))
