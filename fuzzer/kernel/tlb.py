"""Per-CPU TLBs: flush_tlb_range (arch/x86/mm/tlb.c), which the model applies to every
CPU at once (the IPI shootdown's end state).
"""
from __future__ import annotations

from .state import MM


class Tlb:
    """Kernel's TLB shootdown."""

    def flush_tlb_range(self, mm: MM, start: int, end: int, site: str) -> None:
        """Remove (mm, [start, end)) from every CPU's TLB; ``site`` names the caller."""
        name = mm.name
        for tlb in self.tlbs:
            for key in [k for k in tlb if k[0] == name and start <= k[1] < end]:
                del tlb[key]
