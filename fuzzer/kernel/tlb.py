"""Per-CPU TLBs: flush_tlb_range (arch/x86/mm/tlb.c), which the model applies to every
CPU at once (the IPI shootdown's end state).

A present pte cleared while some CPU's TLB still holds it is pending a flush
(Kernel.set_pte records it); the flush clears it. 60bae7370896's rule, that the flush
comes before the PTL is released, is checked where the lock is released (locks.py: a
late flush is named in the title of the stale-TLB damage it leads to) and at the end of
the execution (oracles.end_state: a flush that never came).
"""
from __future__ import annotations

from .state import MM


class Tlb:
    """Kernel's TLB shootdown."""

    def flush_tlb_range(self, mm: MM, start: int, end: int, site: str) -> None:
        """Remove (mm, [start, end)) from every CPU's TLB; ``site`` names the caller."""
        name = mm.name
        if self.tlb_pending:
            for key in [key for key in self.tlb_pending
                        if key[0] == name and start <= key[1] < end]:
                del self.tlb_pending[key]
        for tlb in self.tlbs:
            for key in [k for k in tlb if k[0] == name and start <= k[1] < end]:
                del tlb[key]
