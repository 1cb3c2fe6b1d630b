"""Coverage feedback: which model paths ran and which interleavings happened.

Three kinds of feature, all strings (so they merge across workers and sort stably):

- ``b:LABEL``: a model branch label (which path of collect/unmap/pages/finalize and of the
  other actors ran; ``Kernel.branch``);
- ``p:SITE_A>SITE_B``: an ordered pair of consecutive operations on the same page, pte or
  lock by different actors, the reads-from/alias pairs of RFF (Wolff et al., ASPLOS 2024)
  and Krace's alias coverage;
- ``l:HELD>ACQUIRED``: a lock-wait edge, a page lock taken while another one was held, by
  site (the lock-order graph keeps the page identities).

A count bucket per feature (AFL's 1, 2, 3, 4-7, 8-15, ... hit classes) is not used: the
engine reports each pair once per execution, and with 2-4 actors and 20-60 decisions a
feature seen once is the signal that matters.
"""
from __future__ import annotations


def features(result) -> list[str]:
    """The features of one execution, in a deterministic order."""
    out = ["b:" + b for b in result.branches]
    out += ["p:%s>%s" % p for p in result.pairs]
    seen: dict[str, None] = {}
    for _, hs, _, acq in result.lock_edges:
        seen["l:%s>%s" % (hs, acq)] = None
    out += seen
    return out


class Coverage:
    """The features seen so far, with the number of executions that hit each one."""

    def __init__(self):
        self.hits: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.hits)

    def __contains__(self, feat: str) -> bool:
        return feat in self.hits

    def add(self, feats: list[str]) -> list[str]:
        """Count the features; return the ones never seen before (in the given order)."""
        new = []
        hits = self.hits
        for f in feats:
            n = hits.get(f)
            if n is None:
                hits[f] = 1
                new.append(f)
            else:
                hits[f] = n + 1
        return new

    def merge(self, feats) -> list[str]:
        """Take features another worker found (without counting hits); return the new ones."""
        new = [f for f in feats if f not in self.hits]
        for f in new:
            self.hits[f] = 1
        return new

    def kinds(self) -> dict[str, int]:
        out = {"branches": 0, "pairs": 0, "lock_edges": 0}
        names = {"b": "branches", "p": "pairs", "l": "lock_edges"}
        for f in self.hits:
            out[names[f[0]]] += 1
        return out

    def snapshot(self) -> list[str]:
        return sorted(self.hits)
