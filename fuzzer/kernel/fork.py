"""fork(): copy an address space, after kernel/fork.c (dup_mmap) and mm/memory.c
(copy_page_range -> copy_pte_range, copy_nonpresent_pte): private pages become shared
copy-on-write; migration and device entries are copied as the kernel does.
"""
from __future__ import annotations

from .state import DEVICE, MIGRATION, MM, PRESENT, SWAP, Kernel, Vma


def fork(k: Kernel, parent: MM, child_name: str):
    """fork(): copy the address space under the parent's mmap write lock; private pages
    become shared copy-on-write, migration and device entries are copied as the kernel
    does (copy_nonpresent_pte)."""
    yield ("fork:mmap_lock", ("mmap", parent.name))
    yield from k.mmap_write_lock(parent, "fork:mmap_lock")
    child = MM(child_name)
    child.vmas = [Vma(v.start, v.end, v.prot, v.shared, v.special, v.shm) for v in parent.vmas]
    k.mms[child_name] = child
    # copy_pte_range: the child's pte lock (pte_alloc_map_lock on dst), then the parent's
    # nested in it; released in the opposite order
    yield from k.lock_ptl(child, "fork:child_ptl")
    yield from k.lock_ptl(parent, "fork:ptl")
    for vpn in sorted(parent.ptes):
        yield ("fork:copy_pte", (parent.name, vpn))
        pte = parent.ptes[vpn]
        kind = pte[0]
        shared = parent.vma_at(vpn).shared
        if kind == PRESENT or kind == DEVICE:
            page = pte[1]
            k.get(page, "map", "fork:copy_pte")
            k.map_inc(page, "fork:copy_pte")
            if shared:
                child.ptes[vpn] = pte
            else:
                wp = (kind, page, False, pte[3] if kind == PRESENT else False)
                k.set_pte(parent, vpn, wp)
                k.set_pte(child, vpn, wp)
        elif kind == MIGRATION:
            ro = (MIGRATION, pte[1], False, False)
            k.set_pte(parent, vpn, ro, parent.pte_sites.get(vpn, "fork"))
            k.set_pte(child, vpn, ro, "fork:copy_migration_entry")
        elif kind == SWAP:
            k.swap[pte[1]][1] += 1
            child.ptes[vpn] = pte
        else:
            child.ptes[vpn] = pte
    for key in [key for key in k.expect if key[0] == parent.name]:
        ck = (child_name, key[1])
        k.expect[ck] = k.expect[key]
        k.origin[ck] = k.origin.get(key, "initial")
    k.unlock_ptl(parent)
    k.unlock_ptl(child)
    k.flush_tlb_range(parent, 0, 1 << 30, "fork:flush")      # dup_mmap: flush_tlb_mm(oldmm)
    k.mmap_write_unlock(parent)
