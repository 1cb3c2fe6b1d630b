"""Swap slots: get_swap_page / swap_free with the swap map count, after
mm/swapfile.c. A slot stays while a swap entry or the swap cache refers to it.
"""
from __future__ import annotations


class Swap:
    """Kernel's swap slots (swapfile.c)."""

    def swap_alloc(self, data: int) -> int:
        slot = self.next_slot
        self.next_slot += 1
        self.swap[slot] = [data, 0]
        return slot

    def swap_free(self, slot: int) -> None:
        ent = self.swap[slot]
        ent[1] -= 1
        if ent[1] <= 0 and slot not in self.swapcache:
            del self.swap[slot]
