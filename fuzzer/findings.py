"""Findings: what an oracle saw, with a title for people and a signature for buckets.

The signature is built from the kind and the code sites only (never page numbers, actor
names or step counts), so one bug found by many schedules lands in one bucket, as
syzkaller's crash title and ClusterFuzz's crash state do.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

KINDS = (
    "DEADLOCK", "LOCK_LEAK", "REFCOUNT_LEAK", "REFCOUNT_UNDERFLOW", "USE_AFTER_FREE",
    "LOST_WRITE", "STALE_MIGRATION_ENTRY", "LRU_LEAK", "HANG", "UNEXPECTED_RESULT",
    "POTENTIAL_DEADLOCK", "BAD_UNLOCK",
)


@dataclass
class Finding:
    kind: str
    title: str
    sites: tuple[str, ...]          # the code sites that make the signature
    step: int = 0                   # when it was seen (not part of the signature)
    detail: dict = field(default_factory=dict)

    @property
    def signature(self) -> str:
        text = self.kind + "|" + "|".join(self.sites)
        return self.kind + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        return {"kind": self.kind, "title": self.title, "signature": self.signature,
                "sites": list(self.sites), "step": self.step, "detail": self.detail}
