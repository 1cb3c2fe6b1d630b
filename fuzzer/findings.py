"""Findings: what an oracle saw, with a title for people and a signature for buckets.

The signature is built from the kind and the code sites only (never page numbers, actor
names or step counts), so one bug found by many schedules lands in one bucket, as
syzkaller's crash title and ClusterFuzz's crash state do.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

KINDS = (
    "DEADLOCK", "LOCK_LEAK", "REFCOUNT_LEAK", "REFCOUNT_UNDERFLOW", "USE_AFTER_FREE",
    "LOST_WRITE", "STALE_MIGRATION_ENTRY", "LRU_LEAK", "HANG", "UNEXPECTED_RESULT",
    "POTENTIAL_DEADLOCK", "BAD_UNLOCK", "MODEL_ERROR", "BAD_MAPCOUNT", "VM_BUG_ON",
    "ASSERTION",
)
# VM_BUG_ON: a check the kernel itself makes at that point (VM_BUG_ON_PAGE/FOLIO, BUG_ON,
# lockdep_assert_held); a CONFIG_DEBUG_VM kernel would stop there. ASSERTION: a rule the
# kernel's code implies but does not check (a restore restores every pte it cleared, a
# pinned page is never migrated, 60bae7370896's flush-before-unlock).


@functools.lru_cache(maxsize=4096)
def _signature(kind: str, sites: tuple[str, ...]) -> str:
    """A finding's signature, from its kind and sites only. Remembered: a farm of 1,000
    workers reads ~300,000 a second (~30 findings a batch), of the same few bugs, so the
    hash is computed once per distinct signature (4,096 is far above the bugs a campaign
    holds; the coordinator and the recorder each kept a copy of this cache before)."""
    text = kind + "|" + "|".join(sites)
    return kind + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Finding:
    kind: str
    title: str
    sites: tuple[str, ...]          # the code sites that make the signature
    step: int = 0                   # when it was seen (not part of the signature)
    detail: dict = field(default_factory=dict)

    @property
    def signature(self) -> str:
        return _signature(self.kind, tuple(self.sites))

    def to_json(self) -> dict:
        return {"kind": self.kind, "title": self.title, "signature": self.signature,
                "sites": list(self.sites), "step": self.step, "detail": self.detail}


class KernelBug(Exception):
    """A fatal assertion: the execution ends at the first one, as a kernel booted with
    panic_on_warn=1 (syzkaller's setting) stops at its first BUG or WARN, so what follows
    from the broken rule is not reported as findings of its own (one root cause, one
    bucket). Raised from inside a step; the scheduler stops the run and ``model_error``
    turns it back into its finding."""

    def __init__(self, finding: "Finding"):
        super().__init__(finding.title)
        self.finding = finding


_PKG = __file__.rsplit("/", 1)[0] + "/"     # this package's directory


def model_error(exc: BaseException, step: int) -> Finding:
    """An exception inside the model or an oracle during one execution, as a finding: the
    campaign goes on, the input is kept, and replaying it raises the same exception at the
    same step. The signature is the exception type and the innermost model function it
    came from (not the message, which names pages; not line numbers, which move with
    every edit), so one broken rule is one bucket."""
    if isinstance(exc, KernelBug):
        return exc.finding
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PKG)] or frames
    where = ours[-1] if ours else None
    site = (f"{where.filename[len(_PKG):].removesuffix('.py').replace('/', '.')}."
            f"{where.name}" if where and where.filename.startswith(_PKG)
            else (where.name if where else "?"))
    kind = type(exc).__name__
    message = str(exc).splitlines()[0][:160] if str(exc) else ""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Finding("MODEL_ERROR", f"MODEL_ERROR: {kind} in {site}"
                   + (f": {message}" if message else ""), (kind, site), step,
                   {"exception": kind, "traceback": text[-4000:]})
